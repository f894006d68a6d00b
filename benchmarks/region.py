"""One dense region with analytic truth: the default preset against the paper preset, the cubic
B-spline and trilinear interpolation, between voxel centres.

    python -m benchmarks.region [--model 1HVR] [--resolution 3] [--edge 64] [--paper-steps 40]
                                [--natural-steps 697] [--points 100000] [--out DIR] [--toy]

The input is an edge³ molmap grid (`nemap simulate`'s density, spacing R/3) centred on the model; the
truth is the same sum of Gaussians evaluated exactly at ``--points`` random positions of the box
(benchmarks.interpolation.analytic). Scores, as in the interpolation benchmark: MAE over points of non-zero
truth as a fraction of the analytic peak density, and the median angle between the gradient and the
analytic gradient where |∇| > 5 % of its maximum.

Both presets run here, on this machine, one after the other. The paper preset is capped at
``--paper-steps`` full-batch steps: its time to the natural fit point is extrapolated as time per step ×
``--natural-steps`` (697: the steps the paper preset took to its natural fit on a real 3.4 Å region,
performance.md §9 in ../shared/notes), and its error is the error at the cap (said so in the table).

Writes OUT/region.json and OUT/region.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED, preset_options, results_dir, write_json
from benchmarks.interpolation import MODEL_FILES, analytic, classical, gradient_errors
from nemap.engine.query import Engine
from nemap.fit.fit_map import fit_map
from nemap.format.geometry import Geometry
from nemap.io.models import read_atoms
from nemap.tools.simulate import SIGMA_FACTOR, simulate


def scores(d: np.ndarray, g: np.ndarray, truth: np.ndarray, truth_grad: np.ndarray, scale: float) -> dict:
    err = np.abs(d - truth) / scale
    return {"mae_nonzero": float(err[truth > 0].mean()), **gradient_errors(g / scale, truth_grad / scale)}


def fitted(grid, preset: str, **overrides) -> tuple[Engine, float, dict]:
    t0 = time.perf_counter()
    content = fit_map(grid, preset_options(preset, device="cpu", **overrides))
    wall = time.perf_counter() - t0
    steps = [r.get("steps", 0) for r in content.provenance["training"].get("regions", [])]
    return Engine.from_content(content), wall, {"wall_s": round(wall, 2), "steps": steps}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="1HVR", choices=sorted(MODEL_FILES))
    ap.add_argument("--resolution", type=float, default=3.0)
    ap.add_argument("--edge", type=int, default=64)
    ap.add_argument("--paper-steps", type=int, default=40)
    ap.add_argument("--natural-steps", type=int, default=697)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--toy", action="store_true", help="CI smoke run: 1YJP, 16³, 2 paper steps, 2,000 points")
    args = ap.parse_args(argv)
    if args.toy:
        args.model, args.edge, args.paper_steps, args.points = "1YJP", 16, 2, 2000
    if not (SHARED / "models_for_simulation").is_dir():
        sys.exit(f"region benchmark: {SHARED / 'models_for_simulation'} not found (set NEMAP_SHARED_DATA)")
    xyz, z = read_atoms(SHARED / "models_for_simulation" / MODEL_FILES[args.model])
    step = args.resolution / 3
    geometry = Geometry((args.edge,) * 3, (step,) * 3, tuple(xyz.mean(axis=0) - step * (args.edge - 1) / 2))
    grid = simulate(xyz, z, args.resolution, geometry=geometry)
    rng = np.random.default_rng(args.seed)
    points = np.asarray(geometry.origin) + rng.uniform(0, args.edge - 1, (args.points, 3)) * step
    sigma = SIGMA_FACTOR * args.resolution
    truth, truth_grad = analytic(points, xyz, z, sigma)
    scale = float(analytic(xyz, xyz, z, sigma)[0].max())
    methods = {label: scores(*classical(grid.values, geometry, points, order), truth, truth_grad, scale)
               for label, order in (("trilinear", 1), ("cubic B-spline", 3))}
    timing = {}
    for preset, overrides in (("spline", {}), ("paper", {"max_steps": args.paper_steps})):
        engine, wall, record = fitted(grid, preset, **overrides)
        methods[preset] = scores(*engine.evaluate(points, gradient=True), truth, truth_grad, scale)
        timing[preset] = record
        print(f"{preset}: {wall:.1f} s", file=sys.stderr, flush=True)
    paper_steps = max(sum(timing["paper"]["steps"]), 1)
    per_step = timing["paper"]["wall_s"] / paper_steps
    timing["paper"]["extrapolated_to_natural_fit_s"] = round(per_step * args.natural_steps, 1)
    speedup = timing["paper"]["extrapolated_to_natural_fit_s"] / max(timing["spline"]["wall_s"], 1e-9)
    result = {"model": args.model, "resolution": args.resolution, "edge": args.edge, "voxel": step,
              "points": args.points, "scale": scale, "methods": methods, "timing": timing,
              "speedup_default_vs_paper_extrapolated": round(speedup, 1),
              "paper_scored_at_step": args.paper_steps}
    out = results_dir("region", args.out)
    write_json(out / "region.json", result, "region")
    rows = ["| method | off-grid MAE / peak | gradient angle (median °) | |Δ∇|/|∇| (median) |", "|---|---|---|---|"]
    for label, s in methods.items():
        note = f" (at step {args.paper_steps})" if label == "paper" else ""
        rows.append(f"| {label}{note} | {s['mae_nonzero']:.5f} | {s['gradient_angle_deg_median']:.2f} | "
                    f"{s['gradient_magnitude_rel_error_median']:.4f} |")
    text = "\n".join(rows) + (
        f"\n\n{args.model}, {args.edge}³ molmap grid at {args.resolution:g} Å (voxel {step:.3f} Å), "
        f"{args.points} random points. Default (spline) {timing['spline']['wall_s']} s; paper "
        f"{timing['paper']['wall_s']} s for {paper_steps} steps, extrapolated to {args.natural_steps} steps: "
        f"{timing['paper']['extrapolated_to_natural_fit_s']} s; ratio {speedup:.0f}×.\n")
    (out / "region.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
