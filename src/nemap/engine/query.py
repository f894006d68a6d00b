"""The query engine: density and gradient of a neural map at any Å positions (spec §9).

Positions are (N, 3) Å in x, y, z order; densities come back in source units, gradients in density units per
Å; NaN outside the grid box. Each region kind has its evaluator (``nemap.engine.kinds``: SIREN networks in
torch, splines in NumPy); blending and the chain rule run in float64 NumPy. Points are taken BLOCK_POINTS at a
time, so working memory is bounded whatever their number (10⁸ points need only the input and output arrays).
Sampling a regular grid (:meth:`Engine.sample`) uses the grid: each region evaluates its own dense block of
samples, with separable blending weights.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from nemap.engine.kinds import evaluator
from nemap.errors import ArgumentError
from nemap.format.content import Normalization, Regions
from nemap.format.geometry import DOMAIN_TOLERANCE, Geometry, Grid
from nemap.format.kinds import CONSTANT, kind_of_content
from nemap.format.tiling import axis_factors

log = logging.getLogger("nemap")

BLOCK_POINTS = 1 << 18  # points per blending pass: bounds working memory (≈ 60 MB)
SLAB_VOXELS = 1 << 22  # grid samples per slab of x planes when sampling


def positions(xyz: Any) -> np.ndarray:
    """Å positions as float64 [N, 3] (x, y, z): an (N, 3) array (any real dtype: float16 and float32 are
    widened exactly) or nested list, or one point (3,); N may be 0. NaN and infinite positions are allowed
    (their density and gradient are NaN, spec §9.4); anything else is refused with an ArgumentError naming
    the shape."""
    try:
        p = np.asarray(xyz, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentError("'xyz' must be numeric positions in Å, shape (N, 3)", parameter="xyz") from None
    if p.ndim == 1 and p.shape[0] == 3:
        return p.reshape(1, 3)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ArgumentError(f"'xyz' must be positions in Å of shape (N, 3) (x, y, z), got shape {p.shape}",
                            parameter="xyz")
    return p


class Engine:
    """Evaluates one neural map: ``Engine(content)`` for a ``NeuralMapContent`` or an opened ``NeuralMap``
    (anything with geometry, normalization, regions and its kind's arrays). ``device`` and ``dtype`` (a torch
    dtype, float32 by default: the conformant precision, spec §9.5) apply to SIREN regions; splines are
    evaluated in float64 NumPy on the CPU."""

    def __init__(self, content: Any, device: Any = "cpu", dtype: Any = None):
        self.geometry: Geometry = content.geometry
        self.normalization: Normalization = content.normalization
        self.regions: Regions = content.regions
        kind = getattr(content, "representation", None) or kind_of_content(content)
        self.kind = kind.name
        self.evaluator = evaluator(kind.name, content, device=device, dtype=dtype)
        self.bounds = np.asarray(self.regions.bounds, dtype=np.int64)
        self.slots = np.asarray(self.regions.network_index, dtype=np.int64)
        self.constant = np.asarray(kind.region_kinds({}, self.slots) == CONSTANT)
        self._top = np.asarray(self.geometry.grid_shape, dtype=np.float64) - 1.0

    @classmethod
    def from_content(cls, content: Any, device: Any = "cpu", dtype: Any = None) -> Engine:
        """The engine of a neural map (the same as ``Engine(content, device, dtype)``)."""
        return cls(content, device=device, dtype=dtype)

    def evaluate(self, xyz: Any, gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Density [N] (source units) and, if asked, gradient [N, 3] (per Å) at Å positions [N, 3]."""
        p = positions(xyz)
        n = p.shape[0]
        density = np.full(n, np.nan)
        grad = np.full((n, 3), np.nan) if gradient else None
        for start in range(0, n, BLOCK_POINTS):
            block = slice(start, start + BLOCK_POINTS)
            q = self.geometry.to_index(p[block])  # once per point: also decides inside
            inside = np.nonzero(self.geometry.contains_index(q))[0]
            if inside.size == 0:
                continue
            q = self.geometry.clamp_index(q[inside])
            d, g = self._blend(q, gradient)
            density[start + inside] = d
            if grad is not None:
                grad[start + inside] = g
        return density, grad

    def _blend(self, q: np.ndarray, gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Blended density and gradient (spec §9.2) at index points q [M, 3] inside the grid box."""
        m = q.shape[0]
        s_w, s_wy = np.zeros(m), np.zeros(m)
        s_wdy, s_dwy, s_dw = (np.zeros((m, 3)) for _ in range(3)) if gradient else (None, None, None)
        q_min, q_max = q.min(axis=0), q.max(axis=0)
        near = np.all((self.bounds[:, 1] >= q_min) & (self.bounds[:, 0] <= q_max), axis=1)
        for r in np.nonzero(near)[0]:
            pts, w, f, df = self._weights(r, q, q_min, q_max, gradient)
            if pts.size == 0:
                continue
            at = slice(None) if pts.size == m else pts  # a slice when the region holds every point: no scatter
            y, dy_dq = self._region_output(r, q[pts], gradient)
            s_w[at] += w
            s_wy[at] += w * y
            if gradient:
                dw = df * f[:, [1, 0, 0]] * f[:, [2, 2, 1]]
                s_wdy[at] += w[:, None] * dy_dq
                s_dwy[at] += dw * y[:, None]
                s_dw[at] += dw
        with np.errstate(invalid="ignore", divide="ignore"):
            blended = s_wy / s_w
            density = self.normalization.decode(blended)
            grad = None
            if gradient:
                grad_q = (s_wdy + s_dwy - blended[:, None] * s_dw) / s_w[:, None]
                grad = grad_q * self._gradient_scale()
        return density, grad

    def _weights(self, r: int, q: np.ndarray, q_min: np.ndarray, q_max: np.ndarray,
                 gradient: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Region r's points (indices into q) of positive weight, their weights, factors and factor slopes."""
        first, last = self.bounds[r, 0], self.bounds[r, 1]
        whole = bool(np.all(first <= q_min) and np.all(last >= q_max))
        pts = np.arange(q.shape[0]) if whole else np.nonzero(np.all((q >= first) & (q <= last), axis=1))[0]
        f, df = self._factors(q[pts], first, last, gradient)
        w = f[:, 0] * f[:, 1] * f[:, 2]
        keep = w > 0
        if not keep.all():
            pts, w, f = pts[keep], w[keep], f[keep]
            df = df[keep] if gradient else None
        return pts, w, f, df

    def _factors(self, q: np.ndarray, first: np.ndarray, last: np.ndarray,
                 gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-axis blending factors [M, 3] of one region at q [M, 3] and their derivatives (when asked);
        axes whose two faces lie on the grid boundary have factor 1 and skip the arithmetic."""
        f = np.ones_like(q)
        df = np.zeros_like(q) if gradient else None
        for a in range(3):
            if first[a] > 0 or last[a] < self._top[a]:
                f[:, a], dfa = axis_factors(q[:, a], float(first[a]), float(last[a]), self._top[a],
                                            self.regions.ramp_width)
                if gradient:
                    df[:, a] = dfa
        return f, df

    def _gradient_scale(self) -> np.ndarray:
        """d(density)/d(normalized output) ÷ voxel size: turns index-space slopes into density per Å."""
        half_range = 0.5 * (self.normalization.value_max - self.normalization.value_min)
        return half_range / np.asarray(self.geometry.voxel_size)

    def _region_output(self, r: int, q: np.ndarray, gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Region r's output y and dy/dq at index-space points q [M, 3]."""
        if self.constant[r]:
            value = float(self.regions.constant_value[r])
            return np.full(q.shape[0], value), (np.zeros_like(q) if gradient else None)
        return self.evaluator.output(r, int(self.slots[r]), q, gradient)

    # -- regular grids ------------------------------------------------------------------------
    def sample(self, geometry: Geometry, fill: float = np.nan) -> Grid:
        """Density on a regular grid (positions exactly origin + i·Δ, Å); ``fill`` outside the map.

        Each region evaluates the dense block of samples inside its box (no per-point search) with
        separable blending weights; x planes are taken in slabs of about SLAB_VOXELS samples."""
        nx, ny, nz = geometry.grid_shape
        axes = [(geometry.origin[a] + np.arange(geometry.grid_shape[a]) * geometry.voxel_size[a]
                 - self.geometry.origin[a]) / self.geometry.voxel_size[a] for a in range(3)]
        values = np.full((nx, ny, nz), np.float32(fill), dtype=np.float32)
        planes = max(1, SLAB_VOXELS // (ny * nz))
        for i0 in range(0, nx, planes):
            slab = slice(i0, min(nx, i0 + planes))
            values[slab] = self._sample_slab([axes[0][slab], axes[1], axes[2]], fill)
        return Grid(values, geometry)

    def _sample_slab(self, axes: list[np.ndarray], fill: float) -> np.ndarray:
        """Blended densities [nx, ny, nz] at the index coordinates axes[0] × axes[1] × axes[2]."""
        shape = tuple(a.size for a in axes)
        s_w, s_wy = np.zeros(shape), np.zeros(shape)
        inside = [(a >= -DOMAIN_TOLERANCE) & (a <= top + DOMAIN_TOLERANCE) for a, top in zip(axes, self._top)]
        clamped = [np.clip(a, 0.0, top) for a, top in zip(axes, self._top)]
        for r in range(self.bounds.shape[0]):
            first, last = self.bounds[r, 0], self.bounds[r, 1]
            spans = [np.nonzero(ok & (a >= first[k]) & (a <= last[k]))[0] for k, (a, ok) in
                     enumerate(zip(clamped, inside))]
            if any(s.size == 0 for s in spans):
                continue
            block = tuple(slice(s[0], s[-1] + 1) for s in spans)
            q = [a[b] for a, b in zip(clamped, block)]
            f = [axis_factors(q[k], float(first[k]), float(last[k]), self._top[k], self.regions.ramp_width)[0]
                 for k in range(3)]
            w = f[0][:, None, None] * f[1][None, :, None] * f[2][None, None, :]
            if not np.any(w > 0):
                continue
            s_w[block] += w
            s_wy[block] += w * self._block_output(r, q)
        with np.errstate(invalid="ignore", divide="ignore"):
            density = self.normalization.decode(s_wy / s_w)
        density[~(s_w > 0)] = fill
        density[~(inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :])] = fill
        return density

    def _block_output(self, r: int, q: list[np.ndarray]) -> np.ndarray:
        """Region r's output on the grid q[0] × q[1] × q[2] (index coordinates per axis)."""
        if self.constant[r]:
            return np.full(tuple(a.size for a in q), float(self.regions.constant_value[r]))
        return self.evaluator.block(r, int(self.slots[r]), q)
