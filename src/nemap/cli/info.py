"""``nemap info FILE``: the geometry and contents of a .nemap or MRC file."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nemap.io.mrc import ORIGIN_CONVENTIONS


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("info", parents=[common], help="print the geometry and contents of a .nemap or MRC file")
    p.add_argument("file", help=".nemap or .mrc/.map/.ccp4 file")
    p.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    p.add_argument("--origin-convention", default="auto", choices=ORIGIN_CONVENTIONS,
                   help="MRC only: how to place the map (default auto: ORIGIN if non-zero, else NSTART)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nemap.tools.info import describe

    info = describe(args.file, with_provenance=args.json, origin_convention=args.origin_convention)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


TEXT_ONLY_IN_JSON = ("error_bound", "noise", "certificate")  # said in words on the representation line


def representation_words(r: dict[str, Any]) -> str:
    """"quantized (1 region): within 0.0585 = 0.05 noise SD …" / "spline (7 regions, 1 constant): B-spline of
    degree 5" / "siren (27 regions)"."""
    counts = ", ".join(f"{n} {k}" if k != r["kind"] else f"{n} region{'s' * (n != 1)}" for k, n in r["regions"].items())
    detail = r.get("in_words") or (f"B-spline of degree {r['order']}, {r['node_shape']} nodes per region"
                                   if "node_shape" in r else "")
    return f"{r['kind']} ({counts})" + (f": {detail}" if detail else "")


def format_info(info: dict[str, Any]) -> str:
    """The summary as aligned 'key value' lines."""
    lines = [f"{info['path']}:"]
    for key, value in info.items():
        if key in ("path", *TEXT_ONLY_IN_JSON) or value in (None, [], {}):
            continue
        if key == "representation":
            value = representation_words(value)
        elif key == "layers":
            value = value and " → ".join([str(value[0]["in_features"])] + [
                f"{d['out_features']}" + (f" sin(ω={d['omega']:g})" if d["activation"] == "sine" else "")
                for d in value])
        elif isinstance(value, dict):
            value = json.dumps(value)
        lines.append(f"  {key:28s} {value}")
    return "\n".join(lines)
