"""The fast graph method against the paper's walk, on the same neural map and machine, in one run.

    python -m benchmarks.graph_speed [--map 21457] [--preset quick] [--sigma 3]

Uses the cached neural map of benchmarks/graph_quality.py (converting it if missing). Reports for both
methods: seeds, walkers, climbing evaluations (one evaluation = density and gradient at one point) and
per seed, wall time, nodes; then the share of the paper method's nodes that have a fast node within
0.1 Å, and, for the paper nodes that have none, how far the nearest fast node is and how steep the
density still is there (|∇ρ|/ρ, per Å) against the matched nodes.

A walk of fixed 0.05 Å steps stops where one step no longer rises: near a peak, but also near a saddle
point it approached along its stable direction, or on a sharp ridge. So every node of both graphs is
tested: it is at a peak when steepest ascent from it, in float64 with 0.001 Å steps, ends within 0.1 Å
(float32 densities are too coarse for such steps: their rounding stops the walk early); of the others,
those where the Hessian has a positive eigenvalue are saddles. The match is also given over the paper
nodes that are peaks, which is what the fast method is built to find.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

import nemap
from benchmarks.common import FIT, MAPS, TOY_FIT, cached_neural_map, require_shared, results_dir, write_json
from nemap.graph import climb_paper, saddle_points

FINE_STEP = 0.001  # Å, the peak test's ascent step
PEAK_RADIUS = 0.1  # Å
HESSIAN_STEP = 1e-3  # Å


def peak_test(field, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For nodes pos [N, 3] (Å): (at a peak: steepest ascent with FINE_STEP steps ends within
    PEAK_RADIUS; a saddle: nemap.graph.saddle_points's Hessian test, over HESSIAN_STEP)."""
    if not len(pos):
        return np.zeros(0, bool), np.zeros(0, bool)
    ends, _, _ = climb_paper(field, pos.copy(), step=FINE_STEP, max_steps=int(5.0 / FINE_STEP))
    return np.linalg.norm(ends - pos, axis=1) < PEAK_RADIUS, saddle_points(field, pos, step=HESSIAN_STEP)[0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--map", default="21457", choices=list(MAPS))
    ap.add_argument("--preset", default="siren-sampled", choices=["siren-sampled", "paper-skip-flat", "paper",
                                                                  "siren-tiny"])
    ap.add_argument("--sigma", type=float, default=3.0)
    ap.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results/graph_speed)")
    ap.add_argument("--toy", action="store_true", help="CI smoke run: a 16³ crop of the 6Z6U simulation, 5 steps")
    args = ap.parse_args(argv)
    require_shared()
    if args.toy:
        args.map, args.preset = "6z6u", "siren-tiny"
    resolution = MAPS[args.map][2]
    fit = dict(TOY_FIT) if args.toy else dict(FIT.get(args.map, {}))
    nm, _ = cached_neural_map(args.map, args.preset, fit, edge=16 if args.toy else 64)
    result: dict = {"map": args.map, "preset": args.preset, "resolution": resolution}
    graphs = {}
    with nemap.open(nm) as m:
        for method in ("paper", "seeded"):
            t0 = time.perf_counter()
            g = m.graph(resolution, sigma=args.sigma, method=method)
            graphs[method] = g
            result[method] = {"wall_s": round(time.perf_counter() - t0, 2), "nodes": g.node_count,
                              "edges": g.edge_count, **{k: g.stats[k] for k in (
                                  "seeds", "walkers", "climb_evaluations", "evaluations_per_seed",
                                  "screening_evaluations",
                                  "left_map", "isolated_removed")}}
            print(method, result[method], file=sys.stderr, flush=True)
        paper, fast = graphs["paper"].pos, graphs["seeded"].pos
        d, _ = cKDTree(fast).query(paper) if len(fast) else (np.full(len(paper), np.inf), None)
        matched = d < 0.1
        rho, grad = m.evaluate(paper)
        steep = np.linalg.norm(grad, axis=1) / np.abs(rho)
        # which nodes are peaks: steepest ascent in float64 with 0.001 Å steps (float32 densities are too
        # coarse for such steps) that ends within 0.1 Å; at the others, the Hessian tells saddles apart
        engine64 = m.engine("cpu", dtype=torch.float64)
        field64 = lambda x, g: engine64.evaluate(x, gradient=g)  # noqa: E731
        paper_peak, paper_saddle = peak_test(field64, paper)
        fast_peak, fast_saddle = peak_test(field64, fast)
    peaks = paper_peak
    result["peak_test"] = (f"steepest ascent in float64, {FINE_STEP} Å steps, ends within {PEAK_RADIUS} Å; "
                           f"saddle = Hessian (central differences of the gradient, {HESSIAN_STEP} Å) has an "
                           f"eigenvalue above 1e-3 of the largest magnitude")
    result["paper_nodes_that_are_not_peaks"] = int((~paper_peak).sum())
    result["paper_nodes_that_are_not_peaks_but_saddles"] = int((~paper_peak & paper_saddle).sum())
    result["fast_nodes_that_are_not_peaks"] = int((~fast_peak).sum())
    result["fast_nodes_that_are_not_peaks_but_saddles"] = int((~fast_peak & fast_saddle).sum())
    result["paper_peak_nodes"] = int(peaks.sum())
    result["paper_peak_nodes_with_a_fast_node_within_0.1A"] = float(matched[peaks].mean()) if peaks.any() else None
    result["paper_nodes_with_a_fast_node_within_0.1A"] = float(matched.mean()) if len(paper) else float("nan")
    result["unmatched_paper_nodes"] = {
        "count": int((~matched).sum()),
        "median_distance_to_fast_node_A": float(np.median(d[~matched])) if (~matched).any() else None,
        "median_grad_over_density_per_A": float(np.median(steep[~matched])) if (~matched).any() else None}
    result["matched_paper_nodes_median_grad_over_density_per_A"] = (float(np.median(steep[matched]))
                                                                    if matched.any() else None)
    result["climb_evaluations_paper_over_fast"] = round(
        result["paper"]["climb_evaluations"] / max(1, result["seeded"]["climb_evaluations"]), 1)
    result["speedup_wall"] = round(result["paper"]["wall_s"] / max(1e-9, result["seeded"]["wall_s"]), 1)
    for k, v in result.items():
        print(f"{k:44s} {v}")
    write_json(results_dir("graph_speed", args.out) / f"graph_speed_{args.map}.json", result, "graph_speed")


if __name__ == "__main__":
    main()
