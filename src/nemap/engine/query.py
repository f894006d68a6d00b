"""The query engine: density and gradient of a neural map at any Å positions (spec §9).

Positions are (N, 3) Å in x, y, z order; densities come back in source units, gradients in
density units per Å; NaN outside the grid box. Networks run in PyTorch (float32 by default, never
TF32; ω folded into the weights, sines in place, chunks of CHUNK_POINTS points so that activations stay
in cache; gradients by reverse mode with respect to the 3 inputs only); blending and the chain rule run in
float64 NumPy. Points are taken BLOCK_POINTS at a time, so working memory is bounded whatever their number
(10⁸ points need only the input and output arrays). Sampling a regular grid (:meth:`Engine.sample`) uses
the grid: each region evaluates its own dense block of samples, with separable blending weights.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import numpy as np
import torch

from nemap.engine import feature_grid, siren
from nemap.engine.device import no_tf32, resolve_device
from nemap.format.content import Layer, Normalization, Regions
from nemap.format.errors import ArgumentError
from nemap.format.geometry import DOMAIN_TOLERANCE, Geometry, Grid
from nemap.format.tiling import axis_factors

log = logging.getLogger("nemap")

CHUNK_POINTS = 1 << 14  # points per network call
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
    """Evaluates one neural map; build it with :meth:`Engine.from_content`."""

    def __init__(self, geometry: Geometry, normalization: Normalization, regions: Regions,
                 layers: Sequence[Layer], weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 feature_grid: np.ndarray | None = None, feature_grid_order: int = 3):
        self.geometry = geometry
        self.normalization = normalization
        self.regions = regions
        self.layers = list(layers)
        self.device = resolve_device(device)
        self.dtype = dtype
        if self.device.type == "cuda":
            no_tf32()
        self.weights = [torch.as_tensor(np.asarray(w), device=self.device).to(dtype) for w in weights]
        self.biases = [torch.as_tensor(np.asarray(b), device=self.device).to(dtype) for b in biases]
        self.bounds = np.asarray(regions.bounds, dtype=np.int64)
        self.feature_grid = None if feature_grid is None else torch.as_tensor(np.asarray(feature_grid), device=self.device)
        self.feature_grid_order = int(feature_grid_order)
        self._networks: dict[int, list[tuple[torch.Tensor, torch.Tensor, bool]]] = {}
        self._top = np.asarray(geometry.grid_shape, dtype=np.float64) - 1.0

    @classmethod
    def from_content(cls, content: Any, device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32) -> "Engine":
        """The engine of a neural map: a ``NeuralMapContent`` or an opened ``NeuralMap`` (anything with
        geometry, normalization, regions, layers, weights and biases)."""
        return cls(content.geometry, content.normalization, content.regions, content.layers, content.weights,
                   content.biases, device=device, dtype=dtype, feature_grid=getattr(content, "feature_grid", None),
                   feature_grid_order=getattr(content, "feature_grid_order", 3))

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
            first, last = self.bounds[r, 0], self.bounds[r, 1]
            whole = bool(np.all(first <= q_min) and np.all(last >= q_max))
            pts = np.arange(m) if whole else np.nonzero(np.all((q >= first) & (q <= last), axis=1))[0]
            f, df = self._factors(q[pts], first, last, gradient)
            w = f[:, 0] * f[:, 1] * f[:, 2]
            keep = w > 0
            if not keep.all():
                pts, w, f = pts[keep], w[keep], f[keep]
                df = df[keep] if gradient else None
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

    def _network(self, slot: int) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
        if slot not in self._networks:
            self._networks[slot] = siren.folded([w[slot] for w in self.weights], [b[slot] for b in self.biases],
                                                self.layers)
        return self._networks[slot]

    def _region_output(self, r: int, q: np.ndarray, gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Region r's output y and dy/dq at index-space points q [M, 3]."""
        slot = int(self.regions.network_index[r])
        if slot < 0:
            value = float(self.regions.constant_value[r])
            return np.full(q.shape[0], value), (np.zeros_like(q) if gradient else None)
        if self.feature_grid is not None:
            return self._feature_region_output(r, slot, q, gradient)
        first, last = self.bounds[r, 0].astype(np.float64), self.bounds[r, 1].astype(np.float64)
        span = last - first
        du_dq = np.where(span > 0, 2.0 / np.where(span > 0, span, 1.0), 0.0)
        u = (q - first) * du_dq - (span > 0)  # u = 0 on an axis one voxel thin
        network = self._network(slot)
        y, dy_du = self._chunked(u, self.dtype, lambda t: siren.run(t, network), gradient)
        return y, (dy_du * du_dq if gradient else None)

    def _feature_region_output(self, r: int, slot: int, q: np.ndarray,
                               gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """A NEMAP_feature_grid region's y and dy/dq (autograd through the spline and the network)."""
        coefficients = self.feature_grid[slot:slot + 1].to(self.dtype)
        ws = [w[slot:slot + 1] for w in self.weights]
        bs = [b[slot:slot + 1] for b in self.biases]

        def output(local: torch.Tensor) -> torch.Tensor:
            return feature_grid.region_output(coefficients, local.unsqueeze(0), self.feature_grid_order, ws, bs,
                                              self.layers)[0]

        # positions stay float64 until feature_grid takes the fractions within a cell
        return self._chunked(q - self.bounds[r, 0], torch.float64, output, gradient)

    def _chunked(self, x: np.ndarray, dtype: torch.dtype, output: Any,
                 gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``output`` (inputs [M, 3] → y [M]) over chunks of x, with dy/dx by autograd when asked."""
        y = np.empty(x.shape[0])
        grads = np.empty_like(x) if gradient else None
        for start in range(0, x.shape[0], CHUNK_POINTS):
            chunk = slice(start, start + CHUNK_POINTS)
            xt = torch.as_tensor(x[chunk], device=self.device, dtype=dtype)
            with torch.enable_grad() if gradient else torch.inference_mode():
                if gradient:
                    xt.requires_grad_(True)
                yt = output(xt)
                if gradient:
                    (g,) = torch.autograd.grad(yt.sum(), xt)
                    grads[chunk] = g.detach().cpu().numpy()
            y[chunk] = yt.detach().cpu().numpy()
        return y, grads

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
        shape = tuple(a.size for a in q)
        slot = int(self.regions.network_index[r])
        if slot < 0:
            return np.full(shape, float(self.regions.constant_value[r]))
        if self.feature_grid is not None:
            return self._feature_block_output(r, slot, q)
        points = np.stack(np.meshgrid(*q, indexing="ij"), axis=-1).reshape(-1, 3)
        return self._region_output(r, points, False)[0].reshape(shape)

    def _feature_block_output(self, r: int, slot: int, q: list[np.ndarray]) -> np.ndarray:
        """A feature-grid region on a grid: the B-spline f₀ by separable weights (one small matrix per axis);
        the gated network only where the gate 1 − Π cos²(πq) is not 0 (off the voxel centres)."""
        order, first = self.feature_grid_order, self.bounds[r, 0]
        coefficients = self.feature_grid[slot, 0].to(torch.float64)
        f0 = coefficients
        gate_factor = []
        for k in range(3):
            local = torch.as_tensor(q[k] - first[k], dtype=torch.float64)
            f0 = torch.tensordot(feature_grid.axis_matrix(local, order, coefficients.shape[k]), f0,
                                 dims=([1], [k])).movedim(0, k)
            fraction = local - torch.floor(local)
            gate_factor.append(torch.cos(math.pi * fraction) ** 2)
        y = np.ascontiguousarray(f0.numpy())
        gate = 1.0 - (gate_factor[0][:, None, None] * gate_factor[1][None, :, None] * gate_factor[2][None, None, :])
        off = np.nonzero(gate.numpy().reshape(-1) != 0)[0]
        if off.size:
            points = np.stack(np.meshgrid(*q, indexing="ij"), axis=-1).reshape(-1, 3)[off]
            y.reshape(-1)[off] = self._feature_region_output(r, slot, points, False)[0]
        return y
