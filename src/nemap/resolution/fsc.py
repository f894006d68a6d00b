"""Fourier shell correlation of two maps on one grid (half maps, or a neural map and its source).

    FSC(k) = Re Σ_{shell k} F₁·F₂* / √(Σ_{shell k} |F₁|² · Σ_{shell k} |F₂|²)

Frequencies are physical (Å⁻¹) per axis, so anisotropic voxels and non-cubic boxes are handled: shell k
holds the Fourier samples with ⌊|s| / Δs + ½⌋ = k, Δs = 1 / max_a(n_a·Δ_a) (the finest sampling of any
axis), up to the lowest Nyquist frequency of the three axes, 1 / (2·max_a Δ_a). Sums run over the real FFT's
half space with weight 2 for the samples that stand for a conjugate pair, so they equal full-space sums.
With a mask, the masked curve is corrected by phase randomization (Chen et al. 2013): beyond the frequency
where the unmasked curve first drops below ``randomize_below``, both halves get random phases (each its
own), are masked again, and FSC_true = (FSC_masked − FSC_rand) / (1 − FSC_rand) there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft

from nemap.errors import ArgumentError, NemapError, warn
from nemap.format.geometry import Grid

THRESHOLDS = (0.143, 0.5)
MIN_VOXELS = 4  # along every axis


@dataclass(frozen=True)
class Shells:
    """Shell index of every half-space Fourier sample of a grid, and the weight (1 or 2) it counts with."""

    index: np.ndarray  # int64, shape of the rfftn output; −1 beyond the last shell
    weight: np.ndarray  # float64, same shape
    spacing: float  # Å⁻¹ between shells
    count: int  # shells 0 … count − 1


def axis_frequencies(shape: tuple[int, ...], voxel_size: Any = 1.0) -> list[np.ndarray]:
    """The frequency along each axis (x, y, z) of the real-FFT half space of a grid of ``shape`` voxels of
    ``voxel_size`` Å (one value or per axis), each shaped to broadcast over that half space: Å⁻¹."""
    d = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (len(shape),))
    freqs = [np.fft.fftfreq(n, v) for n, v in zip(shape[:-1], d[:-1])] + [np.fft.rfftfreq(shape[-1], d[-1])]
    return [f.reshape([-1 if a == i else 1 for a in range(len(shape))]) for i, f in enumerate(freqs)]


def frequency_squared(shape: tuple[int, ...], voxel_size: Any = 1.0) -> np.ndarray:
    """|s|² on the real-FFT half space of a grid of ``shape`` voxels (x, y, z) of ``voxel_size`` Å (one value
    or per axis): Å⁻², or voxel⁻² with the default voxel size of 1."""
    return sum(np.square(f) for f in axis_frequencies(shape, voxel_size))


def shells(shape: tuple[int, ...], voxel_size: tuple[float, ...]) -> Shells:
    """Fourier shells of a grid of ``shape`` voxels (x, y, z) of ``voxel_size`` Å (last axis halved by rfftn)."""
    s2 = frequency_squared(shape, voxel_size)
    spacing = 1.0 / max(n * d for n, d in zip(shape, voxel_size))
    count = int(np.floor((1.0 / (2 * max(voxel_size))) / spacing + 1e-9)) + 1
    index = np.floor(np.sqrt(s2) / spacing + 0.5).astype(np.int64)  # nearest shell, halves up
    index[index >= count] = -1
    return Shells(index, np.broadcast_to(half_space_weight(shape), index.shape), spacing, count)


def half_space_weight(shape: tuple[int, ...]) -> np.ndarray:
    """How many full-space samples each plane of a real-FFT half space stands for, along its last axis: 1 for
    the zero plane and, on an even axis, the Nyquist plane (its own conjugate); 2 for the others."""
    weight = np.full(shape[-1] // 2 + 1, 2.0)
    weight[0] = 1.0
    if shape[-1] % 2 == 0:
        weight[-1] = 1.0
    return weight


def shell_sums(values: np.ndarray, sh: Shells) -> np.ndarray:
    """Σ over each shell of ``values`` (weighted as full-space sums), [count]."""
    keep = sh.index >= 0
    return np.bincount(sh.index[keep], weights=(values * sh.weight)[keep], minlength=sh.count)


def correlation(f1: np.ndarray, f2: np.ndarray, sh: Shells) -> np.ndarray:
    """FSC per shell of two half-space transforms."""
    cross = shell_sums((f1 * np.conj(f2)).real, sh)
    p1 = shell_sums(np.abs(f1) ** 2, sh)
    p2 = shell_sums(np.abs(f2) ** 2, sh)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((p1 > 0) & (p2 > 0), cross / np.sqrt(p1 * p2), 0.0)


def crossing(frequency: np.ndarray, curve: np.ndarray, threshold: float) -> tuple[float, bool]:
    """Å⁻¹ where the curve first drops below ``threshold`` after shell 0, interpolated linearly between the
    shells either side; (last shell's frequency, False) when it never does."""
    below = np.nonzero(curve[1:] < threshold)[0]
    if below.size == 0:
        return float(frequency[-1]), False
    k = int(below[0]) + 1
    if k == 1:
        return float(frequency[1]), True
    f0, f1 = curve[k - 1], curve[k]
    t = (f0 - threshold) / (f0 - f1)
    return float(frequency[k - 1] + t * (frequency[k] - frequency[k - 1])), True


@dataclass(frozen=True)
class FscCurve:
    """FSC per shell: ``frequency`` (Å⁻¹, shell centres), ``fsc`` (unmasked), ``count`` (Fourier samples per
    shell); with a mask also ``masked``, ``randomized`` and ``corrected``, and ``randomized_from`` (Å⁻¹)."""

    frequency: np.ndarray
    fsc: np.ndarray
    count: np.ndarray
    masked: np.ndarray | None = None
    randomized: np.ndarray | None = None
    corrected: np.ndarray | None = None
    randomized_from: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def final(self) -> np.ndarray:
        """The curve the resolution is read from: the corrected masked curve with a mask, else the unmasked."""
        return self.corrected if self.corrected is not None else self.fsc

    def resolution(self, threshold: float = 0.143) -> tuple[float, bool]:
        """Resolution (Å) where :attr:`final` crosses ``threshold``, and whether it does (else the finest shell)."""
        s, crossed = crossing(self.frequency, self.final, threshold)
        return 1.0 / s, crossed

    def columns(self) -> dict[str, np.ndarray]:
        """The curve as named columns (frequency Å⁻¹, resolution Å, fsc, and the masked ones when present)."""
        with np.errstate(divide="ignore"):
            out = {"frequency": self.frequency, "resolution": np.where(self.frequency > 0, 1.0 / self.frequency,
                                                                       np.inf), "fsc": self.fsc}
        for name in ("masked", "randomized", "corrected"):
            if getattr(self, name) is not None:
                out[f"fsc_{name}"] = getattr(self, name)
        return out

    def summary(self) -> dict[str, Any]:
        """resolution_0143 and resolution_05 (Å) with whether each threshold was crossed, and the curve."""
        out: dict[str, Any] = {}
        for t, key in zip(THRESHOLDS, ("0143", "05")):
            res, crossed = self.resolution(t)
            out[f"resolution_{key}"], out[f"crossed_{key}"] = res, crossed
        out["masked"] = self.masked is not None
        if self.randomized_from is not None:
            out["randomized_from_resolution"] = 1.0 / self.randomized_from
        out["curve"] = {k: [None if not np.isfinite(x) else float(x) for x in v] for k, v in self.columns().items()}
        out["notes"] = list(self.notes)
        return out


def check_pair(a: Grid, b: Grid, names: tuple[str, str] = ("map 1", "map 2")) -> None:
    """Two maps on one grid (shape, voxel size, origin within 1e-3 Å), finite, ≥ MIN_VOXELS per axis."""
    ga, gb = a.geometry, b.geometry
    for what, x, y, close in (("grid shapes", ga.grid_shape, gb.grid_shape, False),
                              ("voxel sizes (Å)", ga.voxel_size, gb.voxel_size, True),
                              ("origins (Å)", ga.origin, gb.origin, True)):
        if (not np.allclose(x, y, rtol=1e-5, atol=1e-3)) if close else tuple(x) != tuple(y):
            raise NemapError(f"{names[0]} and {names[1]} differ in their {what}: {tuple(x)} vs {tuple(y)}",
                             code="GRIDS_DIFFER")
    if min(ga.grid_shape) < MIN_VOXELS:
        raise NemapError(f"{names[0]}: the grid {ga.grid_shape} has fewer than {MIN_VOXELS} voxels along an axis: "
                         "no Fourier shells to compare", code="GRID_TOO_SMALL")
    for name, g in zip(names, (a, b)):
        if not np.isfinite(g.values).all():
            raise NemapError(f"{name} has NaN or infinite voxels", code="NONFINITE_VOXELS")


def check_mask(mask: Grid, like: Grid, name: str = "the mask") -> np.ndarray:
    """The mask's values (float64) when it lies on ``like``'s grid, within [0, 1] and not all zero."""
    check_pair(like, mask, ("the maps", name))
    m = np.asarray(mask.values, dtype=np.float64)
    if m.min() < -1e-6 or m.max() > 1 + 1e-6:
        raise NemapError(f"{name} has values outside [0, 1] ({m.min():.3g} to {m.max():.3g}); a soft mask "
                         "is 1 inside, 0 outside", code="BAD_MASK")
    if not m.any():
        raise NemapError(f"{name} is zero everywhere", code="BAD_MASK")
    return np.clip(m, 0.0, 1.0)


def randomize_phases(transform: np.ndarray, sh: Shells, from_shell: int, rng: np.random.Generator) -> np.ndarray:
    """The transform with uniformly random phases in shells ≥ ``from_shell`` (and beyond the last shell)."""
    out = transform.copy()
    beyond = (sh.index >= from_shell) | (sh.index < 0)
    phases = rng.uniform(0, 2 * np.pi, int(beyond.sum()))
    out[beyond] = np.abs(out[beyond]) * np.exp(1j * phases)
    return out


def fsc(a: Grid, b: Grid, mask: Grid | None = None, *, randomize_below: float = 0.143, seed: int = 0,
        names: tuple[str, str] = ("map 1", "map 2"), mask_name: str = "the mask") -> FscCurve:
    """The FSC of two maps on one grid, and with ``mask`` the masked and phase-randomization-corrected curves."""
    check_pair(a, b, names)
    randomize_below = check_threshold(randomize_below, "randomize_below")
    x1, x2 = (np.asarray(g.values, dtype=np.float64) for g in (a, b))
    notes = []
    if np.array_equal(x1, x2):
        warn(f"{names[0]} and {names[1]} are identical: the FSC is 1 at every shell")
        notes.append("identical maps")
    g = a.geometry
    sh = shells(g.grid_shape, g.voxel_size)
    f1, f2 = (scipy.fft.rfftn(x, workers=-1) for x in (x1, x2))
    frequency = np.arange(sh.count) * sh.spacing
    count = np.bincount(sh.index[sh.index >= 0], weights=sh.weight[sh.index >= 0], minlength=sh.count)
    unmasked = correlation(f1, f2, sh)
    if mask is None:
        return FscCurve(frequency, unmasked, count, notes=notes)
    m = check_mask(mask, a, mask_name)
    masked = correlation(*(scipy.fft.rfftn(x * m, workers=-1) for x in (x1, x2)), sh)
    below = np.nonzero(unmasked[1:] < randomize_below)[0]
    from_shell = int(below[0]) + 1 if below.size else sh.count
    rng = np.random.default_rng(seed)
    randomized_maps = [scipy.fft.irfftn(randomize_phases(f, sh, from_shell, rng), s=g.grid_shape, workers=-1)
                       for f in (f1, f2)]
    randomized = correlation(*(scipy.fft.rfftn(x * m, workers=-1) for x in randomized_maps), sh)
    with np.errstate(invalid="ignore", divide="ignore"):
        true = np.where(randomized < 1, (masked - randomized) / (1 - randomized), masked)
    corrected = np.where(np.arange(sh.count) >= from_shell, true, masked)
    return FscCurve(frequency, unmasked, count, masked, randomized, corrected,
                    float(frequency[min(from_shell, sh.count - 1)]), notes)


def check_threshold(threshold: Any, name: str = "threshold") -> float:
    """An FSC threshold in (0, 1)."""
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        t = float("nan")
    if not 0 < t < 1:
        raise ArgumentError(f"'{name}' must lie in (0, 1), got {threshold}", parameter=name)
    return t
