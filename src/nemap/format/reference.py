"""Float64 reference evaluation of a neural map, written as spec/0.1/nemap.md §9 states it.

Slow and simple on purpose (NumPy, one region at a time): it defines expected values for the
worked example and conformance fixtures, and the fast engine is tested against it.
Positions are Å (N, 3) in x, y, z order; densities in source units; gradients in density units
per Å.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from nemap.format.content import Layer, Normalization, Regions
from nemap.format.geometry import Geometry
from nemap.format.tiling import blend_weights


def network_forward(u: np.ndarray, layers: Sequence[Layer], weights: Sequence[np.ndarray],
                    biases: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One network at local inputs u [N, 3] → (y [N], dy/du [N, 3]), float64 throughout.

    weights[l]: [out, in]; biases[l]: [out] (one region's slices, float32 widened exactly).
    """
    h = np.asarray(u, dtype=np.float64)
    jac = np.broadcast_to(np.eye(3), (h.shape[0], 3, 3)).copy()  # dh/du [N, width, 3]
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


def evaluate(xyz: Any, geometry: Geometry, normalization: Normalization, regions: Regions,
             layers: Sequence[Layer], weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
             ) -> tuple[np.ndarray, np.ndarray]:
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
        first, last = regions.bounds[r, 0], regions.bounds[r, 1]
        u, du_dq = local_coordinates(q[active], first, last)
        yr, dyr_du = network_forward(u, layers, [W[slot] for W in weights], [B[slot] for B in biases])
        y[active, r] = yr
        dy[active, r] = dyr_du * du_dq
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


def evaluate_map(m: Any, xyz: Any) -> tuple[np.ndarray, np.ndarray]:
    """``evaluate`` on an opened NeuralMap (or anything with the same attributes)."""
    return evaluate(xyz, m.geometry, m.normalization, m.regions, m.layers, m.weights, m.biases)
