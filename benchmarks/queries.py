"""Query speed: points per second of the exact engine against the machine's ceiling and a cubic B-spline.

    python -m benchmarks.queries [--points 200000] [--edge 64] [--out DIR] [--toy]

Three one-region files on an edge³ grid: a small SIREN (3 → 64 ×3 sine → 1), a paper-size SIREN
(3 → 256 ×5 sine → 1), both with random weights (speed does not depend on the values), and the default
`spline` conversion of a random map. For each: density, density + gradient (``m.evaluate``) at random
points, sampling the native grid (``m.sample``), and the same queries baked (``m.baked()``: a cubic
B-spline of the map sampled at half its voxel size) with the bake's measured error. Beside them: ``scipy.ndimage.map_coordinates(order=3)``
of the prefiltered voxels (density only), and for the SIRENs the ceiling: the float32 matrix-product rate
measured in this run (GFLOP/s) ÷ 2 FLOPs per parameter per point (density) or ÷ 8 (density + gradient).
Writes OUT/queries.json and OUT/queries.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

import nemap
from benchmarks.common import results_dir, write_json
from fixtures.random_nemap import random_content
from nemap.fit.fit_map import fit_map
from nemap.fit.options import options_for
from nemap.format.geometry import Geometry, Grid


def gemm_rate(seconds: float = 1.0) -> float:
    """float32 matrix-product rate (FLOP/s) of a 32768 × 256 · 256 × 256 product, best of repeated runs."""
    a, b = torch.randn(32768, 256), torch.randn(256, 256)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * 32768 * 256 * 256 / (time.perf_counter() - t0))
    return best


def rate(call, count: int) -> float:
    call()  # warm-up (engine construction, allocator)
    t0 = time.perf_counter()
    call()
    return count / (time.perf_counter() - t0)


def measure(path: Path, points: np.ndarray, edge: int) -> dict:
    with nemap.open(path) as m:
        params = sum(int(np.prod(w.shape[1:])) + int(np.prod(b.shape[1:])) for w, b in zip(m.weights, m.biases))
        baked = m.baked()
        return {"parameters": params,
                "density": rate(lambda: m.density(points), len(points)),
                "density_gradient": rate(lambda: m.evaluate(points), len(points)),
                "sample": rate(lambda: m.sample(), edge ** 3),
                "baked_density": rate(lambda: baked.density(points), len(points)),
                "baked_density_gradient": rate(lambda: baked.evaluate(points), len(points)),
                "baked_error": baked.error}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--edge", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--toy", action="store_true", help="CI smoke run: 16³ grid, 2,000 points")
    args = ap.parse_args(argv)
    if args.toy:
        args.points, args.edge = 2000, 16
    shape = (args.edge,) * 3
    bounds = np.array([[[0, 0, 0], [args.edge - 1] * 3]])
    rng = np.random.default_rng(0)
    voxels = ndimage.gaussian_filter(rng.normal(size=shape), 1.5).astype(np.float32)
    points = rng.uniform(0, args.edge - 1, (args.points, 3))
    flops = gemm_rate()
    results = {}
    with tempfile.TemporaryDirectory(prefix="nemap-queries-") as work:
        files = {"SIREN 64×3": random_content(shape, (1.0,) * 3, (0.0,) * 3, bounds=bounds, width=64, sine_layers=3),
                 "SIREN 256×5 (paper)": random_content(shape, (1.0,) * 3, (0.0,) * 3, bounds=bounds, width=256,
                                                       sine_layers=5),
                 "spline (default)": fit_map(Grid(voxels, Geometry(shape, (1.0,) * 3)), options_for("spline"))}
        for label, content in files.items():
            path = Path(work) / f"{len(results)}.nemap"
            nemap.write(path, content)
            results[label] = measure(path, points, args.edge)
            if label.startswith("SIREN"):
                results[label]["ceiling_density"] = flops / (2 * results[label]["parameters"])
                results[label]["ceiling_density_gradient"] = flops / (8 * results[label]["parameters"])
    coefficients = ndimage.spline_filter(voxels.astype(np.float64), 3)
    results["map_coordinates order 3"] = {"density": rate(
        lambda: ndimage.map_coordinates(coefficients, points.T, order=3, prefilter=False), len(points))}
    out = results_dir("queries", args.out)
    write_json(out / "queries.json", {"gemm_flops": flops, "points": args.points, "edge": args.edge,
                                      "results": results}, "queries")
    rows = [f"float32 GEMM: {flops / 1e9:.0f} GFLOP/s; {args.points} points; {args.edge}³ grid.", "",
            "| file | density (pts/s) | of ceiling | density + gradient (pts/s) | of ceiling | sample (voxels/s) | "
            "baked density / + gradient (pts/s) | baked error: density max / mean (of range) |",
            "|---|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        ratio = (lambda k: f"{r[k] / r['ceiling_' + k]:.2f}" if "ceiling_" + k in r else "—")
        rows.append(f"| {label} | {r['density']:,.0f} | {ratio('density')} | "
                    f"{r.get('density_gradient', float('nan')):,.0f} | {ratio('density_gradient')} | "
                    f"{r.get('sample', float('nan')):,.0f} | " + (
                        f"{r['baked_density']:,.0f} / {r['baked_density_gradient']:,.0f} | "
                        f"{r['baked_error']['density_max']:.1e} / {r['baked_error']['density_mean']:.1e} |"
                        if "baked_error" in r else "— | — |"))
    text = "\n".join(rows) + "\n"
    (out / "queries.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
