"""One model's reading of a map (no half maps): its local resolution, molecular mask and global resolution
(or a classifier's class probabilities) on the map's own grid. ``nemap.resolution.estimate`` builds the
answer from it.

1. The map is resampled to the model's voxel size in Fourier space (its transform cropped or zero-padded, as
   RELION and EMAN rescale maps: every frequency both grids hold is kept, nothing is blurred): 1 Å for ``local``
   and the seed paper's models, so 2.5 Å is the finest resolution they tell apart; 0.5 Å for ``fine``
   (``nemap.resolution.estimate``, step 7). Every step below runs on that grid, in Å. Voxels whose 3³
   neighbourhood is exactly constant (solvent masked to a constant, as deposited maps often are) stay exactly
   constant.
2. Its noise is measured: when the map has solvent (an unmasked box: ``nemap.resolution.noise.solvent_voxels``
   on the map smoothed by 1.5 Å, clusters under 50 Å³ beyond 3 SD taken as noise), the noise power per shell
   there (``nemap.resolution.spectral``); a masked map has none to measure (its solvent is 0; the models were
   trained on masked maps as they are); a map with neither (cropped tight) gets a warning. Where it was measured,
   so is the signal-to-noise power per patch shell of the patches of most molecule (``signal_to_noise``: the
   estimate warns when the noise dominates the band it read). Masked: half the
   voxels exactly 0 (``noise.is_masked``), or a tenth of them in exactly constant 3³ neighbourhoods (MASKED_FLAT:
   a mask leaves whole regions constant, where a quantized map's zeros are scattered). Without the second rule,
   a box of molecule masked to 0 in its gaps (under half the box) had its molecule taken for solvent, its signal
   subtracted as noise, and a 3 Å map read 9.9 Å.
3. It is cut into CUBE³ patches every STEP voxels (a map smaller than a patch is padded with its mean, and
   says so); patches of solvent only (masked, or the measured noisy solvent) are skipped; from each patch the
   measured noise is subtracted (Wiener weights max(0, 1 − N/P), P the patch's own power: noise of any colour
   goes, as it went from the training patches), then it is normalized to zero mean and unit standard
   deviation and predicted; overlapping predictions are averaged with a tent window.
4. The mask is the predicted one less the solvent (masked, or the measured noisy solvent); the global
   resolution is the median of the local resolution inside it (everywhere when it is empty, or the model
   predicts none); its class is high (< 5 Å), medium (5–10 Å) or low (> 10 Å). Solvent that no patch reached
   gets the global value.
A classifier (``dnn``, ``cnn3d``) gives one class per map: the mean of its patches' class probabilities
weighted by their non-solvent share, its global resolution the probability-weighted class centre (3.75, 7.5,
12.5 Å), and no local map.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from nemap.errors import warn
from nemap.format.geometry import Grid
from nemap.machine import native_bf16
from nemap.resolution import spectral
from nemap.resolution.classes import CLASS_CENTRES
from nemap.resolution.models import CUBE, LOCAL_BINS, local_map
from nemap.resolution.noise import solvent_voxels

SOLVENT_SMOOTH = 1.5  # Å: the solvent is found on the map smoothed by a Gaussian of this SD (noise.solvent_voxels)


def measure_noise(values: np.ndarray, masked: bool, name: str, notes: list[str], voxel: float = 1.0
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The noise power per shell of a CUBE³ patch (1/(CUBE·``voxel``) Å⁻¹ apart) measured in the solvent of the map
    ``values`` (``voxel`` Å voxels), and that solvent (bool); (None, None) for a ``masked`` map or one without
    solvent (module docstring, 2)."""
    if masked:
        notes.append("solvent masked to 0: no noise to measure, none subtracted")
        return None, None
    solvent = solvent_voxels(values, voxel, smooth=SOLVENT_SMOOTH)
    if solvent is None:
        warn(f"{name}: the noise could not be measured (no solvent: under 10 % of the box is away from the "
             "molecule); the estimate may read noise as detail")
        notes.append("no solvent: the noise was not measured, none subtracted")
        return None, None
    notes.append(f"noise measured in the solvent ({100 * float(solvent.mean()):.0f} % of the box), subtracted "
                 "from every patch; patches of solvent only skipped")
    return spectral.solvent_power(values, solvent, voxel, spacing=1.0 / (CUBE * voxel)), solvent


def to_voxel(grid: Grid, voxel: float, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The map at ``voxel`` Å per voxel (Fourier resampling, x, y, z) and the zoom factors used (new/old
    voxels)."""
    zoom = np.asarray(grid.geometry.voxel_size, dtype=np.float64) / voxel
    if np.allclose(zoom, 1.0, atol=1e-3):
        return grid.values.astype(np.float32, copy=True), np.ones(3)
    notes.append(f"resampled from {tuple(round(v, 4) for v in grid.geometry.voxel_size)} Å to {voxel:g} Å voxels "
                 "(Fourier)")
    old = np.asarray(grid.geometry.grid_shape)
    shape = np.maximum(np.round(old * zoom).astype(int), 1)
    return fourier_resample(grid.values, tuple(shape)), shape / old


def fourier_resample(values: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """``values`` on ``shape`` voxels spanning the same box (voxel centres at (i + ½)·box/n along each axis):
    the transform cropped or zero-padded per axis, as for a periodic band-limited map (an unpaired Nyquist bin
    split or joined, as ``scipy.signal.resample`` does); float32, computed in single precision."""
    out = values.astype(np.float32)
    for axis, m in enumerate(shape):
        if out.shape[axis] != m:
            out = np.moveaxis(_resample_last(np.moveaxis(out, axis, -1), m), -1, axis)
    return out.astype(np.float32)


def _resample_last(x: np.ndarray, m: int) -> np.ndarray:
    """``x`` (real) on ``m`` samples along its last axis: shifted by the half-voxel offset of the new centres in
    Fourier space, then the real part's half spectrum cropped or zero-padded."""
    import scipy.fft

    n = x.shape[-1]
    delta = 0.5 * (n / m - 1)  # old voxels from the first old centre to the first new one
    f = scipy.fft.fft(x, axis=-1, workers=-1) * np.exp(2j * np.pi * np.fft.fftfreq(n) * delta).astype(np.complex64)
    kept = min(n, m)
    half = (f[..., :kept // 2 + 1] + np.conj(f[..., -np.arange(kept // 2 + 1) % n])) / 2  # the real part's
    if kept % 2 == 0:  # the unpaired bin at kept/2: joined when cropping, split when padding
        half[..., kept // 2] *= 2 if m < n else 0.5
    return scipy.fft.irfft(half * np.float32(m / n), n=m, axis=-1, workers=-1)


MASKED_FLAT = 0.1  # a map with this share of its voxels in exactly constant 3³ neighbourhoods was masked


def flat_solvent(values: np.ndarray) -> np.ndarray:
    """Voxels whose 3³ neighbourhood (edges replicated) is exactly constant: solvent masked to a constant. Only a
    voxel equal to both its x-neighbours can be; where few are (an unmasked map), only their neighbourhoods are
    compared, else the whole map is filtered (1 s on a 256³ map)."""
    same = values[1:] == values[:-1]
    candidate = np.ones(values.shape, bool)
    candidate[1:] &= same
    candidate[:-1] &= same
    at = np.flatnonzero(candidate)
    if at.size > values.size // 8:
        return ndimage.maximum_filter(values, size=3, mode="nearest") == ndimage.minimum_filter(values, size=3,
                                                                                                 mode="nearest")
    index = np.unravel_index(at, values.shape)
    centre, flat = values[index], np.ones(at.size, bool)
    for step in itertools.product((-1, 0, 1), repeat=3):
        flat &= values[tuple(np.clip(i + d, 0, n - 1) for i, d, n in zip(index, step, values.shape))] == centre
    out = np.zeros(values.shape, bool)
    out.ravel()[at[flat]] = True
    return out


STEP = 24  # voxels between patch starts: 8 voxels of overlap, blended by the tent window


def starts(n: int) -> list[int]:
    """Patch starts along an axis of n ≥ CUBE voxels: every STEP, the last flush with the end."""
    s = list(range(0, n - CUBE + 1, STEP))
    return s if s[-1] == n - CUBE else s + [n - CUBE]


def patches(values: np.ndarray, solvent: np.ndarray, noise: np.ndarray | None = None, voxel: float = 1.0
            ) -> tuple[list[tuple[int, int, int]], np.ndarray, Any]:
    """Corners of the patches that hold any non-solvent voxel, their non-solvent fractions, and a function
    giving the patches [B, 1, n, n, n] of a batch of corners, ``noise`` subtracted and normalized."""
    import torch

    corners, share = [], []
    for i in starts(values.shape[0]):
        for j in starts(values.shape[1]):
            for k in starts(values.shape[2]):
                f = 1.0 - float(solvent[i:i + CUBE, j:j + CUBE, k:k + CUBE].mean())
                if f > 0:
                    corners.append((i, j, k))
                    share.append(f)

    def batch(cs: list[tuple[int, int, int]]) -> Any:
        p = np.stack([values[i:i + CUBE, j:j + CUBE, k:k + CUBE] for i, j, k in cs])
        if noise is not None:
            p = spectral.subtract_noise(p, noise, voxel, precision=np.float32)
        p = (p - p.mean(axis=(1, 2, 3), keepdims=True)) / (p.std(axis=(1, 2, 3), keepdims=True) + 1e-8)
        return torch.as_tensor(p.astype(np.float32))[:, None]

    return corners, np.asarray(share), batch


BAND_PATCHES = 64  # the patches of most molecule whose power the signal-to-noise ratio is measured on


def signal_to_noise(values: np.ndarray, solvent: np.ndarray, noise: np.ndarray, voxel: float = 1.0) -> np.ndarray:
    """The signal-to-noise power ratio per patch shell (1/(CUBE·``voxel``) Å⁻¹ apart; shell 0 NaN) of the map
    ``values`` (``voxel`` Å voxels) against its measured ``noise`` (per shell, ``measure_noise``): (P − N)/N, P the
    mean power of the BAND_PATCHES ``patches`` with the most non-solvent voxels, at least half."""
    corners, share, _ = patches(values, solvent)
    ratio = np.full(CUBE, np.nan)
    most = [corners[i] for i in np.argsort(-share, kind="stable")[:BAND_PATCHES] if share[i] >= 0.5]
    if not most:
        return ratio
    power = np.mean([spectral.shell_power(values[i:i + CUBE, j:j + CUBE, k:k + CUBE], voxel, precision=np.float32)
                     for i, j, k in most], axis=0)
    count = min(len(power), len(noise), CUBE)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio[1:count] = (power[1:count] - noise[1:count]) / noise[1:count]
    return ratio


def _window() -> np.ndarray:
    tent = np.minimum(np.arange(CUBE) + 0.5, CUBE - np.arange(CUBE) - 0.5)
    return (tent[:, None, None] * tent[None, :, None] * tent[None, None, :]).astype(np.float32)


def _precision() -> Any:
    """bfloat16 autocast on a CPU that computes it natively (1.85× faster for ``local`` on AVX512-BF16, local
    log-resolution within 0.5 % on average), float32 elsewhere."""
    import contextlib

    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if native_bf16() else contextlib.nullcontext()


def predict(model: Any, kind: str, values: np.ndarray, solvent: np.ndarray, noise: np.ndarray | None = None,
            voxel: float = 1.0) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """On a map of ``voxel`` Å voxels (the model's) and at least CUBE voxels per axis: local resolution (Å; NaN
    where no patch was predicted), mask probability, class probabilities (the mean over patches, weighted by their
    non-solvent share) — whichever the model gives. Patches of solvent only are skipped."""
    import torch

    window = _window()
    acc_r, acc_m, acc_w = (np.zeros(values.shape, np.float32) for _ in range(3))
    acc_g = np.zeros(values.shape, np.float32) if kind == "local" else None  # the patches' global heads
    probabilities = []
    corners, share, batch_of = patches(values, solvent, noise, voxel)
    centres = np.log(np.sqrt(np.asarray(LOCAL_BINS[:-1]) * np.asarray(LOCAL_BINS[1:])))
    with torch.inference_mode(), _precision():
        for b in range(0, len(corners), 16):
            cs = corners[b:b + 16]
            out = [t.float() for t in model(batch_of(cs))] if kind == "local" else model(batch_of(cs)).float()
            if kind == "class":
                probabilities.append(torch.softmax(out, 1).numpy())
                continue
            if kind == "bins":
                logr, m, heads = centres[out.argmax(1).numpy()], np.ones((len(cs),) + (CUBE,) * 3, np.float32), None
            else:
                logr, m, heads = out[0].numpy(), torch.sigmoid(out[1]).numpy(), out[2].numpy()
            for p, ((i, j, k), r, mm) in enumerate(zip(cs, logr, m)):
                box = (slice(i, i + CUBE), slice(j, j + CUBE), slice(k, k + CUBE))
                acc_r[box] += window * r
                acc_m[box] += window * mm
                acc_w[box] += window
                if acc_g is not None:
                    acc_g[box] += window * heads[p]
    if kind == "class":
        return None, None, (share @ np.concatenate(probabilities)) / share.sum()
    with np.errstate(invalid="ignore", divide="ignore"):  # in place: four map-sized arrays at most
        logr = np.divide(acc_r, acc_w, out=acc_r)
        if acc_g is not None:
            logr = _reported(logr, np.divide(acc_g, acc_w, out=acc_g))
        local = np.exp(logr, out=logr)
        local *= voxel
        mask = np.nan_to_num(np.divide(acc_m, acc_w, out=acc_m), copy=False) if kind == "local" else None
    return local, mask, None


def _reported(log_local: np.ndarray, log_global: np.ndarray) -> np.ndarray:
    """``models.local_map`` of a whole map's tent-blended local and global heads (log Å); voxels no patch reached
    (NaN) are filled with the median of the rest for the smoothing and stay NaN."""
    missed = ~np.isfinite(log_local)
    if missed.all():
        return log_local
    if missed.any():
        fill = float(np.median(log_local[~missed]))
        log_local[missed] = fill
        log_global[missed] = fill
    out = local_map(log_local, log_global)
    out[missed] = np.nan
    return out


def _on_grid(values: np.ndarray, grid: Grid, zoom: np.ndarray) -> np.ndarray:
    """A prediction on the resampled map (the model's voxels) cut to it and resampled back onto the map's grid."""
    shape = tuple(min(n, int(round(g * z))) for n, g, z in zip(values.shape, grid.geometry.grid_shape, zoom))
    values = values[:shape[0], :shape[1], :shape[2]]
    back = np.asarray(grid.geometry.grid_shape) / np.asarray(values.shape)
    if not np.allclose(back, 1.0):
        values = ndimage.zoom(values, back, order=1, mode="nearest", grid_mode=True)
    return values.astype(np.float32)


def _nearest(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``values`` on ``shape`` voxels spanning the same box, nearest voxel."""
    if values.shape == tuple(shape):
        return values.copy()
    return ndimage.zoom(values, np.asarray(shape) / np.asarray(values.shape), order=0, mode="nearest", grid_mode=True)


@dataclass
class Reading:
    """One model's reading of a map, on the map's grid: local resolution (Å; None from a classifier), the
    predicted mask less the solvent (bool; None from a model without one), class probabilities (a classifier's)
    and the global resolution (Å)."""

    global_resolution: float
    local: np.ndarray | None = None
    inside: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    solvent: np.ndarray | None = None  # bool: the noisy solvent its noise was measured in (None: none measured)
    signal_to_noise: np.ndarray | None = None  # per patch shell (``signal_to_noise``; None: no noise measured here)


def read(grid: Grid, net: Any, kind: str, voxel: float, flat: np.ndarray, masked: bool, name: str,
         notes: list[str], noise_given: tuple[np.ndarray | None, np.ndarray | None] | None = None) -> Reading:
    """``net``'s reading of ``grid`` at ``voxel`` Å per voxel (module docstring, 1–4); ``flat``: the map's voxels
    in exactly constant neighbourhoods, ``masked``: whether the map was masked; ``noise_given``: the noise power
    per patch shell at ``voxel`` and the noisy solvent on ``grid``'s voxels, instead of measuring them (None, None:
    no noise)."""
    values, zoom = to_voxel(grid, voxel, notes)
    if noise_given is None:
        noise, noisy_solvent = measure_noise(values, masked, name, notes, voxel)
    else:
        noise = noise_given[0]
        noisy_solvent = None if noise_given[1] is None else _nearest(noise_given[1], values.shape)
    solvent = _nearest(flat, values.shape)
    values[solvent] = _nearest(grid.values, values.shape)[solvent]  # masked solvent stays exactly flat
    noisy = None
    if noisy_solvent is not None:
        solvent |= noisy_solvent  # solvent of either kind: patches of it alone are skipped, it is outside the mask
        noisy = _on_grid(noisy_solvent.astype(np.float32), grid, zoom) >= 0.5
        flat = flat | noisy
    if (np.asarray(values.shape) < CUBE).any():
        notes.append(f"{tuple(values.shape)} voxels at {voxel:g} Å is smaller than the model's {CUBE}³ input: "
                     "padded with the map's mean")
        pad = [(0, max(0, CUBE - n)) for n in values.shape]
        values = np.pad(values, pad, constant_values=float(values.mean()))
        solvent = np.pad(solvent, pad, constant_values=True)
    local, mask, probabilities = predict(net, kind, values, solvent, noise, voxel)
    if probabilities is not None:  # a classifier: one value per map
        return Reading(float(probabilities @ np.asarray(CLASS_CENTRES)), probabilities=probabilities)
    covered = np.isfinite(local)
    local = _on_grid(np.where(covered, local, np.nanmedian(local)), grid, zoom)
    inside = _on_grid(mask, grid, zoom) > 0.5 if mask is not None else np.ones(local.shape, bool)
    inside &= ~flat
    g = float(np.median(local[inside] if inside.any() else local))
    local[_on_grid(covered.astype(np.float32), grid, zoom) < 0.5] = g  # solvent no patch reached: the global value
    measured = noise is not None and noise_given is None  # the fine pass is given the first reading's noise
    ratio = signal_to_noise(values, solvent, noise, voxel) if measured else None
    return Reading(g, local, inside if mask is not None else None, solvent=noisy, signal_to_noise=ratio)
