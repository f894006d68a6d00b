"""Simulated maps whose resolution varies in space, with exact labels (training and test data for the learned
estimators). Arrays are indexed [x, y, z]; positions in Å; resolutions in Å.

A map at resolution R is molmap's density Σ Z·exp(−|p − p_atom|² / 2σ²)·(2πσ²)^−3/2, σ = 0.225·R, as a
reconstruction shows it: band-limited to the grid's Nyquist frequency (its Fourier coefficients are the atoms'
exact structure factors times the Gaussian's transform; nothing is spread onto the grid first). Where molmap's
Gaussians are wider than a voxel this equals molmap's voxel samples; sharper than that (R below ≈ 3 voxels),
point samples of a Gaussian alias and a reconstruction's voxels do not. Each sample is computed on its box
padded by 3σ of the widest level, so that the periodic transform does not wrap atoms around (atoms
farther out are dropped: within 0.5 % of the peak of molmap's own 5σ cut at ≥ 4 Å, 1.5 % at 4 Å). A map whose
resolution varies follows a smooth field R(x) by interpolating, per voxel, between the two levels of a ladder
around R(x) in log R; the label of every voxel is R(x).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy import ndimage

from nemap.resolution.fsc import frequency_squared

SIGMA_FACTOR = 0.225  # molmap: σ = 0.225 × resolution


def structure_factors(xyz: np.ndarray, weights: np.ndarray, shape: tuple[int, int, int], origin: np.ndarray,
                      voxel_size: float) -> np.ndarray:
    """Σ_a w_a·exp(−2πi s·(x_a − origin)) on the real-FFT half space of ``shape`` (s in voxel⁻¹), complex128."""
    q = (np.asarray(xyz, dtype=np.float64).reshape(-1, 3) - origin) / voxel_size  # [A, 3] voxel units
    if len(q) == 0:  # no atoms: no density
        return np.zeros((shape[0], shape[1], shape[2] // 2 + 1), np.complex128)
    freqs = [np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), np.fft.rfftfreq(shape[2])]  # one vector per axis
    ex, ey, ez = (np.exp(-2j * np.pi * q[:, k, None] * freqs[k][None, :]) for k in range(3))
    xy = (ex[:, :, None] * ey[:, None, :]).reshape(len(q), -1) * np.asarray(weights)[:, None]  # [A, nx·ny]
    return (xy.T @ ez).reshape(shape[0], shape[1], -1)


def levels(xyz: np.ndarray, weights: np.ndarray, shape: tuple[int, int, int], origin: np.ndarray,
           voxel_size: float, resolutions: np.ndarray) -> np.ndarray:
    """Band-limited molmap maps [L, nx, ny, nz] (density per Å³) of the atoms at each resolution, on the grid
    of ``shape`` voxels of ``voxel_size`` Å whose first voxel centre is ``origin`` (Å, x, y, z)."""
    pad = int(np.ceil(3 * SIGMA_FACTOR * max(resolutions) / voxel_size))
    big = tuple(n + 2 * pad for n in shape)
    lo = np.asarray(origin, dtype=np.float64) - pad * voxel_size
    inside = np.all((xyz >= lo - voxel_size) & (xyz <= lo + np.asarray(big) * voxel_size), axis=1)
    f = structure_factors(xyz[inside], weights[inside], big, lo, voxel_size)
    s2 = frequency_squared(big)  # voxel⁻²
    out = np.empty((len(resolutions),) + tuple(shape), dtype=np.float32)
    for i, r in enumerate(resolutions):
        var = (SIGMA_FACTOR * r / voxel_size) ** 2  # voxel²
        full = scipy.fft.irfftn(f * np.exp(-2 * np.pi ** 2 * var * s2), s=big, workers=-1) / voxel_size ** 3
        out[i] = full[pad:pad + shape[0], pad:pad + shape[1], pad:pad + shape[2]]
    return out


def atom_mask(xyz: np.ndarray, shape: tuple[int, int, int], origin: np.ndarray, voxel_size: float,
              radius: float = 2.5) -> np.ndarray:
    """The molecular mask: voxels within about ``radius`` Å of an atom."""
    idx = np.round((np.asarray(xyz) - origin) / voxel_size).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < np.asarray(shape)), axis=1)
    hit = np.zeros(shape, bool)
    hit[tuple(idx[ok].T)] = True
    return ndimage.distance_transform_edt(~hit, sampling=voxel_size) <= radius


def smooth_field(shape: tuple[int, int, int], rng: np.random.Generator, low: float, high: float,
                 correlation_voxels: float) -> np.ndarray:
    """A smooth random field with values in [low, high] (uniform in log after a rank transform)."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), correlation_voxels, mode="wrap")
    ranks = np.argsort(np.argsort(noise, axis=None)).reshape(shape) / max(noise.size - 1, 1)
    return np.exp(np.log(low) + ranks * (np.log(high) - np.log(low)))


def follow_field(levels: np.ndarray, resolutions: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Per voxel, the levels interpolated in log R at the field's resolution (clamped to the ladder)."""
    logs = np.log(resolutions)
    t = np.interp(np.log(field), logs, np.arange(len(resolutions)))
    i = np.clip(np.floor(t).astype(np.int64), 0, len(resolutions) - 2)
    w = t - i
    pick = np.take_along_axis
    lo = pick(levels, i[None], axis=0)[0]
    hi = pick(levels, (i + 1)[None], axis=0)[0]
    return ((1 - w) * lo + w * hi).astype(np.float32)


def coloured_noise(shape: tuple[int, int, int], rng: np.random.Generator, correlation_voxels: float) -> np.ndarray:
    """Gaussian noise low-passed by a Gaussian of ``correlation_voxels`` (plus a little white), unit variance."""
    low = ndimage.gaussian_filter(rng.standard_normal(shape), correlation_voxels)
    n = low / low.std() + 0.2 * rng.standard_normal(shape)
    return (n / n.std()).astype(np.float32)
