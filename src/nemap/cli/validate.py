"""``nemap validate FILE...``: every rule of the spec; exit 0 valid, 1 invalid, 2 unreadable."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("validate", parents=[common],
                       help="check .nemap files against the spec (exit 0 valid, 1 invalid, 2 unreadable)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="JSON report on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nemap.format.validate import validate

    reports = [validate(path) for path in args.files]
    if args.json:
        out: Any = [r.to_json() for r in reports]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    else:
        for r in reports:
            print(r.to_text())
    return max(r.exit_code for r in reports)
