"""How well does each representation interpolate a map? Trilinear, cubic B-spline and the neural map.

    python -m benchmarks.interpolation [--models 5PTI ...] [--resolutions 1.2 2 3 4] [--neural quick|fast|paper|none]
                                       [--points 200000] [--out benchmarks/results]

For each shared model (../shared/data/models_for_simulation) and resolution R: an input map made by
`nemap simulate` (molmap: grid R/3) and a control at 0.2 Å voxels over the same box. The control's
values are the analytic molmap density (the same sum of Gaussians, evaluated exactly), at
``--points`` control voxels drawn at random (an unbiased estimate of the MAE over the whole control
grid; the whole grid has up to 3·10⁷ voxels). Densities are divided by one common scale, the analytic
density's maximum over the atom centres, so every method is judged in the same units; the paper
rescaled each map to [0, 1] separately, which adds a scale error of its own.

Reported per method: MAE over control voxels whose value is > 0 (the paper's metric; with the 5σ cube
cutoff that is every voxel within 5σ of an atom), MAE over all control voxels, and the gradient error
against the analytic gradient where |∇ρ| > 5 % of its maximum: the median angle (degrees) and the median
relative error of the magnitude. B-spline and trilinear gradients are central differences of the
interpolant (h = 10⁻³ voxel); the neural map's are its own (`m.gradient`, per Å).

Writes OUT/interpolation.md (a Markdown table), OUT/interpolation.json and OUT/interpolation.png (MAE and
gradient angle against resolution, in the style of the paper's Fig. 2; needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from benchmarks.common import SHARED, TOY_FIT, results_dir, write_record
from nemap.engine.query import Engine
from nemap.fit.fit_map import fit_map as encode
from nemap.fit.options import options_for
from nemap.tools.simulate import CUTOFF_SIGMAS, SIGMA_FACTOR, read_atoms, simulate

CONTROL_VOXEL = 0.2  # Å
MODEL_FILES = {"5PTI": "5PTI.cif.gz", "1YJP": "1YJP.cif", "4E43": "4E43.pdb", "1HVR": "1hvr.pdb",
               "1A28": "1a28.pdb.gz", "19HC": "19hc.pdb.gz", "3KPR": "3KPR.cif.gz", "6Z6U": "6z6u.pdb",
               "6MSM": "6msm.pdb.bz2"}


def analytic(points: np.ndarray, xyz: np.ndarray, z: np.ndarray, sigma: float,
             chunk: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """molmap's density and its gradient (per Å) at Å points [N, 3], exactly (float64): atoms within
    the ±5σ cube of a point count, as on a molmap grid of any spacing."""
    tree = cKDTree(xyz)
    half = CUTOFF_SIGMAS * sigma
    norm = (2 * np.pi) ** -1.5 * sigma ** -3
    rho = np.zeros(len(points))
    grad = np.zeros((len(points), 3))
    for s in range(0, len(points), chunk):
        p = points[s:s + chunk]
        for i, near in enumerate(tree.query_ball_point(p, half * np.sqrt(3.0))):
            if not near:
                continue
            d = p[i] - xyz[near]
            keep = np.all(np.abs(d) <= half, axis=1)
            d, w = d[keep], z[near][keep]
            e = w * np.exp(-np.sum(d * d, axis=1) / (2 * sigma * sigma))
            rho[s + i] = e.sum()
            grad[s + i] = -(e[:, None] * d).sum(axis=0) / (sigma * sigma)
    return rho * norm, grad * norm


def control_points(geometry, count: int, seed: int) -> np.ndarray:
    """``count`` random voxel centres of the 0.2 Å control grid that spans the input map's box (Å)."""
    lo, hi = np.asarray(geometry.origin), np.asarray(geometry.to_physical(np.asarray(geometry.grid_shape) - 1.0))
    shape = np.floor((hi - lo) / CONTROL_VOXEL + 1e-9).astype(int) + 1
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, shape, (count, 3))
    return lo + idx * CONTROL_VOXEL


def classical(values: np.ndarray, geometry, points: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated density and gradient (per Å, central differences of the interpolant)."""
    coeffs = ndimage.spline_filter(values.astype(np.float64), order=3, mode="mirror") if order == 3 else \
        values.astype(np.float64)

    def at(q: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(coeffs, q.T, order=order, mode="mirror" if order == 3 else "nearest",
                                       prefilter=False)

    q = geometry.to_index(points)
    h = 1e-3
    grad = np.stack([(at(q + h * e) - at(q - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
    return at(q), grad / np.asarray(geometry.voxel_size)


def gradient_errors(g: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    mag = np.linalg.norm(truth, axis=1)
    sel = mag > 0.05 * mag.max()
    gm = np.linalg.norm(g[sel], axis=1)
    cos = np.sum(g[sel] * truth[sel], axis=1) / np.maximum(gm * mag[sel], 1e-300)
    return {"gradient_angle_deg_median": float(np.degrees(np.median(np.arccos(np.clip(cos, -1, 1))))),
            "gradient_magnitude_rel_error_median": float(np.median(np.abs(gm - mag[sel]) / mag[sel])),
            "gradient_points": int(sel.sum())}


def one_case(name: str, resolution: float, args) -> dict:
    xyz, z = read_atoms(SHARED / "models_for_simulation" / MODEL_FILES[name])
    sigma = SIGMA_FACTOR * resolution
    grid = simulate(xyz, z, resolution)
    points = control_points(grid.geometry, args.points, args.seed)
    truth, truth_grad = analytic(points, xyz, z, sigma)
    peak_rho, _ = analytic(xyz, xyz, z, sigma)
    scale = float(peak_rho.max())
    nonzero = truth > 0
    case = {"model": name, "resolution": resolution, "atoms": len(xyz), "input_voxel": resolution / 3,
            "input_grid": list(grid.geometry.grid_shape), "control_points": len(points),
            "nonzero_fraction": float(nonzero.mean()), "scale": scale, "methods": {}}
    results = {}
    for label, order in (("trilinear", 1), ("cubic B-spline", 3)):
        results[label] = classical(grid.values, grid.geometry, points, order)
    if args.neural != "none":
        options = options_for(args.neural, device=args.device, **args.fit)
        t0 = time.perf_counter()
        content = encode(grid, options)
        wall = time.perf_counter() - t0
        engine = Engine(content, device=args.device)
        d, g = engine.evaluate(points, gradient=True)
        results[f"neural ({args.neural})"] = (d, g)
        case["neural_fit"] = {"preset": args.neural, "wall_s": round(wall, 1), "regions": content.regions.count,
                              "networks": content.regions.network_count, "device": args.device}
    for label, (d, g) in results.items():
        err = np.abs(d - truth) / scale
        case["methods"][label] = {"mae_nonzero": float(err[nonzero].mean()), "mae_all": float(err.mean()),
                                  **gradient_errors(g / scale, truth_grad / scale)}
    return case


def table(cases: list[dict]) -> str:
    methods = list(cases[0]["methods"])
    head = "| model | R (Å) | input voxel (Å) | " + " | ".join(
        f"{m} MAE>0 / all / ∠∇ / Δ|∇|" for m in methods) + " |"
    rows = [head, "|" + "---|" * (3 + len(methods))]
    for c in cases:
        cells = []
        for m in methods:
            r = c["methods"][m]
            cells.append(f"{r['mae_nonzero']:.4f} / {r['mae_all']:.4f} / {r['gradient_angle_deg_median']:.1f}° / "
                         f"{100 * r['gradient_magnitude_rel_error_median']:.1f} %")
        rows.append(f"| {c['model']} | {c['resolution']:g} | {c['input_voxel']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(cases: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for model in sorted({c["model"] for c in cases}):
        mine = sorted((c for c in cases if c["model"] == model), key=lambda c: c["resolution"])
        res = [c["resolution"] for c in mine]
        for k, m in enumerate(mine[0]["methods"]):
            style = dict(marker="os^"[k % 3], label=f"{m} ({model})")
            axes[0].plot(res, [c["methods"][m]["mae_nonzero"] for c in mine], **style)
            axes[1].plot(res, [c["methods"][m]["gradient_angle_deg_median"] for c in mine], **style)
    axes[0].set(xlabel="resolution (Å)", ylabel="MAE over control voxels > 0 (fraction of max)",
                title="density between voxels", yscale="log")
    axes[1].set(xlabel="resolution (Å)", ylabel="median gradient angle error (°)", title="gradient direction")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["5PTI"], choices=sorted(MODEL_FILES))
    ap.add_argument("--resolutions", nargs="+", type=float, default=[1.2, 2.0, 3.0, 4.0])
    ap.add_argument("--neural", default="siren-sampled", choices=["siren-sampled", "paper-skip-flat", "paper",
                                                                  "siren-tiny", "none"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--points", type=int, default=200_000, help="control voxels sampled per case")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results/interpolation)")
    ap.add_argument("--toy", action="store_true", help="CI smoke run: 1YJP at 4 Å, small networks, 5 steps")
    args = ap.parse_args(argv)
    args.fit = dict(TOY_FIT) if args.toy else {}
    if args.toy:
        args.models, args.resolutions, args.neural = ["1YJP"], [4.0], "siren-tiny"
        args.points, args.device = 1000, "cpu"
    if not (SHARED / "models_for_simulation").is_dir():
        sys.exit(f"interpolation benchmark: {SHARED / 'models_for_simulation'} not found (set NEMAP_SHARED_DATA)")
    args.out = results_dir("interpolation", args.out)
    write_record(args.out, "interpolation")
    cases = []
    for name in args.models:
        for r in args.resolutions:
            t0 = time.perf_counter()
            cases.append(one_case(name, r, args))
            print(f"{name} R = {r:g} Å done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    machine = (f"{platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads")
    text = table(cases)
    print(text)
    (args.out / "interpolation.md").write_text(
        f"{text}\n\nMAE as a fraction of the map maximum; ∠∇: median angle to the analytic gradient; Δ|∇|: median "
        f"relative error of its magnitude. Machine: {machine}. Command: python -m benchmarks.interpolation "
        f"{' '.join(sys.argv[1:])}\n")
    (args.out / "interpolation.json").write_text(json.dumps({"machine": machine, "cases": cases}, indent=1))
    try:
        plot(cases, args.out / "interpolation.png")
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)


if __name__ == "__main__":
    main()
