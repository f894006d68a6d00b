"""Spline regions in the engine (NEMAP_feature_grid README §3), in NumPy, float64: the B-spline f₀ of the
region's coefficient window plus the gated correction network g·n, skipped when the file's networks are all
zero (the reference converter writes the zero network). The gradient is exact: the derivative of the spline
weights, and the chain rule through the network."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nemap.engine import bspline
from nemap.engine.kinds.base import RegionEvaluator
from nemap.format.reference import network_forward


class SplineEvaluator(RegionEvaluator):
    """The spline regions of a map (``content``: feature_grid [N, C, K…], feature_grid_order, regions and the
    correction networks)."""

    def __init__(self, content: Any, device: Any = "cpu", dtype: Any = None):
        self.order = int(content.feature_grid_order)
        self.grid = np.asarray(content.feature_grid)
        self.bounds = np.asarray(content.regions.bounds, dtype=np.int64)
        self.layers = list(content.layers)
        self.weights = [np.asarray(w, dtype=np.float64) for w in content.weights]
        self.biases = [np.asarray(b, dtype=np.float64) for b in content.biases]
        self.zero_network = all(not np.any(a) for a in self.weights + self.biases)

    def output(self, r: int, slot: int, q: np.ndarray, gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        local = q - self.bounds[r, 0]
        t = local + bspline.margin(self.order)
        if self.zero_network:
            return bspline.evaluate(self.grid[slot, 0], t, self.order, gradient)
        return self._with_network(slot, local, t)

    def _with_network(self, slot: int, local: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """f₀ + g·n and its gradient (step 7 of the README's §3)."""
        features = [bspline.evaluate(self.grid[slot, c], t, self.order, True) for c in range(self.grid.shape[1])]
        f = np.stack([v for v, _ in features], axis=1)
        df = np.stack([g for _, g in features], axis=1)                                     # [M, C, 3]
        two_pi = 2.0 * math.pi
        fraction = local - np.floor(local)
        h0 = np.concatenate([f[:, 1:], np.sin(two_pi * fraction), np.cos(two_pi * fraction)], axis=1)
        j0 = np.concatenate([df[:, 1:], two_pi * np.cos(two_pi * fraction)[:, :, None] * np.eye(3),
                             -two_pi * np.sin(two_pi * fraction)[:, :, None] * np.eye(3)], axis=1)
        n, dn = network_forward(h0, self.layers, [w[slot] for w in self.weights], [b[slot] for b in self.biases], j0)
        cos2 = np.cos(math.pi * fraction) ** 2
        gate = 1.0 - cos2.prod(axis=1)
        dgate = np.stack([math.pi * np.sin(two_pi * fraction[:, a]) * np.prod(np.delete(cos2, a, axis=1), axis=1)
                          for a in range(3)], axis=1)
        return f[:, 0] + gate * n, df[:, 0] + gate[:, None] * dn + n[:, None] * dgate

    def block(self, r: int, slot: int, axes: list[np.ndarray]) -> np.ndarray:
        """f₀ by separable weights; the gated network only off the voxel centres, where the gate is not 0."""
        first = self.bounds[r, 0]
        t = [axes[k] - first[k] + bspline.margin(self.order) for k in range(3)]
        y = bspline.on_grid(self.grid[slot, 0], t, self.order)
        if self.zero_network:
            return y
        points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        off = np.nonzero(np.any(points != np.round(points), axis=1))[0]
        if off.size:
            y.reshape(-1)[off] = self.output(r, slot, points[off], False)[0]
        return y
