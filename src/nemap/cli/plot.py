"""``nemap plot MAP.nemap --slice z=Å -o OUT.png``: a slice through a .nemap map (matplotlib)."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from nemap.cli.common import add_cell_angles_option
from nemap.errors import NemapError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("plot", parents=[common], help="a slice through a .nemap map as a PNG (matplotlib)",
                       description="Source voxels, the map and their difference on the voxel plane nearest "
                                   "to --slice, side by side; points (graph nodes, atoms) near the plane overlaid.")
    p.add_argument("file", help=".nemap file")
    p.add_argument("--slice", required=True, metavar="AXIS=Å", help="e.g. z=12.5 (Å)")
    p.add_argument("-o", "--output", required=True, help="PNG file to write")
    p.add_argument("--source", default=None,
                   help="the MRC map it was made from (adds the source and difference panels)")
    p.add_argument("--points", default=None, help="graph nodes or atoms to overlay: .npz (pos), .pdb or .cif")
    p.add_argument("--within", type=float, default=None, metavar="Å",
                   help="overlay points this close to the plane (default half a voxel, at least 0.5 Å)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    add_cell_angles_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nemap.tools import plot

    axis, value = plot.parse_slice(args.slice)
    if importlib.util.find_spec("matplotlib") is None:
        raise NemapError("nemap plot needs matplotlib: pip install matplotlib", code="MISSING_DEPENDENCY")
    drawn = plot.slice_plot(args.file, args.output, axis, value, source=args.source, points=args.points,
                            within=args.within, force=args.force, ignore_cell_angles=args.ignore_cell_angles)
    extra = (f"; on this plane RMSE {drawn['rmse']:.4g}, max |error| {drawn['max_abs_error']:.4g} (source units)"
             if "rmse" in drawn else "")
    print(f"{args.output}: {drawn['axis']} = {drawn['position']:.2f} Å (voxel plane {drawn['index']}){extra}")
    return 0
