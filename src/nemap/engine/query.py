"""The query engine: density and gradient of a neural map at any Å positions (spec §9).

Positions are (N, 3) Å in x, y, z order; densities come back in source units, gradients in
density units per Å; NaN outside the grid box. Networks run in PyTorch (float32 by default, never
TF32); blending and the chain rule run in float64 NumPy.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch

from nemap.engine import feature_grid, siren
from nemap.engine.device import no_tf32, resolve_device
from nemap.format.content import Layer, Normalization, Regions
from nemap.format.errors import ArgumentError
from nemap.format.geometry import Geometry, Grid, grid_points
from nemap.format.tiling import blend_weights

log = logging.getLogger("nemap")

CHUNK_POINTS = 1 << 15


def positions(xyz: Any) -> np.ndarray:
    """Å positions as float64 [N, 3] (x, y, z): an (N, 3) array or nested list, or one point (3,). NaN and
    infinite positions are allowed (their density and gradient are NaN, spec §9.4); anything else is refused
    with an ArgumentError naming the shape."""
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
        inside = self.geometry.contains(p)
        q = self.geometry.clamp_index(self.geometry.to_index(np.where(inside[:, None], p, 0.0)))
        s_w = np.zeros(n)
        s_wy = np.zeros(n)
        s_wdy = np.zeros((n, 3)) if gradient else None
        s_dwy = np.zeros((n, 3)) if gradient else None
        s_dw = np.zeros((n, 3)) if gradient else None
        idx_inside = np.nonzero(inside)[0]
        qi = q[idx_inside]
        if qi.shape[0]:  # only regions whose box meets the points' bounding box
            near = np.all((self.bounds[:, 1] >= qi.min(axis=0)) & (self.bounds[:, 0] <= qi.max(axis=0)), axis=1)
        else:
            near = np.zeros(self.bounds.shape[0], dtype=bool)
        for r in np.nonzero(near)[0]:
            first, last = self.bounds[r, 0], self.bounds[r, 1]
            sel = np.all((qi >= first) & (qi <= last), axis=1)
            if not np.any(sel):
                continue
            pts = idx_inside[sel]
            w, dw = blend_weights(q[pts], self.bounds[r:r + 1], self.geometry.grid_shape, self.regions.ramp_width)
            w, dw = w[:, 0], dw[:, 0]
            keep = w > 0
            if not np.any(keep):
                continue
            pts, w, dw = pts[keep], w[keep], dw[keep]
            y, dy_dq = self._region_output(r, q[pts], gradient)
            s_w[pts] += w
            s_wy[pts] += w * y
            if gradient:
                s_wdy[pts] += w[:, None] * dy_dq
                s_dwy[pts] += dw * y[:, None]
                s_dw[pts] += dw
        with np.errstate(invalid="ignore", divide="ignore"):
            blended = s_wy / s_w
            density = self.normalization.decode(blended)
            grad = None
            if gradient:
                grad_q = (s_wdy + s_dwy - blended[:, None] * s_dw) / s_w[:, None]
                scale = 0.5 * (self.normalization.value_max - self.normalization.value_min)
                grad = grad_q * scale / np.asarray(self.geometry.voxel_size)
        bad = ~inside | ~(s_w > 0)
        density[bad] = np.nan
        if grad is not None:
            grad[bad] = np.nan
        return density, grad

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
        u = np.where(span > 0, (q - first) * du_dq - 1.0, 0.0)
        ws = [w[slot:slot + 1] for w in self.weights]
        bs = [b[slot:slot + 1] for b in self.biases]
        y, dy_du = self._chunked(u, self.dtype, lambda t: siren.forward(t, ws, bs, self.layers)[0], gradient)
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
        ys, grads = [], []
        for start in range(0, x.shape[0], CHUNK_POINTS):
            xt = torch.as_tensor(x[start:start + CHUNK_POINTS], device=self.device, dtype=dtype)
            with torch.enable_grad() if gradient else torch.inference_mode():
                if gradient:
                    xt.requires_grad_(True)
                y = output(xt)
                if gradient:
                    (g,) = torch.autograd.grad(y.sum(), xt)
                    grads.append(g.detach().cpu().double().numpy())
            ys.append(y.detach().cpu().double().numpy())
        return np.concatenate(ys), (np.concatenate(grads) if gradient else None)

    def sample(self, geometry: Geometry, fill: float = np.nan, chunk_planes: int = 8) -> Grid:
        """Density on a regular grid (positions exactly origin + i·Δ); ``fill`` outside the map."""
        nx, ny, nz = geometry.grid_shape
        values = np.empty((nx, ny, nz), dtype=np.float32)
        for i0 in range(0, nx, chunk_planes):
            planes = slice(i0, min(nx, i0 + chunk_planes))
            d, _ = self.evaluate(grid_points(geometry, planes), gradient=False)
            values[planes] = d.reshape(-1, ny, nz)
        if not np.isnan(fill):
            values[np.isnan(values)] = fill
        return Grid(values, geometry)
