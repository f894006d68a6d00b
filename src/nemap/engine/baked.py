"""Baked queries: a cubic B-spline of a neural map sampled on a grid, for bulk work.

``NeuralMap.baked(voxel_size)`` samples the map once on a regular grid over its box (default: half its
voxel size), prefilters the samples and answers density and gradient queries with SciPy's
``map_coordinates(order=3)`` — as fast as a B-spline of the voxels, at the cost of an approximation that it
measures on creation against the exact queries and reports in ``error``. Positions are Å (N, 3) in x, y,
z order; densities in source units, gradients in density units per Å; NaN outside the map's box (spec §9.4).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from nemap.engine.query import positions
from nemap.format.geometry import Geometry

STEP = 1e-3  # voxels of the baking grid: central differences of the spline for the gradient
CHECK_POINTS = 4000  # random points at which the bake is compared with the exact map


class BakedMap:
    """Density and gradient from a cubic B-spline of the map sampled on ``geometry``; ``source`` is an opened
    NeuralMap (anything with geometry, normalization, sample and evaluate taking ``device``)."""

    def __init__(self, source: Any, voxel_size: Any = None, seed: int = 0, device: str = "cpu"):
        g = source.geometry
        step = tuple(v / 2 for v in g.voxel_size) if voxel_size is None else tuple(
            np.broadcast_to(np.asarray(voxel_size, dtype=float), (3,)))
        grid = source.sample(voxel_size=step, device=device)
        self.geometry: Geometry = grid.geometry
        self.box = (np.asarray(g.origin), np.asarray(g.extent[1]))
        self._coefficients = ndimage.spline_filter(np.nan_to_num(grid.values.astype(np.float64)), order=3,
                                                   mode="mirror")
        self.error = self._measure(source, seed, device)

    def _at(self, q: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(self._coefficients, q.T, order=3, mode="mirror", prefilter=False)

    def _index(self, xyz: Any) -> tuple[np.ndarray, np.ndarray]:
        """Index positions on the baking grid (clamped onto it) and which points lie inside the map's box."""
        p = positions(xyz)
        with np.errstate(invalid="ignore"):
            inside = np.all(np.isfinite(p) & (p >= self.box[0] - 1e-6) & (p <= self.box[1] + 1e-6), axis=1)
        q = self.geometry.to_index(np.where(inside[:, None], p, self.box[0]))
        return np.clip(q, 0, np.asarray(self.geometry.grid_shape) - 1), inside

    def density(self, xyz: Any) -> np.ndarray:
        """Density [N] (source units) at Å positions [N, 3]; NaN outside the map."""
        q, inside = self._index(xyz)
        return np.where(inside, self._at(q), np.nan)

    def evaluate(self, xyz: Any) -> tuple[np.ndarray, np.ndarray]:
        """Density [N] and gradient [N, 3] (per Å; central differences of the spline)."""
        q, inside = self._index(xyz)
        top = np.asarray(self.geometry.grid_shape, dtype=float) - 1
        grad = np.stack([(self._at(np.minimum(q + STEP * e, top)) - self._at(np.maximum(q - STEP * e, 0)))
                         / (np.minimum(q[:, a] + STEP, top[a]) - np.maximum(q[:, a] - STEP, 0))
                         for a, e in enumerate(np.eye(3))], axis=1) / np.asarray(self.geometry.voxel_size)
        return np.where(inside, self._at(q), np.nan), np.where(inside[:, None], grad, np.nan)

    def gradient(self, xyz: Any) -> np.ndarray:
        return self.evaluate(xyz)[1]

    def _measure(self, source: Any, seed: int, device: str) -> dict[str, float]:
        """Largest and mean error against the exact queries at random points of the box: density as a
        fraction of the map's normalization range, gradient relative to the largest exact gradient."""
        rng = np.random.default_rng(seed)
        lo, hi = self.box
        points = lo + rng.uniform(0, 1, (CHECK_POINTS, 3)) * (hi - lo)
        d, g = source.evaluate(points, device=device)
        bd, bg = self.evaluate(points)
        span = source.normalization.value_max - source.normalization.value_min
        scale = float(np.nanmax(np.abs(g))) or 1.0
        return {"points": CHECK_POINTS, "density_max": float(np.nanmax(np.abs(bd - d)) / span),
                "density_mean": float(np.nanmean(np.abs(bd - d)) / span),
                "gradient_max": float(np.nanmax(np.abs(bg - g)) / scale),
                "gradient_mean": float(np.nanmean(np.abs(bg - g)) / scale)}
