"""Evaluation for the independent reader (spec/0.1/nemap.md §8.3, §9; NEMAP_feature_grid README §3;
NEMAP_quantized README §4): blending, networks, B-spline regions, in binary64 NumPy. The functions take an opened
``NemapFile``. NumPy only; nothing imported from the ``nemap`` package."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SLACK = 1e-6                  # §9.4


def evaluate(f: Any, points: Any, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Density [N] and gradient [N, 3] (density units per Å) at points [N, 3] (Å, x, y, z).
    Positions and blending are binary64; ``dtype`` is the precision of the networks."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    q = (p - f.origin) / f.voxel                                      # §6
    top = (f.shape - 1).astype(np.float64)
    with np.errstate(invalid="ignore"):
        inside = np.all(np.isfinite(q) & (q >= -SLACK) & (q <= top + SLACK), axis=1)   # §9.4
    q = np.clip(np.where(inside[:, None], q, 0.0), 0.0, top)
    n = len(p)
    W, WY = np.zeros(n), np.zeros(n)
    WdY, dW, dWY = np.zeros((n, 3)), np.zeros((n, 3)), np.zeros((n, 3))
    for r in range(f.count):
        w, dw = f._weight(r, q)
        take = inside & (w > 0)
        if not np.any(take):
            continue
        y, dy = f._region(r, q[take], dtype)
        w, dw = w[take], dw[take]
        W[take] += w
        WY[take] += w * y
        WdY[take] += w[:, None] * dy
        dW[take] += dw
        dWY[take] += dw * y[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        Y = WY / W
        dY = (WdY + dWY - Y[:, None] * dW) / W[:, None]                    # quotient rule, §9.3
    half = (f.vmax - f.vmin) / 2.0
    density = f.vmin + (Y + 1.0) * half                                 # §7, R-NRM-03
    gradient = dY * half / f.voxel
    bad = ~inside | ~(W > 0)
    density[bad] = np.nan
    gradient[bad] = np.nan
    return density, gradient

def _weight(f: Any, r: int, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w_r(q) and ∇_q w_r (§9.2)."""
    first, last = f.bounds[r, 0], f.bounds[r, 1]
    fac, dfac = np.ones_like(q), np.zeros_like(q)
    for a in range(3):
        lo, dlo = np.ones(len(q)), np.zeros(len(q))
        hi, dhi = np.ones(len(q)), np.zeros(len(q))
        if first[a] > 0:
            lo, dlo = _smooth((q[:, a] - first[a]) / f.rho)
            dlo = dlo / f.rho
        if last[a] < f.shape[a] - 1:
            hi, dhi = _smooth((last[a] - q[:, a]) / f.rho)
            dhi = -dhi / f.rho
        fac[:, a] = lo * hi
        dfac[:, a] = dlo * hi + lo * dhi
    w = fac.prod(axis=1)
    dw = np.stack([dfac[:, a] * np.prod(np.delete(fac, a, axis=1), axis=1) for a in range(3)], axis=1)
    return w, dw

def _region(f: Any, r: int, q: np.ndarray, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """y_r and ∂y_r/∂q (§8.3) at index-space points q [M, 3]."""
    s = int(f.slot[r])
    if f.quantized is not None:                                # NEMAP_quantized §4: the spline of the voxels
        return _spline(f.quantized_coefficients, q + 2.0, 5)
    if s < 0:
        return np.full(len(q), f.constant[r]), np.zeros_like(q)
    if f.grid_channels:
        return _feature_region(f, r, s, q, dtype)
    first, last = f.bounds[r, 0].astype(np.float64), f.bounds[r, 1].astype(np.float64)
    span = last - first
    du = np.where(span > 0, 2.0 / np.maximum(span, 1.0), 0.0)
    u = np.where(span > 0, (q - first) * du - 1.0, 0.0)
    y, dy_du = _network(f, s, u.astype(dtype), np.broadcast_to(np.eye(3, dtype=dtype), (len(q), 3, 3)), dtype)
    return y, dy_du * du

def _network(f: Any, s: int, h: np.ndarray, J: np.ndarray, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Output and Jacobian of network slot s for inputs h [M, I] with ∂h/∂x J [M, I, 3] (§8.3 step 2)."""
    for layer, Wt, b in zip(f.layers, f.weights, f.biases):
        Wl, bl = Wt[s].astype(dtype), b[s].astype(dtype)
        a = h @ Wl.T + bl
        Ja = np.einsum("oi,nik->nok", Wl, J)
        if layer["activation"] == "sine":
            om = np.dtype(dtype).type(layer["omega"])
            h, J = np.sin(om * a), (om * np.cos(om * a))[:, :, None] * Ja
        else:
            h, J = a, Ja
    return h[:, 0].astype(np.float64), J[:, 0, :].astype(np.float64)


def _feature_region(f: Any, r: int, s: int, q: np.ndarray, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """y_r and ∂y_r/∂q of a NEMAP_feature_grid region (extension README §3) at points q [M, 3]."""
    p, m = f.grid_order, (f.grid_order - 1) // 2
    local = q - f.bounds[r, 0]                           # q − first; periodic terms use it (§3)
    t = local + m                                           # node coordinates: node k at first − m + k
    cell = np.floor(t).astype(np.int64)                     # t ∈ [m, extent + m]: nodes stay inside
    b, db = _bspline(t - cell, p)                           # [M, 3, p + 1] each
    ix = [cell[:, a, None] - m + np.arange(p + 1) for a in range(3)]
    c = f.coefficients[s][:, ix[0][:, :, None, None], ix[1][:, None, :, None], ix[2][:, None, None, :]]
    c = c.astype(np.float64)                                # [C, M, p+1, p+1, p+1]
    feat = np.einsum("cmijk,mi,mj,mk->mc", c, b[:, 0], b[:, 1], b[:, 2])
    df = np.stack([np.einsum("cmijk,mi,mj,mk->mc", c, *(db[:, a] if a == x else b[:, a] for a in range(3)))
                   for x in range(3)], axis=-1)             # [M, C, 3]
    two_pi = 2.0 * np.pi
    h = np.concatenate([feat[:, 1:], np.sin(two_pi * local), np.cos(two_pi * local)], axis=1)
    J = np.concatenate([df[:, 1:], two_pi * np.cos(two_pi * local)[:, :, None] * np.eye(3),
                        -two_pi * np.sin(two_pi * local)[:, :, None] * np.eye(3)], axis=1)
    n, dn = _network(f, s, h.astype(dtype), J.astype(dtype), dtype)
    cos2 = np.cos(np.pi * local) ** 2
    gate = 1.0 - cos2.prod(axis=1)
    dgate = np.stack([np.pi * np.sin(two_pi * local[:, a]) * np.prod(np.delete(cos2, a, axis=1), axis=1)
                      for a in range(3)], axis=1)
    return feat[:, 0] + gate * n, df[:, 0] + gate[:, None] * dn + n[:, None] * dgate


def _spline(c: np.ndarray, t: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """The degree-p B-spline of one coefficient grid at node coordinates t [M, 3]: value and gradient."""
    m = (p - 1) // 2
    cell = np.minimum(np.floor(t).astype(np.int64), np.asarray(c.shape) - m - 2)
    b, db = _bspline(t - cell, p)
    ix = [cell[:, a, None] - m + np.arange(p + 1) for a in range(3)]
    g = c[ix[0][:, :, None, None], ix[1][:, None, :, None], ix[2][:, None, None, :]]
    value = np.einsum("nijk,ni,nj,nk->n", g, b[:, 0], b[:, 1], b[:, 2])
    grad = np.stack([np.einsum("nijk,ni,nj,nk->n", g, *(db[:, a] if a == x else b[:, a] for a in range(3)))
                     for x in range(3)], axis=1)
    return value, grad


# NEMAP_feature_grid README §3: B-spline weights of nodes i − m … i + m + 1 at fraction u of cell i,
# polynomial coefficients in ascending powers of u, times p!
_WEIGHTS = {3: [[1, -3, 3, -1], [4, 0, -6, 3], [1, 3, 3, -3], [0, 0, 0, 1]],
            5: [[1, -5, 10, -10, 5, -1], [26, -50, 20, 20, -20, 5], [66, 0, -60, 0, 30, -10],
                [26, 50, 20, -20, -20, 10], [1, 5, 10, 10, 5, -5], [0, 0, 0, 0, 0, 1]]}


def _bspline(u: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights and their derivatives d/du, [..., p + 1] each."""
    coef = np.asarray(_WEIGHTS[p], dtype=np.float64) / math.factorial(p)    # [p + 1, p + 1]
    powers = u[..., None] ** np.arange(p + 1)
    dpowers = np.concatenate([np.zeros_like(u)[..., None], np.arange(1, p + 1) * u[..., None] ** np.arange(p)], -1)
    return powers @ coef.T, dpowers @ coef.T


def _smooth(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S(t) = 3t² − 2t³ clamped to [0, 1], and S'(t) (§9.2)."""
    tc = np.clip(t, 0.0, 1.0)
    return tc * tc * (3.0 - 2.0 * tc), np.where((t > 0) & (t < 1), 6.0 * tc * (1.0 - tc), 0.0)
