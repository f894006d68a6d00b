"""Regions of the NEMAP_feature_grid extension (spec/extensions/NEMAP_feature_grid/README.md), in PyTorch.

A region's output at an index-space point q (x, y, z; voxel centres at integers) is

    y(q) = f₀(q) + g(q) · n(f₁(q), …, f_{C−1}(q), sin 2πq, cos 2πq),   g(q) = 1 − Π_a cos²(π q_a)

with f_c the B-spline (degree p = 3 or 5) of the region's coefficient grid, node k at q = first − m + k
(m = (p − 1)/2), and n the region's network (spec §8.3 step 2). Everything is differentiable with respect
to q (autograd), so the engine's gradient is exact; the cell index carries no gradient.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from nemap.engine import siren
from nemap.format.content import Layer
from nemap.format.reference import BSPLINE_WEIGHTS  # the polynomial table of the extension's README §3

def margin(order: int) -> int:
    """Nodes kept beyond a region's first and last voxel on each side: (p − 1)/2."""
    return (order - 1) // 2


def bspline_weights(u: torch.Tensor, order: int) -> torch.Tensor:
    """Weights [..., p + 1] of nodes i − m … i + m + 1 at fraction u of cell i (Horner, no cancellation)."""
    scale = math.factorial(order)
    out = []
    for coefficients in BSPLINE_WEIGHTS[order]:
        acc = torch.full_like(u, float(coefficients[-1]))
        for c in reversed(coefficients[:-1]):
            acc = acc * u + float(c)
        out.append(acc / scale)
    return torch.stack(out, dim=-1)


def spline_features(coefficients: torch.Tensor, t: torch.Tensor, order: int) -> torch.Tensor:
    """B-spline of coefficient grids [B, C, Kx, Ky, Kz] at node coordinates t [B, M, 3] → [B, M, C].

    Node (i, j, k) sits at t = (i, j, k); t must lie in [m, K − m − 2] per axis (the cell is floor(t);
    the clamp only guards against rounding). One gather of the (p + 1)³ nodes of every point, then one
    contraction with the separable weights (autograd differentiates it with respect to t)."""
    m, n = margin(order), order + 1
    batch, channels, kx, ky, kz = coefficients.shape
    top = torch.tensor([kx, ky, kz], dtype=t.dtype, device=t.device) - (m + 2)
    cell = torch.minimum(torch.clamp(torch.floor(t.detach()), min=float(m)), top)
    w = bspline_weights((t - cell).to(coefficients.dtype), order)        # [B, M, 3, p + 1]
    start = cell.long() - m
    steps = torch.arange(n, device=t.device)
    offsets = ((steps[:, None, None] * ky + steps[None, :, None]) * kz + steps[None, None, :]).reshape(-1)
    base = (start[..., 0] * ky + start[..., 1]) * kz + start[..., 2]      # [B, M]
    index = (base.unsqueeze(-1) + offsets).reshape(batch, 1, -1).expand(batch, channels, -1)
    picked = torch.gather(coefficients.reshape(batch, channels, -1), 2, index)
    picked = picked.reshape(batch, channels, t.shape[1], n, n, n)
    return torch.einsum("bcmijk,bmi,bmj,bmk->bmc", picked, w[..., 0, :], w[..., 1, :], w[..., 2, :])


def axis_matrix(local: torch.Tensor, order: int, nodes: int) -> torch.Tensor:
    """B-spline weights [n, nodes] along one axis at positions ``local`` = q − first [n] (index units), in
    local's dtype: f₀ on a grid is these matrices applied to the coefficient grid axis by axis."""
    m = margin(order)
    t = local + float(m)
    cell = torch.clamp(torch.floor(t), min=float(m), max=float(nodes - m - 2))
    rows = torch.zeros(local.shape[0], nodes, dtype=local.dtype)
    columns = (cell.long() - m)[:, None] + torch.arange(order + 1)
    return rows.scatter_(1, columns, bspline_weights(t - cell, order))


def interpolation_gate(q: torch.Tensor) -> torch.Tensor:
    """g(q) = 1 − Π_a cos²(π q_a): 0 with zero gradient at every voxel centre, smooth, period 1 voxel."""
    return 1.0 - torch.prod(torch.cos(math.pi * q) ** 2, dim=-1)


def network_inputs(features: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """h₀ = (f₁ … f_{C−1}, sin 2πq_x, sin 2πq_y, sin 2πq_z, cos 2πq_x, cos 2πq_y, cos 2πq_z)."""
    return torch.cat([features[..., 1:], torch.sin(2 * math.pi * q), torch.cos(2 * math.pi * q)], dim=-1)


def region_output(coefficients: torch.Tensor, local: torch.Tensor, order: int, weights: Sequence[torch.Tensor],
                  biases: Sequence[torch.Tensor], layers: Sequence[Layer]) -> torch.Tensor:
    """y [B, M] of B regions: coefficients [B, C, K…], points ``local`` = q − first [B, M, 3] (index units
    from each region's first voxel, inside its box), B-spline degree ``order``, stacked network weights.

    Positions stay in ``local``'s dtype (float64 from the engine) until the fraction within a cell is
    taken; only fractions in [0, 1) reach the coefficients' dtype, so float32 sines stay accurate. The
    periodic inputs and the gate use the fraction in place of q: both have period one voxel."""
    dtype = coefficients.dtype
    f = spline_features(coefficients, local + float(margin(order)), order)
    fraction = (local - torch.floor(local.detach())).to(dtype)
    n = siren.forward(network_inputs(f, fraction), weights, biases, layers)
    return f[..., 0] + interpolation_gate(fraction) * n
