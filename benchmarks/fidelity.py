"""Fidelity of MRC → nemap → MRC with a preset (the paper's by default).

    python -m benchmarks.fidelity --synthetic 48          # molmap-like 48³ map made by our own code
    python -m benchmarks.fidelity --map emd6272 --crop 48 # a crop of a shared real map

Prints voxel RMSE, max error (and as % of the range), correlation, steps per region and wall time,
after a full round trip through the files (nemap convert, then decode to MRC on the native grid).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED, results_dir, write_json
from fixtures.synthetic_maps import chain_map
from nemap.fit.options import options_for
from nemap.format.geometry import Geometry
from nemap.io.mrc import read_mrc, write_mrc
from nemap.tools.convert import mrc_to_nemap, nemap_to_mrc

REAL = {
    "emd6272": "emd6272_rotavirus_vp6/6272_zone4A.mrc",
    "emd5778": "emd5778_trpv1_chainA/5578_ChainA.mrc",
    "emd0093": "emd0093_hcn4/emd_0093_m4A_chainA_crop.mrc",
    "emd21457": "emd21457_spike_ntd_segment/emd_21457_seg.mrc",
}


def make_source(args: argparse.Namespace, folder: Path) -> Path:
    path = folder / "source.mrc"
    if args.synthetic:
        n = args.synthetic
        grid, atoms = chain_map((n, n, n), voxel_size=1.0, resolution=3.0, seed=args.seed)
        write_mrc(path, grid.values, grid.geometry)
        print(f"source: synthetic molmap-like map {n}³ @ 1 Å, R = 3 Å, {len(atoms)} atoms", flush=True)
        return path
    src = SHARED / REAL[args.map]
    if not src.is_file():
        sys.exit(f"benchmark skipped: {src} not found (set NEMAP_SHARED_DATA)")
    grid = read_mrc(src)
    n = args.crop
    shape = np.asarray(grid.geometry.grid_shape)
    start = np.maximum(0, (shape - n) // 2)
    sl = tuple(slice(int(s), int(s) + n) for s in start)
    values = np.ascontiguousarray(grid.values[sl])
    geo = Geometry(values.shape, grid.geometry.voxel_size, tuple(grid.geometry.to_physical(start)))
    write_mrc(path, values, geo)
    print(f"source: {src.name} crop {values.shape} from index {start.tolist()}", flush=True)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", type=int, default=None, help="edge of a synthetic cubic map (voxels)")
    ap.add_argument("--map", choices=sorted(REAL), default="emd6272")
    ap.add_argument("--crop", type=int, default=48)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results/fidelity)")
    ap.add_argument("--toy", action="store_true", help="CI smoke run: a synthetic 20³ map, small preset, 5 steps")
    args = ap.parse_args(argv)
    if args.toy:
        args.synthetic, args.preset, args.max_steps = 20, "siren-tiny", 5
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = make_source(args, folder)
        options = options_for(args.preset, seed=args.seed, device="auto", max_steps=args.max_steps)
        t0 = time.perf_counter()
        header = mrc_to_nemap(src, folder / "map.nemap", options, progress=True)
        fit_s = time.perf_counter() - t0
        nemap_to_mrc(folder / "map.nemap", folder / "back.mrc")
        a = read_mrc(src).values.astype(np.float64)
        b = read_mrc(folder / "back.mrc").values.astype(np.float64)
        size = (folder / "map.nemap").stat().st_size
    diff = b - a
    span = a.max() - a.min()
    regions = header["provenance"]["training"]["regions"]
    result = {
        "device": header["provenance"]["training"]["device"],
        "preset": args.preset, "grid": list(a.shape), "regions": len(regions),
        "rmse": float(np.sqrt(np.mean(diff ** 2))), "max_abs_error": float(np.abs(diff).max()),
        "max_error_percent_of_range": float(100 * np.abs(diff).max() / span),
        "correlation": float(np.corrcoef(a.ravel(), b.ravel())[0, 1]),
        "steps": [r.get("steps") for r in regions], "stop_reasons": [r.get("stop_reason") for r in regions],
        "best_loss": [r.get("best_loss") for r in regions], "fit_wall_s": round(fit_s, 1),
        "nemap_bytes": size, "mrc_bytes": int(a.size * 4 + 1024),
    }
    for k, v in result.items():
        print(f"{k:28s} {v}")
    name = f"synthetic{args.synthetic}" if args.synthetic else f"{args.map}_crop{args.crop}"
    write_json(results_dir("fidelity", args.out) / f"fidelity_{name}_{args.preset}.json", result, "fidelity")


if __name__ == "__main__":
    main()
