"""Eq. 1–2 of the paper: the min–max normalization of a grid and the network targets, streamed over
slabs of the x axis so that memory beyond the grid stays bounded."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from nemap.format.content import Normalization

SLAB_VOXELS = 1 << 22  # voxels per slab when a whole-grid pass is streamed (bounds temporaries)


def slabs(shape: tuple[int, ...], voxels: int = SLAB_VOXELS):
    """Slices along the first (x) axis covering ``shape`` in slabs of about ``voxels`` voxels."""
    plane = max(1, int(np.prod(shape[1:])))
    step = max(1, voxels // plane)
    for i in range(0, shape[0], step):
        yield slice(i, min(shape[0], i + step))


def mean_std(values: np.ndarray, transform: Callable[[np.ndarray], np.ndarray] = lambda a: a) -> tuple[float, float]:
    """Mean and population σ of ``transform(values)`` in float64, two passes over slabs (no full copy)."""
    n = values.size
    mean = sum(float(np.sum(transform(values[s]), dtype=np.float64)) for s in slabs(values.shape)) / n
    var = sum(float(np.sum((transform(values[s]).astype(np.float64) - mean) ** 2)) for s in slabs(values.shape)) / n
    return mean, math.sqrt(var)


def normalization_for(values: np.ndarray, clamp_negative: bool) -> tuple[Normalization, bool]:
    """Eq. 1–2 statistics of a grid. Returns (normalization, constant) — constant maps get a unit span.
    Streams over slabs: memory beyond ``values`` stays bounded."""
    vmin, vmax = float(values.min()), float(values.max())
    lo, hi = (max(vmin, 0.0), max(vmax, 0.0)) if clamp_negative else (vmin, vmax)
    constant = not hi > lo
    if constant:
        hi = lo + 1.0
    mean, std = mean_std(values)
    c_mean, c_std = mean_std(values, lambda a: np.maximum(a, 0.0)) if clamp_negative and vmin < 0 else (mean, std)
    stats = {"min": vmin, "max": vmax, "mean": mean, "std": std}
    return Normalization(lo, hi, clamp_negative, (c_mean - lo) / (hi - lo), c_std / (hi - lo), stats), constant


def network_targets(values: np.ndarray, normalization: Normalization) -> np.ndarray:
    """Targets y (float32, same shape) of a whole grid, computed slab by slab."""
    out = np.empty(values.shape, dtype=np.float32)
    for s in slabs(values.shape):
        out[s] = normalization.encode(values[s])
    return out
