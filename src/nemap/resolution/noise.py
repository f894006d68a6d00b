"""How noisy a map is: the standard deviation of its noise (source density units), estimated in the best way the
data allow, with the way it was estimated.

1. ``half-maps``: the SD of (H1 − H2)/2 over the box — the noise of the full map (H1 + H2)/2, free of signal.
2. ``solvent`` (an unmasked map: under half of its voxels exactly 0): the SD of the voxels outside the molecule,
   found by excluding every voxel within ``DILATION_A`` Å (per axis: a box) of a voxel beyond 3 SD of the median,
   iterated; needs at least MIN_SOLVENT of the box.
3. ``outer-shell`` (a masked map, whose solvent is 0): the power between the map's resolution and Nyquist (the
   outer fifth of the shells when no resolution is known), taken as white noise inside the mask's voxels:
   σ² = ⟨|F|²⟩ / (N · f), f the fraction of voxels that are not 0. A map low-passed at its resolution has little
   power there, so this errs on the small side (a smaller bound, a larger file).
4. ``fallback``: a constant map, or one too small to tell (under MIN_VOXELS along an axis): no estimate (sd 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
from scipy import ndimage

from nemap.resolution.fsc import frequency_squared, half_space_weight

MIN_VOXELS = 8  # along every axis, for any estimate from the map itself
MIN_SOLVENT = 0.1  # of the box: fewer solvent voxels than this and the solvent is not trusted
MASKED = 0.5  # a map with at least this fraction of exact zeros is masked: its solvent says nothing
DILATION_A = 3.0  # Å around voxels beyond 3 SD that are not solvent
MIN_MOLECULE = 0.01  # of the box: with smoothing, less than this standing out of the noise is no molecule
MIN_CLUSTER_A3 = 50.0  # Å³: with smoothing, smaller clusters beyond 3 SD are taken as noise
MEDIAN_SAMPLES = 1 << 20  # medians are taken over about this many voxels (a regular subsample)
STATISTICS_STEP_A = 2.0  # Å: with smoothing, the solvent's median and SD are first taken on voxels this far apart
OUTER_SHELLS = 0.8  # without a resolution: the shells beyond this fraction of Nyquist


@dataclass(frozen=True)
class NoiseEstimate:
    """``sd`` in density units (0: not measured), ``method`` (half-maps, solvent, outer-shell, fallback) and a
    sentence saying how."""

    sd: float
    method: str
    description: str

    def to_json(self) -> dict[str, Any]:
        return {"sd": float(self.sd), "method": self.method, "description": self.description}


def from_half_maps(half1: np.ndarray, half2: np.ndarray) -> NoiseEstimate:
    """The SD of (H1 − H2)/2 (float64, streamed over x slabs)."""
    total, squares, n = 0.0, 0.0, half1.size
    for i in range(half1.shape[0]):
        d = (half1[i].astype(np.float64) - half2[i].astype(np.float64)) / 2
        total += float(d.sum())
        squares += float((d * d).sum())
    sd = math.sqrt(max(squares / n - (total / n) ** 2, 0.0))
    return NoiseEstimate(sd, "half-maps", f"SD of (H1 − H2)/2 over the {n} voxels of the box")


def estimate_noise(values: np.ndarray, voxel_size: Any, resolution: float | None = None) -> NoiseEstimate:
    """The map's noise SD from the map alone (solvent, else outer shell, else fallback)."""
    v = np.asarray(values)
    if min(v.shape) < MIN_VOXELS:
        return NoiseEstimate(0.0, "fallback", f"the map is under {MIN_VOXELS} voxels along an axis: too small to tell")
    if float(v.max()) == float(v.min()):
        return NoiseEstimate(0.0, "fallback", "the map is constant: it has no noise to measure")
    if not is_masked(v):
        found = solvent(v, voxel_size)
        if found is not None:
            return found
    return outer_shell(v, voxel_size, resolution)


def is_masked(values: np.ndarray) -> bool:
    """Whether at least MASKED of the map's voxels are exactly 0 (a mask's outside: its solvent says nothing)."""
    return np.count_nonzero(np.asarray(values) == 0) >= MASKED * np.asarray(values).size


def solvent(values: np.ndarray, voxel_size: Any) -> NoiseEstimate | None:
    """The SD of the voxels away from anything beyond 3 SD of the median, exact zeros (a mask's outside) left out;
    None when too few remain or they do not vary."""
    v = np.asarray(values, dtype=np.float64)
    keep = solvent_voxels(v, voxel_size)
    if keep is None:
        return None
    share = np.count_nonzero(keep) / v.size
    return NoiseEstimate(float(v[keep].std()), "solvent", f"SD of the {np.count_nonzero(keep)} voxels "
                         f"({100 * share:.0f} % of the box) more than {DILATION_A:g} Å (along some axis) from every "
                         "voxel beyond 3 SD of the median")


def solvent_voxels(values: np.ndarray, voxel_size: Any, smooth: float = 0.0) -> np.ndarray | None:
    """The solvent (bool, the map's shape): voxels more than DILATION_A Å from every voxel beyond 3 SD of the
    median (three rounds, each with the median and SD of the last round's solvent), exact zeros left out; None when
    under MIN_SOLVENT of the box remains or it is flat. ``smooth`` > 0 (Å): the test runs on the map smoothed by a
    Gaussian of that SD and only clusters of at least MIN_CLUSTER_A3 Å³ beyond 3 SD count, so that noise voxels
    beyond 3 SD by chance (0.3 % of them, each excluding a box around it) do not eat the solvent of a large box; the
    first two rounds, which only give the median and SD, run on the smoothed map's voxels STATISTICS_STEP_A Å apart
    (at most; 8× fewer at 1 Å voxels), the last on all of them; and a box where under MIN_MOLECULE of the voxels
    stand out (cropped inside the molecule, or noise alone) has no solvent to speak of: None."""
    measured = np.asarray(values) != 0
    d = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    if smooth > 0:
        v = ndimage.gaussian_filter(np.asarray(values, dtype=np.float32), smooth / d, mode="nearest")
    else:
        v = np.asarray(values, dtype=np.float64)
    start = _every(v[measured], MEDIAN_SAMPLES)  # a robust start: median and MAD of a regular subsample
    if start.size == 0:
        return None
    centre = float(np.median(start))
    sd = 1.4826 * float(np.median(np.abs(start - centre))) or float(start.std())
    step = [max(1, int(STATISTICS_STEP_A // x)) if smooth > 0 else 1 for x in d]
    sample = tuple(slice(None, None, k) for k in step)
    for _ in range(2):
        keep = _away(v[sample], measured[sample], centre, sd, d * step, smooth > 0)
        if keep is None:
            return None
        kept = v[sample][keep]
        centre, sd = float(np.median(_every(kept, MEDIAN_SAMPLES))), float(kept.std())
    keep = _away(v, measured, centre, sd, d, smooth > 0)
    if keep is None or float(v[keep].std()) == 0:
        return None
    if smooth > 0 and np.count_nonzero(measured & ~keep) < MIN_MOLECULE * v.size:
        return None  # nothing stands out of the noise: a box cropped inside the molecule, or noise alone
    return keep


def _away(v: np.ndarray, measured: np.ndarray, centre: float, sd: float, voxel: np.ndarray, clusters: bool
          ) -> np.ndarray | None:
    """One round of ``solvent_voxels`` on ``v`` (voxels of ``voxel`` Å, x, y, z): the measured voxels more than
    DILATION_A Å from every voxel beyond 3 SD of ``centre`` (with ``clusters``: of a cluster of at least
    MIN_CLUSTER_A3 Å³ of them), or None when under MIN_SOLVENT of the box."""
    outside = np.abs(v - centre) > 3 * sd
    if clusters:
        labels, _ = ndimage.label(outside)
        big = np.bincount(labels.ravel()) >= int(np.ceil(MIN_CLUSTER_A3 / float(np.prod(voxel))))
        big[0] = False
        outside = big[labels]
    size = [2 * max(1, int(round(DILATION_A / x))) + 1 for x in voxel]
    keep = (ndimage.maximum_filter(outside.astype(np.uint8), size=size, mode="nearest") == 0) & measured
    return keep if np.count_nonzero(keep) >= MIN_SOLVENT * v.size else None


def _every(values: np.ndarray, count: int) -> np.ndarray:
    """Every k-th of ``values`` (1-D), k chosen so that about ``count`` remain."""
    return values[::max(1, values.size // count)]


def outer_shell(values: np.ndarray, voxel_size: Any, resolution: float | None) -> NoiseEstimate:
    """White noise equivalent of the power beyond the resolution, within the voxels that are not 0."""
    v = np.asarray(values, dtype=np.float64)
    d = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    s = np.sqrt(frequency_squared(v.shape, d))
    nyquist = 1.0 / (2.0 * float(d.max()))
    low = 1.0 / resolution if resolution and 1.0 / resolution < nyquist else OUTER_SHELLS * nyquist
    outer = (s > low) & (s <= nyquist)
    power = np.abs(scipy.fft.rfftn(v - v.mean())) ** 2
    weight = half_space_weight(v.shape)
    mean_power = float((power * weight)[outer].sum() / np.broadcast_to(weight, power.shape)[outer].sum())
    inside = max(np.count_nonzero(v) / v.size, 1.0 / v.size)
    sd = math.sqrt(mean_power / (v.size * inside))
    where = f"between {1 / low:.2f} Å and Nyquist ({1 / nyquist:.2f} Å)"
    return NoiseEstimate(sd, "outer-shell", f"the power {where} taken as white noise in the {100 * inside:.0f} % of "
                         "voxels that are not 0 (a masked map: its solvent is 0)")
