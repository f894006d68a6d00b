"""``nemap conformance [--reader COMMAND]``: run the conformance suite against a reader (exit 0 only if
every case passes)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("conformance", parents=[common],
                       help="run the conformance suite against a reader (exit 0 only if all pass)",
                       description="Runs every case of the conformance suite (spec/0.1/conformance.md) through a "
                                   "reader: by default nemap's engine and the independent NumPy reader, or any "
                                   "program that speaks the suite's stdin/stdout protocol.")
    p.add_argument("--reader", metavar="COMMAND", default=None,
                   help='a reader program, e.g. "python -m nemap.conformance.numpy_reader" or "./myreader --serve"')
    p.add_argument("--suite", default=None,
                   help="the suite folder (default: the suite installed with nemap, nemap/conformance/suite/0.3)")
    p.add_argument("--json", action="store_true", help="a JSON report on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nemap.conformance import harness

    suite = Path(args.suite) if args.suite else harness.default_suite()
    harness.check_suite(suite)
    readers = [(args.reader, None)] if args.reader else [("engine", "engine"), ("numpy", "numpy")]
    summary = [_run_reader(label, builtin, suite, args) for label, builtin in readers]
    if args.json:
        print(json.dumps({"suite": str(suite), "readers": summary}, indent=2))
    return 0 if all(s["passed"] == s["cases"] for s in summary) else 1


def _run_reader(label: str, builtin: str | None, suite: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one reader over the suite, printing a line per case (unless --json or -q) and a summary."""
    from nemap.conformance import harness
    from nemap.conformance.readers import builtin_reader

    def show(result: harness.Result) -> None:
        if not args.json and (args.verbose or not result.passed or not args.quiet):
            print(harness.text_line(result), flush=True)

    reader = builtin_reader(builtin) if builtin else harness.ProcessReader(label)
    try:
        hello, results = harness.run_suite(reader, suite, progress=show)
    finally:
        if not builtin:
            reader.close()
    passed = sum(r.passed for r in results)
    worst = {k: max((getattr(r, k) or 0.0 for r in results), default=0.0) for k in ("density_error", "gradient_error")}
    if not args.json:
        print(f"{hello.get('name', label)}: {passed}/{len(results)} cases pass ({', '.join(hello.get('ops', []))}); "
              f"worst error {worst['density_error']:.2g} (density) and {worst['gradient_error']:.2g} (gradient) "
              f"of the tolerance", flush=True)
    return {"reader": hello.get("name", label), "command": None if builtin else label, "ops": hello.get("ops"),
            "passed": passed, "cases": len(results), "worst_density_error_over_tolerance": worst["density_error"],
            "worst_gradient_error_over_tolerance": worst["gradient_error"],
            "results": [r.to_json() for r in results]}
