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
decades into a floor FLOOR_RATIO times flatter is refused (NemapError ``NO_EDGE``). Arrays [x, y, z]; Å.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nemap.errors import NemapError
from nemap.format.geometry import Grid
from nemap.resolution.classes import classify
from nemap.resolution.spectral import shell_power

COARSEST = 25.0  # Å: shells coarser than this (the molecule's envelope) are left out of the fit
MIN_SPACING = 0.005  # Å⁻¹: the finest shell spacing used (a large box's shells are merged to this)
MIN_DROP = 0.5  # decades: the least fall of the steep segment that counts as an edge
FLOOR_RATIO = 2.0  # the floor is at most 1/FLOOR_RATIO as steep as the fall (a Gaussian decline has no floor)


@dataclass
class EdgeResult:
    """``global_resolution`` (Å) where the fall ends, its class, the fall (decades) and the three slopes
    (decades per Å⁻¹, coarse to fine); like a learned estimate, without a local map or mask."""

    global_resolution: float
    drop: float
    slopes: tuple[float, float, float]
    model: str = "edge"
    local: Grid | None = None
    mask: Grid | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def global_class(self) -> str:
        return classify(self.global_resolution)

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "global_class": self.global_class, "global_resolution": self.global_resolution,
                "edge_drop_decades": self.drop, "slopes": list(self.slopes), "notes": self.notes}


def spectrum(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(frequency Å⁻¹, log10 power) per shell from 1/COARSEST Å⁻¹ to Nyquist, shells with power only."""
    v = np.asarray(grid.values, dtype=np.float64)
    d = np.asarray(grid.geometry.voxel_size, dtype=np.float64)
    spacing = max(1.0 / float(np.max(np.asarray(v.shape) * d)), MIN_SPACING)
    p = shell_power(v, d, spacing=spacing)
    s = np.arange(len(p)) * spacing
    keep = (s >= 1.0 / COARSEST) & (s <= 0.5 / float(d.max())) & (p > 0)
    return s[keep], np.log10(p[keep])


def _hinge(s: np.ndarray, y: np.ndarray, b1: float, b2: float) -> tuple[float, tuple[float, float, float]]:
    """Least-squares continuous three-segment line with breakpoints b1 < b2: (squared error, the slopes)."""
    x = np.stack([np.ones_like(s), s, np.maximum(s - b1, 0.0), np.maximum(s - b2, 0.0)], axis=1)
    c, *_ = np.linalg.lstsq(x, y, rcond=None)
    r = y - x @ c
    return float(r @ r), (float(c[1]), float(c[1] + c[2]), float(c[1] + c[2] + c[3]))


def fit_edge(s: np.ndarray, y: np.ndarray) -> tuple[float, float, tuple[float, float, float]] | None:
    """The best three-segment fit whose middle segment is the steepest: (b1, b2, slopes) Å⁻¹, or None."""
    if len(s) < 7:
        return None
    half = (s[1] - s[0]) / 2
    points = np.arange(s[2], s[-3] + half / 2, half)
    best = None
    for i, b1 in enumerate(points):
        for b2 in points[i + 2:]:
            err, slopes = _hinge(s, y, b1, b2)
            if slopes[1] < min(slopes[0], slopes[2]) and (best is None or err < best[0]):
                best = (err, float(b1), float(b2), slopes)
    return None if best is None else best[1:]


def edge_resolution(grid: Grid) -> EdgeResult:
    """The resolution (Å) at the end of the steep fall of ``grid``'s power spectrum (module docstring)."""
    s, y = spectrum(grid)
    fit = fit_edge(s, y)
    drop = 0.0 if fit is None else -fit[2][1] * (fit[1] - fit[0])
    if fit is None or drop < MIN_DROP or fit[2][1] > FLOOR_RATIO * min(fit[2][2], 0.0):
        raise NemapError(f"the map's power spectrum has no edge (no fall of {MIN_DROP:g} decades into a floor "
                         f"{FLOOR_RATIO:g}× flatter): it was not low-pass filtered, and no noise floor shows where its "
                         "signal ends", code="NO_EDGE")
    b1, b2, slopes = fit
    note = (f"power spectrum falls {drop:.1f} decades from {1 / b1:.2f} Å to {1 / b2:.2f} Å, then lies on a floor "
            "(a post-processed map's low-pass edge, or where its signal meets its noise)")
    return EdgeResult(1.0 / b2, drop, slopes, notes=[note])
