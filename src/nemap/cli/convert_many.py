"""``nemap convert-many INPUTS... --out DIR``: many MRC maps to .nemap files, on this machine or a Dask cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nemap.cli.convert import options_from_args
from nemap.fit.options import PRESETS, RENAMED_PRESETS


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("convert-many", parents=[common], help="many MRC maps → .nemap files (a batch, resumable)",
                       description="Convert every input map to OUT/STEM.nemap. With --scheduler the regions of all "
                                   "maps are tasks of one Dask cluster, interleaved across maps. A map that fails is "
                                   "reported and skipped; OUT/summary.json (map, status, regions, seconds, fidelity) "
                                   "is updated as maps finish; running the command again skips finished maps and "
                                   "resumes the others.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="MRC files, globs ('maps/*.mrc', quoted), or list files (.txt/.lst/.list: one path per line)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder of the .nemap files and summary.json")
    p.add_argument("--force", action="store_true", help="convert again maps whose output exists")
    p.add_argument("--preset", default="spline", choices=[*PRESETS, *RENAMED_PRESETS],
                   help="as for nemap convert (default spline)")
    p.add_argument("--seed", type=int, default=None, help="random seed of the initial weights (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (on each worker with --scheduler)")
    p.add_argument("--max-steps", type=int, default=None, help="step cap per region (overrides the preset)")
    p.add_argument("--region-size", dest="max_region_size", type=int, default=None, metavar="N",
                   help="largest region edge, 8 to 64 voxels")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running Dask scheduler (tcp://host:8786) or local:N (N single-thread workers here)")
    p.set_defaults(func=run, width=None, depth=None, exit_loss=None)


def run(args: argparse.Namespace) -> int:
    from nemap.tools.batch import convert_many

    rows = convert_many(args.inputs, args.out, options_from_args(args), scheduler=args.scheduler, force=args.force,
                        progress=not args.quiet, command=["nemap", *sys.argv[1:]])
    failed = [r for r in rows if r["status"] == "failed"]
    for row in rows:
        extra = (f"{row.get('regions', '?')} regions, {row.get('seconds', 0):.1f} s" if row["status"] == "done"
                 else row.get("error") or "")
        print(f"{row['status']:8s} {row['map']} → {row['output']}" + (f"  ({extra})" if extra else ""))
    if failed:
        print(f"nemap: {len(failed)} of {len(rows)} map(s) failed; see {Path(args.out) / 'summary.json'}",
              file=sys.stderr)
        return 1
    return 0
