"""Global resolution of a post-processed map read from the edge of its power spectrum (NumPy only).

Deposited maps are post-processed (RELION, cryoSPARC): weighted by their half maps' FSC and low-pass filtered at
the resolution where that FSC fell to 0.143. Their radially averaged power spectrum therefore falls steeply over
the last shells before that resolution and then lies on a floor (what the filter, the noise and any mask leave).
This estimator fits log10 of the power per shell, from 1/COARSEST Å⁻¹ to Nyquist, with a continuous line of three
segments, the middle one the steepest (breakpoints on a grid of half shells, least squares), and reads the
resolution at the second breakpoint: where the fall reaches the floor. Its precision is about one shell
(ΔR ≈ R² / box edge: 0.14 Å at 3 Å in a 64 Å box). Shells are 1/(the box's longest edge) Å⁻¹
apart, but no closer than MIN_SPACING; anisotropic voxels are handled as in ``nemap.resolution.spectral``.

What it reads is a property of the spectrum, not of the density: the filter's edge in a post-processed map (the
depositors' FSC resolution); where the signal meets the noise floor in an unfiltered noisy map (what an FSC
would read too); and, in a map with neither filter nor noise but masked, wherever the decline meets the mask's
leakage (meaningless: such maps read 2–3× too fine in our simulations). A spectrum without a fall of MIN_DROP
decades into a floor FLOOR_RATIO times flatter is refused (NemapError ``NO_EDGE``).

A map low-pass filtered and left unmasked (RELION's ``postprocess.mrc``, a map a user filtered) has a sharper
mark: a cliff. Its power falls CLIFF decades or more within two shells — after gentler shells (the two before
fall under half as much) — and stays that far down to Nyquist, and it does so alike near the axes and near the
body diagonals (``low_pass_edge``). Then the resolution read is where the power falls to a quarter of its level
before the cliff (amplitude ½: the middle of a raised-cosine edge, where RELION centres its filter), between
shells. On 34 simulated maps of 3–16 Å in boxes of 64–128 Å it reads 0.97–1.04 R where the edge is RELION's (a
Fourier shell either side of 1/R) and 0.93–1.05 R where it spans 0.9/R to 1.1/R; the three-segment fit reads one
or two shells beyond. Requiring the
same cliff in both sectors of directions tells a filter (a sphere in Fourier space) from the end of a Fourier
crop or pad (a cube: its radially averaged power also ends in a cliff, at √3 times where it ends along the
axes). A mask applied after the filter spreads the cliff over many shells: such a map has none. Arrays
[x, y, z]; Å.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nemap.errors import NemapError
from nemap.format.geometry import Grid
from nemap.resolution.classes import classify
from nemap.resolution.spectral import sector_power

COARSEST = 25.0  # Å: shells coarser than this (the molecule's envelope) are left out of the fit
MIN_SPACING = 0.005  # Å⁻¹: the finest shell spacing used (a large box's shells are merged to this)
MIN_DROP = 0.5  # decades: the least fall of the steep segment that counts as an edge
FLOOR_RATIO = 2.0  # the floor is at most 1/FLOOR_RATIO as steep as the fall (a Gaussian decline has no floor)
CLIFF = 3.0  # decades: the least fall of a low-pass filter's edge within two shells, and how far down it stays
SECTORS = ((0.9, 1.01), (0.0, 0.7))  # spectrum.axial_share: directions near an axis, near a body diagonal


@dataclass
class EdgeResult:
    """``global_resolution`` (Å) where the fall ends (or, with ``low_pass``, the middle of a filter's cliff), its
    class, the fall (decades) and the three slopes of the fit (decades per Å⁻¹, coarse to fine; None when only
    the cliff was found); like a learned estimate, without a local map or mask."""

    global_resolution: float
    drop: float
    slopes: tuple[float, float, float] | None
    low_pass: bool = False
    model: str = "edge"
    local: Grid | None = None
    mask: Grid | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def global_class(self) -> str:
        return classify(self.global_resolution)

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "global_class": self.global_class, "global_resolution": self.global_resolution,
                "edge_drop_decades": self.drop, "low_pass_filter_edge": self.low_pass,
                "slopes": list(self.slopes) if self.slopes is not None else None, "notes": self.notes}


def spectra(grid: Grid) -> tuple[np.ndarray, list[np.ndarray]]:
    """(frequency Å⁻¹, [power of all directions, near the axes, near the diagonals (SECTORS)]) per shell from
    1/COARSEST Å⁻¹ to Nyquist, from one transform."""
    v = grid.values
    d = np.asarray(grid.geometry.voxel_size, dtype=np.float64)
    spacing = max(1.0 / float(np.max(np.asarray(v.shape) * d)), MIN_SPACING)
    powers = sector_power(v, d, spacing, SECTORS, precision=np.float32)
    s = np.arange(len(powers[0])) * spacing
    keep = (s >= 1.0 / COARSEST) & (s <= 0.5 / float(d.max()))
    return s[keep], [p[keep] for p in powers]


def cliff(s: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """The first fall of at least CLIFF decades of log10 power ``y`` within two shells (``s`` Å⁻¹), where the two
    shells before fall under half as much and every shell after stays CLIFF decades under where it began: (Å⁻¹
    where the power is a quarter of that level, between shells; the fall, decades), or None."""
    for i in range(2, len(y) - 2):
        drop = y[i] - y[i + 2]
        if drop < CLIFF or y[i - 2] - y[i] > drop / 2 or y[i + 2:].max() > y[i] - CLIFF:
            continue
        quarter = y[i] - np.log10(4.0)
        j = i if y[i + 1] <= quarter else i + 1
        t = (y[j] - quarter) / (y[j] - y[j + 1])
        return float(s[j] + t * (s[j + 1] - s[j])), float(drop)
    return None


def low_pass_edge(s: np.ndarray, powers: list[np.ndarray]) -> tuple[float, float] | None:
    """(Å, decades): the cliff of the ``spectra`` (``s`` Å⁻¹; all directions, near the axes, near the diagonals),
    when all three have one within a shell of each other (a spherical filter's edge), else None."""
    found = [cliff(s, np.log10(np.maximum(p, np.finfo(np.float64).tiny))) for p in powers]
    if any(f is None for f in found) or np.ptp([f[0] for f in found]) > s[1] - s[0]:
        return None
    return 1.0 / found[0][0], found[0][1]


def _hinges(s: np.ndarray, y: np.ndarray, b1: np.ndarray, b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares continuous three-segment lines with breakpoints b1 < b2 (arrays, one line each): (squared
    errors, slopes [lines, 3])."""
    x = np.stack(np.broadcast_arrays(np.ones_like(s), s, np.maximum(s - b1[:, None], 0.0),
                                     np.maximum(s - b2[:, None], 0.0)), axis=-1)
    c = np.linalg.pinv(x) @ y
    r = y - np.einsum("lsk,lk->ls", x, c)
    return np.einsum("ls,ls->l", r, r), np.cumsum(c[:, 1:], axis=1)


def fit_edge(s: np.ndarray, y: np.ndarray) -> tuple[float, float, tuple[float, float, float]] | None:
    """The best three-segment fit whose middle segment is the steepest: (b1, b2, slopes) Å⁻¹, or None."""
    if len(s) < 7:
        return None
    half = (s[1] - s[0]) / 2
    points = np.arange(s[2], s[-3] + half / 2, half)
    i, j = np.triu_indices(len(points), k=2)
    fits = [_hinges(s, y, points[i[k:k + 4096]], points[j[k:k + 4096]]) for k in range(0, len(i), 4096)]
    err, slopes = np.concatenate([f[0] for f in fits]), np.concatenate([f[1] for f in fits])
    steepest = slopes[:, 1] < np.minimum(slopes[:, 0], slopes[:, 2])
    if not steepest.any():
        return None
    best = int(np.flatnonzero(steepest)[np.argmin(err[steepest])])
    return float(points[i[best]]), float(points[j[best]]), tuple(float(x) for x in slopes[best])


def edge_resolution(grid: Grid) -> EdgeResult:
    """The resolution (Å) at the end of the steep fall of ``grid``'s power spectrum, or in the middle of a low-pass
    filter's cliff (module docstring)."""
    s, powers = spectra(grid)
    cut = low_pass_edge(s, powers)
    held = powers[0] > 0
    fit = fit_edge(s[held], np.log10(powers[0][held]))
    if cut is not None:
        note = (f"low-pass filtered at {cut[0]:.2f} Å: its power spectrum falls {cut[1]:.0f} decades within two "
                "shells there, in every direction, and stays down")
        return EdgeResult(cut[0], cut[1], fit[2] if fit is not None else None, low_pass=True, notes=[note])
    drop = 0.0 if fit is None else -fit[2][1] * (fit[1] - fit[0])
    if fit is None or drop < MIN_DROP or fit[2][1] > FLOOR_RATIO * min(fit[2][2], 0.0):
        raise NemapError(f"the map's power spectrum has no edge (no fall of {MIN_DROP:g} decades into a floor "
                         f"{FLOOR_RATIO:g}× flatter): it was not low-pass filtered, and no noise floor shows where its "
                         "signal ends", code="NO_EDGE")
    b1, b2, slopes = fit
    note = (f"power spectrum falls {drop:.1f} decades from {1 / b1:.2f} Å to {1 / b2:.2f} Å, then lies on a floor "
            "(a post-processed map's low-pass edge, or where its signal meets its noise)")
    return EdgeResult(1.0 / b2, drop, slopes, notes=[note])
