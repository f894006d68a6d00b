"""Local resolution of a single map by comparing its signal with its noise band by band (MonoRes-style; Vilas et
al. 2018, Structure 26:337): the classical baseline of the learned estimators, NumPy only.

For each resolution r of a ladder from coarse to fine, the map is band-passed around 1/r Å⁻¹ (a raised-cosine
shell one band wide) and its local amplitude is the monogenic one, A = √(b² + |Riesz b|²) (the envelope of the
band in every direction), smoothed over a third of the band's wavelength. The noise threshold of the band is
the 95th percentile of A in the solvent (``nemap.resolution.noise.solvent_voxels``). A voxel's resolution is
the finest rung at which its amplitude is above the threshold in that band and in the next coarser one (two
in a row: one band passes by chance in 5 % of noise voxels, two in 0.25 %; coarse bands of a small molecule
spill into the solvent and may fail, so a failure does not end the walk). This is where the signal meets the
noise — the resolution an FSC would read, not the nominal one of a molmap simulation; a map without noise
reads as Nyquist. Needs solvent: a masked map (its solvent 0) or a box cropped tight has no noise to compare
with and is refused (NemapError ``NO_SOLVENT``). Arrays [x, y, z]; Å.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft
from scipy import ndimage

from nemap.errors import NemapError
from nemap.format.geometry import Grid
from nemap.resolution.classes import classify
from nemap.resolution.fsc import frequency_squared
from nemap.resolution.noise import is_masked, solvent_voxels

PERCENTILE = 95.0  # of the solvent's amplitudes: the noise threshold of a band
LADDER_STEP = 1.12  # ratio between successive resolutions of the ladder
COARSEST = 25.0  # Å


@dataclass
class MonogenicResult:
    """``local`` (Grid, Å; the coarsest rung where no two bands beat the noise), ``global_resolution`` (Å: the
    median inside the molecule, the voxels above the solvent's mean + 3 SD), the ladder (Å), the solvent's
    share of the box and the molecule (bool [x, y, z]); described as ``summary()`` says, like a learned
    estimate."""

    local: Grid
    global_resolution: float
    ladder: list[float]
    solvent_share: float
    molecule: np.ndarray
    model: str = "monogenic"
    mask: Grid | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def global_class(self) -> str:
        return classify(self.global_resolution)

    def summary(self) -> dict[str, Any]:
        inside = self.local.values[self.molecule] if self.molecule.any() else self.local.values.ravel()
        return {"model": self.model, "global_class": self.global_class, "global_resolution": self.global_resolution,
                "local_resolution": {"min": float(inside.min()), "median": float(np.median(inside)),
                                     "max": float(inside.max())},
                "solvent_fraction": self.solvent_share, "notes": self.notes}


def ladder(voxel_size: Any) -> np.ndarray:
    """Resolutions (Å) from COARSEST down to Nyquist (2 × the largest voxel edge), LADDER_STEP apart."""
    nyquist = 2.0 * float(np.max(voxel_size))
    count = int(np.floor(np.log(COARSEST / nyquist) / np.log(LADDER_STEP))) + 1
    return COARSEST / LADDER_STEP ** np.arange(max(count, 1))


def _band(s: np.ndarray, resolution: float) -> np.ndarray:
    """A raised-cosine shell around 1/resolution Å⁻¹, reaching 0 at the neighbouring rungs of the ladder."""
    f = 1.0 / resolution
    t = np.abs(np.log(np.maximum(s, 1e-12) / f)) / np.log(LADDER_STEP)
    return np.where(t < 1, 0.5 * (1 + np.cos(np.pi * t)), 0.0)


def amplitude(spectrum: np.ndarray, s: np.ndarray, unit: list[np.ndarray], shape: tuple[int, ...],
              resolution: float) -> np.ndarray:
    """The monogenic amplitude of the band around 1/resolution (float32, the map's shape)."""
    band = spectrum * _band(s, resolution)
    total = scipy.fft.irfftn(band, s=shape, workers=-1) ** 2
    for u in unit:  # the Riesz components: i·s_a/|s| per axis
        total += scipy.fft.irfftn(band * 1j * u, s=shape, workers=-1) ** 2
    return np.sqrt(total).astype(np.float32)


def monogenic_local_resolution(grid: Grid, name: str = "the map") -> MonogenicResult:
    """The local resolution of ``grid`` (module docstring)."""
    v = grid.values.astype(np.float64)
    d = np.asarray(grid.geometry.voxel_size, dtype=np.float64)
    solvent = None if is_masked(v) else solvent_voxels(v, d)
    if solvent is None:
        raise NemapError(f"{name} has no solvent to measure its noise in (masked, or cropped tight): the "
                         "monogenic estimate needs an unmasked box", code="NO_SOLVENT")
    spectrum = scipy.fft.rfftn(v - v.mean(), workers=-1)
    s2 = frequency_squared(v.shape, d)
    s = np.sqrt(s2)
    freqs = [np.fft.fftfreq(n, x) for n, x in zip(v.shape[:2], d[:2])] + [np.fft.rfftfreq(v.shape[2], d[2])]
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = [np.nan_to_num(f.reshape([-1 if a == i else 1 for a in range(3)]) / s) for i, f in enumerate(freqs)]
    rungs = ladder(d)
    local = np.full(v.shape, rungs[0], np.float32)
    before = np.zeros(v.shape, bool)
    for r in rungs:
        a = ndimage.uniform_filter(amplitude(spectrum, s, unit, v.shape, float(r)),
                                   size=[max(1, int(round(r / (3 * x)))) for x in d])
        above = a > np.percentile(a[solvent], PERCENTILE)
        local[above & before] = r
        before = above
    noise = v[solvent]
    inside = (v > noise.mean() + 3 * noise.std()) & ~solvent  # the molecule as a 3 σ contour shows it
    g = float(np.median(local[inside])) if inside.any() else float(np.median(local[~solvent]))
    note = (f"noise: the {100 * float(solvent.mean()):.0f} % of the box that is solvent; resolution where each "
            f"voxel's band amplitude last beat its {PERCENTILE:g}th percentile there (two bands in a row)")
    return MonogenicResult(Grid(local, grid.geometry), g, [float(r) for r in rungs], float(solvent.mean()),
                           inside if inside.any() else ~solvent, notes=[note])
