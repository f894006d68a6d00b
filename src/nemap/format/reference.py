"""Float64 reference evaluation of a neural map, written as spec/0.1/nemap.md §9 and
spec/extensions/NEMAP_feature_grid/README.md state it.

Slow and simple on purpose (NumPy, one region at a time): it defines expected values for the
worked example and conformance fixtures, and the fast engine is tested against it.
Positions are Å (N, 3) in x, y, z order; densities in source units; gradients in density units
per Å.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nemap.format.content import Layer, Normalization, Regions
from nemap.format.geometry import Geometry
from nemap.format.tiling import blend_weights


def network_forward(u: np.ndarray, layers: Sequence[Layer], weights: Sequence[np.ndarray],
                    biases: Sequence[np.ndarray], jacobian: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One network at inputs u [N, I] → (y [N], dy/dx [N, 3]), float64 throughout, where ``jacobian``
    [N, I, 3] is dh₀/dx (default: the identity, h₀ = u with I = 3).

    weights[l]: [out, in]; biases[l]: [out] (one region's slices, float32 widened exactly).
    """
    h = np.asarray(u, dtype=np.float64)
    jac = np.broadcast_to(np.eye(3), (h.shape[0], 3, 3)).copy() if jacobian is None else jacobian
    for layer, w, b in zip(layers, weights, biases):
        w64, b64 = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
        a = h @ w64.T + b64
        da = np.einsum("oi,nid->nod", w64, jac)
        if layer.activation == "sine":
            omega = float(layer.omega)  # type: ignore[arg-type]
            h = np.sin(omega * a)
            jac = (omega * np.cos(omega * a))[:, :, None] * da
        else:
            h, jac = a, da
    return h[:, 0], jac[:, 0, :]


def local_coordinates(q: np.ndarray, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """u = 2 (q − first) / (last − first) − 1 per axis (0 where first = last), and du/dq [3]."""
    span = (last - first).astype(np.float64)
    scale = np.where(span > 0, 2.0 / np.where(span > 0, span, 1.0), 0.0)
    u = np.where(span > 0, (q - first) * scale - 1.0, 0.0)
    return u, scale


# B-spline weights of nodes i − m … i + m + 1 at fraction u of cell i: polynomial coefficients in
# ascending powers of u, times p! (NEMAP_feature_grid README §3)
BSPLINE_WEIGHTS = {
    3: ((1, -3, 3, -1), (4, 0, -6, 3), (1, 3, 3, -3), (0, 0, 0, 1)),
    5: ((1, -5, 10, -10, 5, -1), (26, -50, 20, 20, -20, 5), (66, 0, -60, 0, 30, -10),
        (26, 50, 20, -20, -20, 10), (1, 5, 10, 10, 5, -5), (0, 0, 0, 0, 0, 1)),
}


def bspline_weights(u: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights and d/du of the order + 1 nodes of a cell, [..., order + 1] each."""
    coefficients = np.asarray(BSPLINE_WEIGHTS[order], dtype=np.float64) / math.factorial(order)
    powers = u[..., None] ** np.arange(order + 1)
    slopes = np.concatenate([np.zeros_like(u)[..., None], np.arange(1, order + 1) * u[...,
                                                                                      None] ** np.arange(order)], -1)
    return powers @ coefficients.T, slopes @ coefficients.T


def feature_grid_region(local: np.ndarray, coefficients: np.ndarray, order: int, layers: Sequence[Layer],
                        weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """y and dy/dq [N, 3] of a NEMAP_feature_grid region at ``local`` = q − first [N, 3] (index units),
    coefficients [C, K…] (node k at first − m + k), float64."""
    m = (order - 1) // 2
    t = local + m
    cell = np.floor(t).astype(np.int64)  # t ∈ [m, extent + m]; K ≥ extent + p + 1 keeps every node inside
    b, db = bspline_weights(t - cell, order)
    ix = [cell[:, a, None] - m + np.arange(order + 1) for a in range(3)]
    c = np.asarray(coefficients, dtype=np.float64)[:, ix[0][:, :, None, None], ix[1][:, None, :, None],
                                                   ix[2][:, None, None, :]]
    f = np.einsum("cnijk,ni,nj,nk->nc", c, b[:, 0], b[:, 1], b[:, 2])
    df = np.stack([np.einsum("cnijk,ni,nj,nk->nc", c, *(db[:, a] if a == x else b[:, a] for a in range(3)))
                   for x in range(3)], axis=-1)
    two_pi = 2.0 * np.pi
    h0 = np.concatenate([f[:, 1:], np.sin(two_pi * local), np.cos(two_pi * local)], axis=1)
    j0 = np.concatenate([df[:, 1:], two_pi * np.cos(two_pi * local)[:, :, None] * np.eye(3),
                         -two_pi * np.sin(two_pi * local)[:, :, None] * np.eye(3)], axis=1)
    n, dn = network_forward(h0, layers, weights, biases, jacobian=j0)
    cos2 = np.cos(np.pi * local) ** 2
    gate = 1.0 - cos2.prod(axis=1)
    dgate = np.stack([np.pi * np.sin(two_pi * local[:, a]) * np.prod(np.delete(cos2, a, axis=1), axis=1)
                      for a in range(3)], axis=1)
    return f[:, 0] + gate * n, df[:, 0] + gate[:, None] * dn + n[:, None] * dgate


def _region(q: np.ndarray, r: int, regions: Regions, layers: Sequence[Layer], weights: Sequence[np.ndarray],
            biases: Sequence[np.ndarray], feature_grid: np.ndarray | None, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Region r's y and dy/dq at index points q [N, 3] (a network region)."""
    slot = int(regions.network_index[r])
    first, last = regions.bounds[r, 0], regions.bounds[r, 1]
    w, b = [W[slot] for W in weights], [B[slot] for B in biases]
    if feature_grid is not None:
        return feature_grid_region(q - first, feature_grid[slot], order, layers, w, b)
    u, du_dq = local_coordinates(q, first, last)
    yr, dyr_du = network_forward(u, layers, w, b)
    return yr, dyr_du * du_dq


def evaluate(xyz: Any, geometry: Geometry, normalization: Normalization, regions: Regions,
             layers: Sequence[Layer], weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
             feature_grid: np.ndarray | None = None, feature_grid_order: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Density [N] and gradient [N, 3] (per Å) at Å positions xyz [N, 3]; NaN outside the grid box
    (points within DOMAIN_TOLERANCE voxels of it are clamped onto it)."""
    p = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    inside = geometry.contains(p)
    q = geometry.clamp_index(geometry.to_index(p))
    w, dw = blend_weights(q, regions.bounds, geometry.grid_shape, regions.ramp_width)  # [N, R], [N, R, 3]
    y = np.zeros(w.shape, dtype=np.float64)
    dy = np.zeros(dw.shape, dtype=np.float64)
    for r in range(regions.count):
        active = inside & (w[:, r] > 0)
        if not np.any(active):
            continue
        slot = int(regions.network_index[r])
        if slot < 0:
            y[active, r] = float(regions.constant_value[r])
            continue
        y[active, r], dy[active, r] = _region(q[active], r, regions, layers, weights, biases, feature_grid,
                                              feature_grid_order)
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        blended = (w * y).sum(axis=1) / total
        grad_q = ((w[:, :, None] * dy) + dw * (y - blended[:, None])[:, :, None]).sum(axis=1) / total[:, None]
    scale = 0.5 * (normalization.value_max - normalization.value_min)
    density = normalization.decode(blended)
    gradient = grad_q * scale / np.asarray(geometry.voxel_size)
    bad = ~inside | ~(total > 0)
    density[bad] = np.nan
    gradient[bad] = np.nan
    return density, gradient


def quantized_coefficients(quantized: Any, geometry: Geometry, normalization: Normalization) -> np.ndarray:
    """NEMAP_quantized README §4, over the whole grid: the quintic interpolating coefficients (mirror boundary)
    of every decoded voxel's normalized value, with the 2 nodes before and 3 after each axis (node k at voxel
    k − 2; mirrored about the edge node, an axis under 4 voxels repeating it)."""
    from scipy import ndimage

    from nemap.format.kinds.quantized import decode_voxels

    shape = geometry.grid_shape
    y = normalization.encode(decode_voxels(quantized, shape, (0, 0, 0), shape))
    c = ndimage.spline_filter(y, order=5, mode="mirror")
    for axis, n in enumerate(shape):
        pad = [(0, 0)] * 3
        pad[axis] = (2, 3)
        c = np.pad(c, pad, mode="reflect" if n >= 4 else "edge")
    return c


def evaluate_quantized(xyz: Any, geometry: Geometry, normalization: Normalization,
                       coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Density [N] and gradient [N, 3] of a quantized map (one region over the grid: no blending) at Å positions."""
    p = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    inside = geometry.contains(p)
    q = geometry.clamp_index(geometry.to_index(p))
    t = q + 2.0
    cell = np.minimum(np.floor(t).astype(np.int64), np.asarray(coefficients.shape) - 4)
    b, db = bspline_weights(t - cell, 5)
    ix = [cell[:, a, None] - 2 + np.arange(6) for a in range(3)]
    g = coefficients[ix[0][:, :, None, None], ix[1][:, None, :, None], ix[2][:, None, None, :]]
    y = np.einsum("nijk,ni,nj,nk->n", g, b[:, 0], b[:, 1], b[:, 2])
    dy = np.stack([np.einsum("nijk,ni,nj,nk->n", g, *(db[:, a] if a == x else b[:, a] for a in range(3)))
                   for x in range(3)], axis=1)
    density = normalization.decode(y)
    gradient = dy * 0.5 * (normalization.value_max - normalization.value_min) / np.asarray(geometry.voxel_size)
    density[~inside] = np.nan
    gradient[~inside] = np.nan
    return density, gradient


def evaluate_map(m: Any, xyz: Any) -> tuple[np.ndarray, np.ndarray]:
    """``evaluate`` on an opened NeuralMap (or anything with the same attributes)."""
    if getattr(m, "quantized", None) is not None:
        c = quantized_coefficients(m.quantized, m.geometry, m.normalization)
        return evaluate_quantized(xyz, m.geometry, m.normalization, c)
    return evaluate(xyz, m.geometry, m.normalization, m.regions, m.layers, m.weights, m.biases,
                    getattr(m, "feature_grid", None), getattr(m, "feature_grid_order", 3))
