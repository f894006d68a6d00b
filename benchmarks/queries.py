"""Query speed: points per second of the exact engine against the machine's ceiling and a cubic B-spline.

    python -m benchmarks.queries [--points 200000] [--edge 64] [--decode-edge 128] [--out DIR] [--toy]

Three one-region files on an edge³ grid: a small SIREN (3 → 64 ×3 sine → 1), a paper-size SIREN
(3 → 256 ×5 sine → 1), both with random weights (speed does not depend on the values), and the default
`spline` conversion of a random map. For each: density, density + gradient (``m.evaluate``) at random
points, sampling the native grid (``m.sample``), and the same queries baked (``m.baked()``: a cubic
B-spline of the map sampled at half its voxel size) with the bake's measured error. Beside them:
``scipy.ndimage.map_coordinates(order=3)``
of the prefiltered voxels (density only), and for the SIRENs the ceiling: the float32 matrix-product rate
measured in this run (GFLOP/s) ÷ 2 FLOPs per parameter per point (density) or ÷ 8 (density + gradient),
and beside it the same ceiling with the sines added (their rate, on cache-sized arrays, measured in this run:
a 64-wide network spends about as long in its sines as in its products). Decoding: a decode-edge³ map of
paper-size networks (paper tiling) sampled on its grid, against the ceiling of its network evaluations
(every region evaluates its block of voxels: Σ block voxels × 2 FLOPs per parameter ÷ GEMM rate); and a
256³ map of small networks decoded to MRC (``nemap_to_mrc``, what ``nemap convert map.nemap out.mrc`` runs).
With ../shared/data: the default bake (``m.baked()``) of the spline conversions of four real maps (toy:
EMD-21457), with the grid it chose and its measured error.
Writes OUT/queries.json and OUT/queries.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

import nemap
from benchmarks.common import MAP_FILES, SHARED, results_dir, write_json
from fixtures.random_nemap import random_content
from nemap.fit.fit_map import fit_map
from nemap.fit.options import options_for
from nemap.format.geometry import Geometry, Grid
from nemap.format.tiling import paper_tiling
from nemap.io.mrc import read_mrc
from nemap.tools.convert import nemap_to_mrc


def gemm_rate(seconds: float = 1.0) -> float:
    """float32 matrix-product rate (FLOP/s) of a 32768 × 256 · 256 × 256 product, best of repeated runs."""
    a, b = torch.randn(32768, 256), torch.randn(256, 256)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * 32768 * 256 * 256 / (time.perf_counter() - t0))
    return best


def sine_rate(seconds: float = 0.5) -> float:
    """float32 sines per second (in place, 16384 × 64 arrays: in cache, as the engine's chunks are)."""
    x = torch.rand(16384, 64)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        x.sin_()
        best = max(best, x.numel() / (time.perf_counter() - t0))
    return best


def sines_per_point(m) -> int:
    return sum(int(w.shape[1]) for w, layer in zip(m.weights, m.layers) if layer.activation == "sine")


def decode(edge: int, width: int, sine_layers: int, flops: float, work: Path) -> dict:
    """Sampling an edge³ map of random networks (paper tiling) on its own grid, against its ceiling."""
    shape = (edge,) * 3
    content = random_content(shape, (1.0,) * 3, (0.0,) * 3, bounds=paper_tiling(shape), width=width,
                             sine_layers=sine_layers)
    path = work / f"decode_{edge}_{width}.nemap"
    nemap.write(path, content)
    with nemap.open(path) as m:
        params = sum(int(np.prod(w.shape[1:])) + int(np.prod(b.shape[1:])) for w, b in zip(m.weights, m.biases))
        evaluations = int(np.prod(m.regions.bounds[:, 1] - m.regions.bounds[:, 0] + 1, axis=1).sum())
        m.engine()
        t0 = time.perf_counter()
        nemap_to_mrc(path, work / "decoded.mrc", force=True)
        seconds = time.perf_counter() - t0
    return {"edge": edge, "width": width, "sine_layers": sine_layers, "regions": int(m.regions.count),
            "parameters": params, "network_evaluations": evaluations, "seconds": seconds,
            "ceiling_seconds": evaluations * 2 * params / flops}


def real_bakes(names: list[str], work: Path) -> list[dict]:
    """The default bake of the shared real maps (spline preset): grid chosen, its measured error, time."""
    if not (SHARED / "INDEX.md").is_file():
        print(f"queries: {SHARED} not found, real maps skipped", file=sys.stderr)
        return []
    rows = []
    for name in names:
        path = work / f"real_{name}.nemap"
        nemap.write(path, fit_map(read_mrc(SHARED / MAP_FILES[name]), options_for("spline")))
        with nemap.open(path) as m, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", nemap.NemapWarning)
            t0 = time.perf_counter()
            baked = m.baked()
            rows.append({"map": name, "grid": list(m.geometry.grid_shape), "bake_s": time.perf_counter() - t0,
                         "subdivision": round(m.geometry.voxel_size[0] / baked.geometry.voxel_size[0]),
                         "warned": bool(caught), **baked.error})
    return rows


def rate(call, count: int) -> float:
    call()  # warm-up (engine construction, allocator)
    t0 = time.perf_counter()
    call()
    return count / (time.perf_counter() - t0)


def measure(path: Path, points: np.ndarray, edge: int) -> dict:
    with nemap.open(path) as m:
        params = sum(int(np.prod(w.shape[1:])) + int(np.prod(b.shape[1:])) for w, b in zip(m.weights, m.biases))
        baked = m.baked()
        return {"parameters": params, "sines_per_point": sines_per_point(m),
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
    ap.add_argument("--decode-edge", type=int, default=128)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--toy", action="store_true", help="CI smoke run: 16³ grid, 2,000 points, 24³ decodes")
    args = ap.parse_args(argv)
    small_decode_edge = 256
    if args.toy:
        args.points, args.edge, args.decode_edge, small_decode_edge = 2000, 16, 24, 24
    shape = (args.edge,) * 3
    bounds = np.array([[[0, 0, 0], [args.edge - 1] * 3]])
    rng = np.random.default_rng(0)
    voxels = ndimage.gaussian_filter(rng.normal(size=shape), 1.5).astype(np.float32)
    points = rng.uniform(0, args.edge - 1, (args.points, 3))
    flops, sines = gemm_rate(), sine_rate()
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
                r, sine_seconds = results[label], results[label]["sines_per_point"] / sines
                r["ceiling_density"] = flops / (2 * r["parameters"])
                r["ceiling_density_gradient"] = flops / (8 * r["parameters"])
                r["ceiling_with_sines_density"] = 1 / (1 / r["ceiling_density"] + sine_seconds)
                r["ceiling_with_sines_density_gradient"] = 1 / (1 / r["ceiling_density_gradient"] + 2 * sine_seconds)
        bakes = real_bakes(["21457"] if args.toy else ["6272", "5778", "0093-crop", "21457"], Path(work))
        decodes = [decode(args.decode_edge, 256, 5, flops, Path(work)), decode(small_decode_edge, 64, 3, flops,
                                                                                  Path(work))]
    coefficients = ndimage.spline_filter(voxels.astype(np.float64), 3)
    results["map_coordinates order 3"] = {"density": rate(
        lambda: ndimage.map_coordinates(coefficients, points.T, order=3, prefilter=False), len(points))}
    out = results_dir("queries", args.out)
    write_json(out / "queries.json", {"gemm_flops": flops, "sines_per_second": sines, "points": args.points,
                                      "edge": args.edge, "results": results, "decodes": decodes,
                                      "real_bakes": bakes}, "queries")
    rows = [f"float32 GEMM: {flops / 1e9:.0f} GFLOP/s; float32 sines: {sines / 1e9:.2f} G/s; {args.points} points; "
            f"{args.edge}³ grid. \"of ceiling\": of the GEMM ceiling (with the sines added).", "",
            "| file | density (pts/s) | of ceiling | density + gradient (pts/s) | of ceiling | sample (voxels/s) | "
            "baked density / + gradient (pts/s) | baked error: density max / mean (of range) |",
            "|---|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        ratio = (lambda k, r=r: f"{r[k] / r['ceiling_' + k]:.2f} ({r[k] / r['ceiling_with_sines_' + k]:.2f})"
                 if "ceiling_" + k in r else "—")
        rows.append(f"| {label} | {r['density']:,.0f} | {ratio('density')} | "
                    f"{r.get('density_gradient', float('nan')):,.0f} | {ratio('density_gradient')} | "
                    f"{r.get('sample', float('nan')):,.0f} | " + (
                        f"{r['baked_density']:,.0f} / {r['baked_density_gradient']:,.0f} | "
                        f"{r['baked_error']['density_max']:.1e} / {r['baked_error']['density_mean']:.1e} |"
                        if "baked_error" in r else "— | — |"))
    rows += ["", "| decoded map | regions | network evaluations | time (s) | ceiling (s) | time ÷ ceiling |",
             "|---|---|---|---|---|---|"]
    rows += [f"| {d['edge']}³, SIREN {d['width']}×{d['sine_layers']} | {d['regions']} | {d['network_evaluations']:,} | "
             f"{d['seconds']:.1f} | {d['ceiling_seconds']:.1f} | {d['seconds'] / d['ceiling_seconds']:.2f} |"
             for d in decodes]
    rows += ["", "| real map (spline preset) | default bake | bake time (s) | density error max / mean (of range) | "
             "gradient error max / mean (of largest) |", "|---|---|---|---|---|"]
    rows += [f"| {b['map']} {'×'.join(map(str, b['grid']))} | voxel ÷ {b['subdivision']} | {b['bake_s']:.1f} | "
             f"{b['density_max']:.1e} / {b['density_mean']:.1e} | {b['gradient_max']:.1e} / {b['gradient_mean']:.1e} |"
             for b in bakes]
    text = "\n".join(rows) + "\n"
    (out / "queries.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
