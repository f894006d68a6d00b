"""``nemap fsc HALF1 HALF2``: Fourier shell correlation (or ``MAP.nemap --against MAP.mrc``: how faithful a neural
map is to its source), and ``nemap locres HALF1 HALF2 -o LOCRES.mrc``: local resolution in windows."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nemap.cli.common import add_cell_angles_option
from nemap.errors import NemapError
from nemap.machine import keep_freed_memory


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("fsc", parents=[common], help="Fourier shell correlation of two maps (MRC or .nemap)",
                       description="The FSC per shell in Å⁻¹ (anisotropic voxels and non-cubic boxes handled) and "
                                   "where it crosses 0.143 and 0.5. With --mask: the masked FSC corrected by phase "
                                   "randomization (Chen et al. 2013) beside the unmasked one. With --against: the "
                                   "FSC of a neural map, sampled on its source's grid, against that source.")
    p.add_argument("maps", nargs="+", metavar="MAP", help="two half maps, or one .nemap file with --against")
    p.add_argument("--against", default=None, metavar="MRC", help="the source map of a single .nemap file")
    p.add_argument("--mask", default=None, help="MRC mask on the maps' grid, values in [0, 1]")
    p.add_argument("--randomize-below", type=float, default=0.143, metavar="FSC",
                   help="phases are randomized beyond the shell where the unmasked FSC first drops below this "
                        "(default 0.143; RELION's postprocess uses 0.8)")
    p.add_argument("--json", action="store_true", help="the result as JSON on stdout")
    p.add_argument("--plot", default=None, metavar="PNG", help="draw the curves to a PNG file")
    p.add_argument("--force", action="store_true", help="overwrite the plot if it exists")
    add_cell_angles_option(p)
    p.set_defaults(func=run_fsc)

    est = sub.add_parser("resolution", parents=[common], help="resolution of one map by a learned estimator",
                         description="Global resolution and class (high < 5 Å ≤ medium ≤ 10 Å < low), local "
                                     "resolution and molecular mask of one map (MRC or .nemap), from a network "
                                     "trained on simulated maps (no half maps needed). The map is resampled to "
                                     "1 Å voxels.")
    est.add_argument("map", nargs="?", help="MRC or .nemap file")
    est.add_argument("--model", default="local", help="the estimator (default local; see --list-models), or "
                     "monogenic: the classical signal-against-solvent-noise baseline (needs an unmasked map; no "
                     "torch), or edge: the global resolution where the power spectrum's fall ends (a post-processed "
                     "map's low-pass edge; no torch)")
    est.add_argument("--list-models", action="store_true", help="list the shipped estimators and their test figures")
    est.add_argument("-o", "--output", default=None, metavar="LOCAL.mrc", help="write the local resolution (Å)")
    est.add_argument("--mask-out", default=None, metavar="MASK.mrc", help="write the predicted mask (0/1)")
    est.add_argument("--json", action="store_true", help="the result as JSON on stdout")
    est.add_argument("--store", action="store_true",
                     help="for a .nemap MAP: store the local resolution in it (format 0.2 evidence); nemap graph "
                          "then links peaks by it")
    est.add_argument("--force", action="store_true", help="overwrite outputs that exist")
    add_cell_angles_option(est)
    est.set_defaults(func=run_estimate)

    lr = sub.add_parser("locres", parents=[common], help="local resolution of two half maps, as an MRC map in Å",
                        description="FSC in soft spherical windows (blocres-style) on a coarse grid of centres, "
                                    "interpolated to every voxel; 0 outside the mask. Default window 20 voxels, "
                                    "step a quarter of it (see nemap.resolution.locres for why).")
    lr.add_argument("half1")
    lr.add_argument("half2")
    lr.add_argument("-o", "--output", required=True, help="local-resolution MRC map (Å)")
    lr.add_argument("--mask", default=None, help="MRC mask on the half maps' grid; windows centred where it is ≥ 0.5")
    lr.add_argument("--window", type=float, default=None, metavar="Å", help="window diameter (default 20 voxels)")
    lr.add_argument("--step", type=int, default=None, metavar="VOXELS", help="spacing of window centres")
    lr.add_argument("--threshold", type=float, default=0.143, help="FSC threshold (default 0.143)")
    lr.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    add_cell_angles_option(lr)
    lr.set_defaults(func=run_locres)


def run_fsc(args: argparse.Namespace) -> int:
    from nemap.tools import resolution

    if args.against is not None:
        if len(args.maps) != 1:
            raise NemapError("--against compares one .nemap file with its source: give one MAP", code="BAD_ARGUMENT")
        curve = resolution.fsc_against(args.maps[0], args.against, args.ignore_cell_angles)
    else:
        if len(args.maps) != 2:
            raise NemapError(f"give two half maps, got {len(args.maps)}", code="BAD_ARGUMENT")
        curve = resolution.fsc_files(args.maps[0], args.maps[1], args.mask, args.randomize_below,
                                     args.ignore_cell_angles)
    summary = curve.summary()
    if args.plot:
        from nemap.tools.plot import fsc_plot

        fsc_plot(curve, args.plot, force=args.force)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    for t, key in ((0.143, "0143"), (0.5, "05")):
        reached = "" if summary[f"crossed_{key}"] else " (not reached: the finest shell)"
        print(f"FSC = {t:g}: {summary[f'resolution_{key}']:.3f} Å{reached}")
    if summary["masked"]:
        print(f"masked, corrected by phase randomization beyond {summary['randomized_from_resolution']:.3f} Å",
              file=sys.stderr)
    return 0


def run_locres(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from nemap.tools import resolution

    bar = tqdm(unit="window", file=sys.stderr, disable=args.quiet, mininterval=0.5, desc="local resolution")
    try:
        result = resolution.locres_files(args.half1, args.half2, args.output, args.mask, window=args.window,
                                         step=args.step, threshold=args.threshold, force=args.force,
                                         progress=bar.update, ignore_cell_angles=args.ignore_cell_angles)
    finally:
        bar.close()
    values = result.grid.values[result.grid.values > 0]
    print(f"{args.output}: local resolution {values.min():.2f}–{values.max():.2f} Å (median "
          f"{float(np.median(values)):.2f} Å); window {result.window:.3g} Å, step {result.step} voxels, "
          f"FSC {result.threshold:g}")
    for line in resolution.histogram(values):
        print(line, file=sys.stderr)
    return 0


def run_estimate(args: argparse.Namespace) -> int:
    from nemap.tools import resolution

    if args.list_models:
        from nemap.resolution.models import model_voxel

        for name, recipe in resolution.shipped_models().items():
            made = recipe.get("data", {}).get("train", {})
            headline = {"voxel_size": model_voxel(recipe), "resolution_range": made.get("resolution_range"),
                        **{k: v for k, v in recipe.get("test", {}).items() if k != "by"}}  # not the breakdown
            print(f"{name}: {json.dumps(headline)}")
        return 0
    if args.map is None:
        raise NemapError("give a map (MRC or .nemap), or --list-models", code="BAD_ARGUMENT")
    keep_freed_memory()  # the network's many large arrays, not page-faulted afresh (nemap.machine)
    result = resolution.estimate_file(args.map, model=args.model, local_out=args.output, mask_out=args.mask_out,
                                      force=args.force, ignore_cell_angles=args.ignore_cell_angles)
    summary = result.summary()
    if args.store:
        from nemap.files import is_nemap

        if not is_nemap(args.map):
            raise NemapError(f"{args.map}: --store needs a .nemap file", code="BAD_ARGUMENT")
        resolution.store_estimate(args.map, result)
    for note in [] if args.quiet else result.notes:  # what was done to the map: information, not errors
        print(f"nemap: {args.map}: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    local = summary.get("local_resolution")
    extra = f"; local {local['min']:.2f}–{local['max']:.2f} Å" if local else ""
    interval = summary.get("global_resolution_interval")
    within = f", 90 % interval {interval[0]:.2f}–{interval[1]:.2f} Å" if interval else ""
    how = "its low-pass filter's edge; " if summary.get("global_resolution_source") == "low-pass filter" else ""
    print(f"{args.map}: {summary['global_class']} resolution, {summary['global_resolution']:.2f} Å{within} "
          f"({how}model {summary['model']}{extra})")
    return 0
