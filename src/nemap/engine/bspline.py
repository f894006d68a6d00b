"""B-splines of coefficient grids in NumPy: value and exact gradient at any points, and values on a regular
grid by separable weights (spec/extensions/NEMAP_feature_grid/README.md §3).

Node k of a coefficient grid sits at node coordinate t = k; a point at t lies in cell i = ⌊t⌋ and uses nodes
i − m … i + m + 1 (m = (p − 1)/2) with the degree-p weights of the fraction t − i. Float64 throughout.
"""

from __future__ import annotations

import math

import numpy as np

from nemap.format.reference import BSPLINE_WEIGHTS
from nemap.machine import map_on_cores

CHUNK_POINTS = 4096  # points per gather: keeps the (p + 1)³ nodes of a chunk in cache


def margin(order: int) -> int:
    """Nodes kept beyond a region's first and last voxel on each side: (p − 1)/2."""
    return (order - 1) // 2


def _tables(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Polynomial coefficients (ascending powers of u) of the weights and of their derivatives."""
    values = np.asarray(BSPLINE_WEIGHTS[order], dtype=np.float64) / math.factorial(order)
    slopes = np.zeros_like(values)
    slopes[:, :-1] = values[:, 1:] * np.arange(1, order + 1)
    return values, slopes


def weights(u: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights and d/du of the p + 1 nodes of a cell at fractions u, [..., p + 1] each."""
    values, slopes = _tables(order)
    powers = np.asarray(u, dtype=np.float64)[..., None] ** np.arange(order + 1)
    return powers @ values.T, powers @ slopes.T


def evaluate(coefficients: np.ndarray, t: np.ndarray, order: int,
             gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Value [M] and, if asked, gradient [M, 3] (per node unit) of the B-spline of ``coefficients`` [Kx, Ky, Kz]
    at node coordinates t [M, 3] (x, y, z). Every t must lie in [m, K − m − 2] per axis; the cell index is
    clamped there against rounding."""
    n = order + 1
    kx, ky, kz = coefficients.shape
    flat = np.ascontiguousarray(coefficients).reshape(-1)  # gathered in its own dtype, then float64
    steps = np.arange(n)
    offsets = ((steps[:, None, None] * ky + steps[None, :, None]) * kz + steps[None, None, :]).reshape(-1)
    top = np.asarray([kx, ky, kz]) - (margin(order) + 2)
    value = np.empty(t.shape[0])
    grad = np.empty((t.shape[0], 3)) if gradient else None

    def chunk(start: int) -> None:
        part = slice(start, start + CHUNK_POINTS)
        cell = np.minimum(np.maximum(np.floor(t[part]), margin(order)), top)
        w, dw = weights(t[part] - cell, order)                                   # [M, 3, n]
        first = cell.astype(np.int64) - margin(order)
        base = (first[:, 0] * ky + first[:, 1]) * kz + first[:, 2]
        nodes = flat[base[:, None] + offsets].astype(np.float64, copy=False).reshape(-1, n, n, n)
        value[part], g = _contract(nodes, w, dw, gradient)
        if grad is not None:
            grad[part] = g

    map_on_cores(chunk, range(0, t.shape[0], CHUNK_POINTS), minimum=4)
    return value, grad


def _contract(nodes: np.ndarray, w: np.ndarray, dw: np.ndarray, gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Σ nodes · w_x w_y w_z, and the three sums with one weight replaced by its derivative: z and y contracted
    with (w, dw) together as batched products of small matrices (no temporaries of the nodes' size)."""
    m, n = nodes.shape[0], nodes.shape[1]
    along_z = np.matmul(nodes.reshape(m, n * n, n), np.stack([w[:, 2], dw[:, 2]], -1)).reshape(m, n, n, 2)
    along_zy = np.matmul(along_z.transpose(0, 1, 3, 2), np.stack([w[:, 1], dw[:, 1]], -1)[:, None])  # [m, x, z', y']
    value = np.einsum("mx,mx->m", along_zy[:, :, 0, 0], w[:, 0])
    if not gradient:
        return value, None
    return value, np.stack([np.einsum("mx,mx->m", along_zy[:, :, 0, 0], dw[:, 0]),
                            np.einsum("mx,mx->m", along_zy[:, :, 0, 1], w[:, 0]),
                            np.einsum("mx,mx->m", along_zy[:, :, 1, 0], w[:, 0])], axis=1)


def axis_matrix(t: np.ndarray, order: int, nodes: int) -> np.ndarray:
    """Weights [len(t), nodes] of the nodes along one axis at node coordinates t: a spline on a grid of points
    is these matrices applied to the coefficient grid axis by axis."""
    m = margin(order)
    cell = np.clip(np.floor(t), m, nodes - m - 2)
    rows = np.zeros((t.shape[0], nodes))
    columns = (cell.astype(np.int64) - m)[:, None] + np.arange(order + 1)
    np.put_along_axis(rows, columns, weights(t - cell, order)[0], axis=1)
    return rows


def on_grid(coefficients: np.ndarray, axes: list[np.ndarray], order: int) -> np.ndarray:
    """Values [len(axes[0]), len(axes[1]), len(axes[2])] of the B-spline at the node coordinates
    axes[0] × axes[1] × axes[2] (three small matrix products)."""
    out = np.asarray(coefficients, dtype=np.float64)
    for k in range(3):
        out = np.moveaxis(np.tensordot(axis_matrix(axes[k], order, out.shape[k]), out, axes=([1], [k])), 0, k)
    return np.ascontiguousarray(out)
