"""The protocol of a region representation in the engine: a region's output y (network output units) and its
gradient dy/dq at index-space points, and its values on a grid block. The engine blends regions (spec §9.2);
evaluators know only their own kind."""

from __future__ import annotations

import numpy as np


class RegionEvaluator:
    """Evaluates the regions of one kind of one map (one instance per map and device)."""

    def output(self, r: int, slot: int, q: np.ndarray, gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """y [M] and, if asked, dy/dq [M, 3] of region r (network slot ``slot``) at index points q [M, 3]."""
        raise NotImplementedError

    def block(self, r: int, slot: int, axes: list[np.ndarray]) -> np.ndarray:
        """y on the grid axes[0] × axes[1] × axes[2] of index coordinates (inside region r's box)."""
        points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        return self.output(r, slot, points, False)[0].reshape(tuple(a.size for a in axes))
