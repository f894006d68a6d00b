"""Baked queries: a cubic B-spline of a neural map sampled on a grid, for bulk work.

``NeuralMap.baked(voxel_size)`` samples the map once on a regular grid over its box, prefilters the
samples (cubic B-spline interpolation, mirror boundary, as ``scipy.ndimage.map_coordinates(order=3)``) and
answers density and gradient queries from the 4³ coefficients around each point: one gather and one
contraction in PyTorch, the gradient exact for the spline (autograd with respect to the 3 inputs). The
approximation is measured on creation against the exact queries and reported in ``error``. Default grid:
the coarsest of ½, ⅓, ¼ of the map's voxel size whose measured density error is ≤ TARGET_ERROR of the
range (within MAX_BYTES of coefficients). Positions are Å (N, 3) in x, y, z order; densities in source
units, gradients in density units per Å; NaN outside the map's box (spec §9.4).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import ndimage

from nemap.engine.query import BLOCK_POINTS, positions
from nemap.errors import NemapWarning, require
from nemap.format.geometry import Geometry

CHECK_POINTS = 4000  # random points at which the bake is compared with the exact map
TARGET_ERROR = 1e-3  # largest density error (fraction of the range) the default grid aims for
SUBDIVISIONS = (2, 3, 4)  # default baking grids: the map's voxel size divided by these
MAX_BYTES = 1 << 30  # float32 coefficients a default grid may take
CHUNK_POINTS = 1 << 15


def cubic_spline(coefficients: Any, t: Any) -> Any:
    """Cubic B-spline of a coefficient grid [Kx, Ky, Kz] (torch) at node coordinates t [M, 3] (node k at t = k;
    t in [1, K − 3]): one gather of the 4³ nodes of every point, one contraction; differentiable in t."""
    import torch

    from nemap.engine.bspline import _tables

    values = torch.as_tensor(_tables(3)[0], dtype=coefficients.dtype)
    kx, ky, kz = coefficients.shape
    top = torch.tensor([kx, ky, kz], dtype=t.dtype) - 3
    cell = torch.minimum(torch.clamp(torch.floor(t.detach()), min=1.0), top)
    u = (t - cell).to(coefficients.dtype)
    w = torch.stack([sum(float(c) * u ** k for k, c in enumerate(row)) for row in values], dim=-1)  # [M, 3, 4]
    start = cell.long() - 1
    steps = torch.arange(4)
    offsets = ((steps[:, None, None] * ky + steps[None, :, None]) * kz + steps[None, None, :]).reshape(-1)
    base = (start[:, 0] * ky + start[:, 1]) * kz + start[:, 2]
    picked = coefficients.reshape(-1)[base[:, None] + offsets].reshape(-1, 4, 4, 4)
    return torch.einsum("mijk,mi,mj,mk->m", picked, w[:, 0], w[:, 1], w[:, 2])


class BakedMap:
    """Density and gradient from a cubic B-spline of the map sampled on ``geometry``; ``source`` is an opened
    NeuralMap (anything with geometry, normalization, sample and evaluate taking ``device``)."""

    def __init__(self, source: Any, voxel_size: Any = None, seed: int = 0, device: str = "cpu"):
        g = source.geometry
        self.map_geometry: Geometry = g
        self.box = (np.asarray(g.origin), np.asarray(g.extent[1]))
        if voxel_size is not None:
            self._bake(source, tuple(np.broadcast_to(np.asarray(voxel_size, dtype=float), (3,))), device)
            self.error = self._measure(source, seed, device)
            return
        for k in SUBDIVISIONS:
            if k > SUBDIVISIONS[0] and 4 * np.prod(np.asarray(g.grid_shape) * k) > MAX_BYTES:
                break
            self._bake(source, tuple(v / k for v in g.voxel_size), device)
            self.error = self._measure(source, seed, device)
            if self.error["density_max"] <= TARGET_ERROR:
                return
        warnings.warn(f"{getattr(source, 'path', 'the map')}: baked at {self.geometry.voxel_size} Å, its largest "
                      f"density error is {self.error['density_max']:.1e} of the range (aimed at ≤ {TARGET_ERROR:g})",
                      NemapWarning, stacklevel=3)

    def _bake(self, source: Any, step: tuple[float, float, float], device: str) -> None:
        grid = source.sample(voxel_size=step, device=device)
        self.geometry: Geometry = grid.geometry
        torch = require("torch", "siren", "bake a map")
        c = ndimage.spline_filter(np.nan_to_num(grid.values.astype(np.float64)), order=3, mode="mirror")
        # one node before and two after each axis, mirrored as map_coordinates(mode="mirror") extends them
        self._coefficients = torch.as_tensor(np.pad(c, 2 * ((1, 2),) + ((1, 2),), mode="reflect"),
                                             dtype=torch.float32)

    def _spline(self, q: np.ndarray, gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Spline values [M] and d/dq [M, 3] (when asked) at index positions q [M, 3] on the baking grid."""
        import torch

        y = np.empty(q.shape[0])
        dq = np.empty_like(q) if gradient else None
        for start in range(0, q.shape[0], CHUNK_POINTS):
            chunk = slice(start, start + CHUNK_POINTS)
            t = torch.as_tensor(q[chunk] + 1.0)
            with torch.enable_grad() if gradient else torch.inference_mode():
                t.requires_grad_(gradient)
                yt = cubic_spline(self._coefficients, t)
                if gradient:
                    dq[chunk] = torch.autograd.grad(yt.sum(), t)[0].numpy()
            y[chunk] = yt.detach().numpy()
        return y, dq

    def evaluate(self, xyz: Any, gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Density [N] (source units) and gradient [N, 3] (per Å, when asked) at Å positions [N, 3]."""
        p = positions(xyz)
        n = p.shape[0]
        density = np.full(n, np.nan)
        grad = np.full((n, 3), np.nan) if gradient else None
        top = np.asarray(self.geometry.grid_shape) - 1
        for start in range(0, n, BLOCK_POINTS):
            block = p[start:start + BLOCK_POINTS]
            inside = np.nonzero(self.map_geometry.contains(block))[0]  # the exact engine's box (spec §9.4)
            q = np.clip(self.geometry.to_index(block[inside]), 0, top)
            y, dq = self._spline(q, gradient)
            density[start + inside] = y
            if grad is not None:
                grad[start + inside] = dq / np.asarray(self.geometry.voxel_size)
        return density, grad

    def density(self, xyz: Any) -> np.ndarray:
        """Density [N] (source units) at Å positions [N, 3]; NaN outside the map."""
        return self.evaluate(xyz, gradient=False)[0]

    def gradient(self, xyz: Any) -> np.ndarray:
        """Gradient [N, 3] (density units per Å) at Å positions [N, 3]; NaN outside the map."""
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
        return {"points": CHECK_POINTS, "voxel_size": list(self.geometry.voxel_size),
                "density_max": float(np.nanmax(np.abs(bd - d)) / span),
                "density_mean": float(np.nanmean(np.abs(bd - d)) / span),
                "gradient_max": float(np.nanmax(np.abs(bg - g)) / scale),
                "gradient_mean": float(np.nanmean(np.abs(bg - g)) / scale)}
