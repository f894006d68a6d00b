"""Making spline regions (the ``spline`` method): each region stores the B-spline (degree 3 or 5) that
interpolates the normalized voxels, as NEMAP_feature_grid regions (spec/extensions/NEMAP_feature_grid/README.md).

Nothing is trained: the coefficients come from one recursive prefilter over the whole map (scipy's
``spline_filter``, mirror boundary), and each region takes its window of them. The correction network
that the extension allows is written as the zero network (one identity layer, weights 0), so the map is
exactly the B-spline: equal to the voxels at voxel centres, C² (cubic) or C⁴ (quintic) between them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import ndimage

from nemap.engine.bspline import margin
from nemap.fit.kinds.base import RegionMaker
from nemap.fit.kinds.siren import stacked_content
from nemap.fit.plan import plan_regions
from nemap.format.content import Layer, NeuralMapContent

CHANNELS = 1  # the spline only; learned channels would follow it


def correction_layers() -> list[Layer]:
    """The zero correction network: C − 1 + 6 inputs → 1, identity (weights and bias written as 0)."""
    return [Layer(CHANNELS + 5, 1, "identity")]


def coefficient_grid(targets: np.ndarray, order: int) -> np.ndarray:
    """B-spline coefficients [1, x + 2m + 1, …] (float32) that interpolate ``targets`` [x, y, z] at voxel
    centres; node k at index k − m, with m + 1 nodes past the last voxel (the last one has weight 0 there).
    Beyond the grid the coefficients are mirrored about the edge node (c[−k] = c[k]), the rule under which
    scipy's ``mode="mirror"`` computes them."""
    m = margin(order)
    c = ndimage.spline_filter(np.asarray(targets, dtype=np.float64), order=order, mode="mirror").astype(np.float32)
    for axis, n in enumerate(c.shape):
        pad = [(0, 0)] * 3
        pad[axis] = (m, m + 1)
        c = np.pad(c, pad, mode="reflect" if n > m + 1 else "edge")
    return c[None]


def region_windows(coefficients: np.ndarray, bounds: np.ndarray, regions: list[int], order: int) -> np.ndarray:
    """Each listed region's window [len(regions), C, K…] of the map's coefficients: K = largest extent
    + p + 1 nodes per axis, node k at index first − m + k."""
    nodes = (bounds[:, 1] - bounds[:, 0]).max(axis=0) + order + 1
    short = np.maximum(bounds[:, 0].max(axis=0) + nodes - np.asarray(coefficients.shape[1:]), 0)
    if np.any(short):  # regions of unequal size: a small region's window reaches past the grid's nodes
        coefficients = np.pad(coefficients, [(0, 0)] + [(0, int(k)) for k in short], mode="edge")
    windows = np.empty((len(regions), coefficients.shape[0], *nodes), dtype=np.float32)
    for s, r in enumerate(regions):
        x, y, z = (int(v) for v in bounds[r, 0])
        windows[s] = coefficients[:, x:x + nodes[0], y:y + nodes[1], z:z + nodes[2]]
    return windows


class SplineMaker(RegionMaker):
    """Nothing is trained: one prefilter of the whole map, then each region that is not flat takes its window.
    Regions are windows of one spline, so they need not be 64 voxels long: equal regions no longer than needed
    ("balanced") keep the file small."""

    method = "spline"
    tiling = "balanced"
    trains = False

    def start_message(self, options: Any, regions: int, where: str) -> str:
        return (f"converting {regions} region(s) of ≤ {options.max_region_size} voxels per axis ({options.preset} "
                f"preset: the B-spline of degree {options.spline_order} that interpolates the voxels; nothing is "
                "trained)")

    def prepare(self, job: Any) -> None:
        job.plan.coefficients = coefficient_grid(job.targets, job.options.spline_order)
        job.plan.todo = []

    def assemble(self, job: Any) -> NeuralMapContent:
        """NEMAP_feature_grid content: each region that is not flat gets its window of the map's B-spline
        coefficients and the zero correction network (a constant map: constant regions only)."""
        grid, normalization, plan, options = job.grid, job.normalization, job.plan, job.options
        if plan.coefficients is None:  # a constant map: constant regions only, as every method writes it
            return stacked_content(job, self.tiling)
        slots = [r for r in range(plan.total) if r not in plan.flat]
        layers = correction_layers()
        windows = region_windows(plan.coefficients, plan.bounds, slots, options.spline_order)
        return NeuralMapContent(grid.geometry, normalization, plan_regions(plan, slots, options, self.tiling), layers,
                                *_zero_networks(layers, len(slots)), feature_grid=windows,
                                feature_grid_order=options.spline_order)

    def record(self, options: Any, plan: Any, device: Any) -> dict[str, Any]:
        return {"options": self.recorded_options(options), "method": "spline",
                "coefficients": f"B-spline of degree {options.spline_order} interpolating the normalized voxels "
                                "(scipy spline_filter, mirror boundary); zero correction network",
                "regions": [{"region": r, "stop_reason": "flat" if r in plan.flat else "spline"}
                            for r in range(plan.total)]}

    def recorded_options(self, options: Any) -> dict[str, Any]:
        d = dataclasses.asdict(options)
        keep = ("preset", "method", "spline_order", "max_region_size", "min_overlap", "ramp_width", "clamp_negative",
                "flat_tolerance")
        return {k: d[k] for k in keep}

    def memory_bytes(self, grid_shape: tuple[int, int, int], options: Any, batch: int = 1) -> int:
        """Values, targets, decoded copy; the float64 prefilter, the padded coefficients and the region windows
        (EMD-0093: 30 B/voxel measured)."""
        return 40 * int(np.prod(grid_shape)) + 64 * 2**20


def _zero_networks(layers: list[Layer], count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    weights = [np.zeros((count, lay.out_features, lay.in_features), np.float32) for lay in layers]
    biases = [np.zeros((count, lay.out_features), np.float32) for lay in layers]
    return weights, biases

