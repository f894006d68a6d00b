"""Conversion speed and accuracy: the paper preset vs the fast preset, on the same machine, in one run.

    python -m benchmarks.convert_speed region [--size 64] [--kind protein|solvated] [--skip-paper]
                                              [--paper-max-steps N]
        one SIZE³ region of a simulated map with known ground truth (a molmap-like sum of Gaussians,
        R = 3 Å at R/3 voxels; "protein": a chain at one atom per 20 Å³ filling the box, as a region
        inside a molecule; "solvated": a sparse chain 4.5 Å inside the box): wall time of each preset
        and their ratio, voxel RMSE, and the MAE between voxel centres against the analytic truth (and
        against the cubic B-spline, which the fast preset learns), beside trilinear and cubic B-spline
        interpolation of the same voxels. --fast-set KEY=VALUE overrides fast-preset options.
    python -m benchmarks.convert_speed map [--size 128 | --mrc FILE [--pad-to N]]
        a whole map converted with the fast preset in a child process: wall time, peak
        memory (RSS of the child), regions fitted and stored as constants, and the size of the .nemap
        file beside the MRC file's. The map is simulated (--size, a sparse chain in solvent) or read from
        --mrc (.gz allowed), optionally centred in an N³ box of zeros (--pad-to) to measure memory on a
        large, mostly-solvent map. Memory and file size do not depend on the number of steps, so
        --fast-set max_steps=1 measures them quickly.

Figures are printed; --json FILE also writes them.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from benchmarks.common import results_dir, write_json
from fixtures.synthetic_maps import chain_map, molmap_values
from nemap.fit.fit_map import fit_map as encode
from nemap.fit.options import options_for

RESOLUTION = 3.0


def simulated(size: int, seed: int = 0, kind: str = "protein"):
    voxel = RESOLUTION / 3
    if kind == "protein":
        return chain_map((size,) * 3, voxel_size=voxel, origin=(0.0, 0.0, 0.0), resolution=RESOLUTION,
                         seed=seed, atoms=int((size * voxel) ** 3 / 20), margin=0.0)
    return chain_map((size,) * 3, voxel_size=voxel, origin=(0.0, 0.0, 0.0), resolution=RESOLUTION,
                     seed=seed, atoms=int(size ** 3 / 120))


def off_grid_points(grid, count: int, seed: int = 1) -> np.ndarray:
    """Random Å points strictly between the first and last voxel centres (q in [0.5, n − 1.5])."""
    rng = np.random.default_rng(seed)
    hi = np.asarray(grid.geometry.grid_shape) - 1.5
    q = 0.5 + rng.uniform(0, 1, (count, 3)) * (hi - 0.5)
    return grid.geometry.to_physical(q)


def classical(grid, xyz: np.ndarray, order: int) -> np.ndarray:
    q = grid.geometry.to_index(xyz).T
    return ndimage.map_coordinates(grid.values.astype(np.float64), q, order=order, mode="mirror")


def parse_overrides(pairs: list[str]) -> dict:
    """KEY=VALUE pairs → EncodeOptions overrides, each converted to the type of the preset's field."""
    base = options_for("paper-skip-flat")
    out = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        out[key] = type(getattr(base, key))(value)
    return out


def fit(grid, preset: str, **overrides):
    t0 = time.perf_counter()
    content = encode(grid, options_for(preset, device="cpu", **overrides))
    wall = time.perf_counter() - t0
    from nemap.engine.query import Engine

    engine = Engine(content)
    return content, engine, wall


def region_mode(args) -> dict:
    grid, atoms = simulated(args.size, args.seed, args.kind)
    xyz = off_grid_points(grid, args.points)
    truth = molmap_values(xyz, atoms, RESOLUTION)
    top = float(grid.values.max())
    result = {"grid": list(grid.geometry.grid_shape), "kind": args.kind, "atoms": len(atoms), "points": len(xyz),
              "units": "MAE as a fraction of the map maximum; in-mask: true density > 5 % of it"}
    inside = truth > 0.05 * top
    for name, order in (("trilinear", 1), ("cubic_bspline", 3)):
        v = classical(grid, xyz, order)
        result[f"{name}_mae"] = float(np.mean(np.abs(v - truth)) / top)
        result[f"{name}_mae_in_mask"] = float(np.mean(np.abs(v - truth)[inside]) / top)
    spline = v  # the cubic B-spline values, which the fast preset learns
    print(result, flush=True)
    presets = ["paper-skip-flat"] + ([] if args.skip_paper else ["paper"])
    for preset in presets:
        overrides = (parse_overrides(args.fast_set) if preset == "paper-skip-flat"
                     else {"max_steps": args.paper_max_steps})
        content, engine, wall = fit(grid, preset, **overrides)
        decoded = engine.sample(grid.geometry).values
        d, _ = engine.evaluate(xyz, gradient=False)
        regions = content.provenance["training"]["regions"]
        result[preset] = {
            "wall_s": round(wall, 1),
            "steps": [r.get("steps") for r in regions], "stop": [r.get("stop_reason") for r in regions],
            "voxel_rmse": float(np.sqrt(np.mean((decoded - grid.values) ** 2)) / top),
            "off_grid_mae": float(np.mean(np.abs(d - truth)) / top),
            "off_grid_mae_in_mask": float(np.mean(np.abs(d - truth)[inside]) / top),
            "mae_vs_cubic_bspline": float(np.mean(np.abs(d - spline)) / top),
        }
        print(preset, result[preset], flush=True)
    if "paper" in result:
        capped = "step-cap" in result["paper"]["stop"]  # then the paper preset's time is a lower bound
        key = "speedup_fast_vs_paper" + ("_at_least (paper stopped by --paper-max-steps)" if capped else "")
        result[key] = round(result["paper"]["wall_s"] / max(result["paper-skip-flat"]["wall_s"], 1e-9), 2)
    return result


def map_mode(args) -> dict:
    import gzip
    import shutil
    import subprocess
    import tempfile

    import nemap
    from nemap.format.geometry import Geometry
    from nemap.io.mrc import read_mrc, write_mrc

    work = Path(tempfile.mkdtemp(prefix="nemap_convert_speed_"))
    if args.mrc is None:
        grid, _ = simulated(args.size, args.seed, args.kind)
    else:
        source = args.mrc
        if str(source).endswith(".gz"):
            source = work / "source.mrc"
            with gzip.open(args.mrc, "rb") as fh:
                source.write_bytes(fh.read())
        grid = read_mrc(source)
    values, geometry = grid.values, grid.geometry
    if args.pad_to:
        values = np.zeros((args.pad_to,) * 3, np.float32)
        lo = [(args.pad_to - n) // 2 for n in grid.values.shape]
        values[tuple(slice(a, a + n) for a, n in zip(lo, grid.values.shape))] = grid.values
        geometry = Geometry(values.shape, geometry.voxel_size, geometry.origin)
    src, out = work / "map.mrc", work / "map.nemap"
    write_mrc(src, values, geometry, label="nemap convert_speed benchmark")
    del grid, values
    child = ("import json, sys; from nemap.fit.options import options_for; from nemap.tools.convert import "
             "mrc_to_nemap; "
             "mrc_to_nemap(sys.argv[1], sys.argv[2], options_for('paper-skip-flat', device='cpu', "
             "**json.loads(sys.argv[3])), "
             "progress=False)")
    command = [sys.executable, "-c", child, str(src), str(out), json.dumps(parse_overrides(args.fast_set))]
    t0 = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    with nemap.open(out) as m:
        regions, networks = m.regions.count, m.regions.network_count
        training = m.provenance.get("training", {})
        fidelity = m.provenance.get("fidelity", {}).get("overall")
    result = {"grid": list(geometry.grid_shape),
              "source": str(args.mrc) if args.mrc else f"simulated {args.kind} {args.size}³",
              "padded_to": args.pad_to, "regions": regions, "networks": networks,
              "constant_regions": regions - networks, "wall_s": round(wall, 1),
              "peak_rss_gib": round(peak / 2**30, 2), "mrc_bytes": src.stat().st_size,
              "nemap_bytes": out.stat().st_size,
              "size_ratio_nemap_over_mrc": round(out.stat().st_size / src.stat().st_size, 3),
              "options": training.get("options"), "fidelity": fidelity}
    shutil.rmtree(work)
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["region", "map"])
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kind", choices=["protein", "solvated"], default=None,
                    help="region: protein (default); map: solvated (default)")
    ap.add_argument("--skip-paper", action="store_true", help="region mode: time the fast preset only")
    ap.add_argument("--paper-max-steps", type=int, default=None,
                    help="region mode: cap the paper preset's steps (a 64³ region takes ≈ 3.5 s a step on 2 cores)")
    ap.add_argument("--fast-set", nargs="*", default=[], metavar="KEY=VALUE", help="fast-preset overrides")
    ap.add_argument("--mrc", type=Path, default=None, help="map mode: convert this MRC (.gz allowed) instead")
    ap.add_argument("--pad-to", type=int, default=None, help="map mode: centre the map in an N³ box of zeros")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results/convert_speed)")
    ap.add_argument("--name", default=None, help="result file name (default convert_speed_<mode>_<size>)")
    ap.add_argument("--toy", action="store_true", help="CI smoke run: a 16³ region and map, 2 steps")
    args = ap.parse_args(argv)
    if args.toy:
        args.size, args.points, args.paper_max_steps = 16, 1000, 2
        args.fast_set = args.fast_set or ["max_steps=2", "width=16", "sine_layers=2"]
    args.size = args.size or (64 if args.mode == "region" else 128)
    args.kind = args.kind or ("protein" if args.mode == "region" else "solvated")
    result = region_mode(args) if args.mode == "region" else map_mode(args)
    for k, v in result.items():
        print(f"{k:26s} {v}")
    name = args.name or f"convert_speed_{args.mode}_{args.size}"
    write_json(results_dir("convert_speed", args.out) / f"{name}.json", result, "convert_speed")


if __name__ == "__main__":
    main()
