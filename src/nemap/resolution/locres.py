"""Local resolution by FSC in soft spherical windows (blocres-style, Cardone, Heymann & Steven 2013).

Both half maps are first whitened (:func:`whitened`): divided, shell by shell, by the amplitude of their mean's
power spectrum over the whole box. One real factor per shell leaves the FSC of the whole halves unchanged, but a
window mixes neighbouring shells, and unwhitened it spreads the strong low-frequency signal that both halves share
into every shell, where it correlates them: a 12–16 Å map with weak noise read 2.0–2.4 Å (Nyquist) where its
masked FSC says 6–8 Å. Then, around each centre of a coarse grid (every ``step`` voxels, x, y, z), both are cut
to a cube of ``box`` voxels, multiplied by a soft sphere (1 inside, a raised-cosine edge of EDGE voxels down to 0 at the
cube's inscribed radius), Fourier transformed as a batch, and their FSC is read where it first drops below
``threshold`` (interpolated between shells, :mod:`nemap.resolution.fsc`); a window whose FSC never drops
gets the finest shell's resolution. The coarse values are interpolated (trilinear) onto the half maps' grid.

Defaults, and why: the window spans DEFAULT_WINDOW_VOXELS = 20 voxels (its Å diameter = 20 × the largest
voxel size) — the shell next to Nyquist then holds ≈ 1,000 Fourier samples (FSC noise ≈ 0.04, well under
0.143) while zones of ≈ 2 nm stay apart; the step is a quarter of the window (the window itself averages
over its width, so finer centres add cost, 64× for a per-voxel scan, and no detail). A box with an axis under
20 voxels gets the largest even window it holds (at least MIN_WINDOW_VOXELS).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
from scipy import ndimage

from nemap.errors import ArgumentError, NemapError
from nemap.format.geometry import Geometry, Grid
from nemap.resolution.fsc import check_mask, check_pair, check_threshold, shell_sums, shells

log = logging.getLogger("nemap")

DEFAULT_WINDOW_VOXELS = 20
MIN_WINDOW_VOXELS = 8
EDGE = 3.0  # voxels of the window's raised-cosine edge
BATCH_VOXELS = 1 << 23  # window voxels transformed at once


@dataclass(frozen=True)
class LocalResolution:
    """``grid``: resolution (Å) on the half maps' grid, 0 outside the mask; ``coarse``: the window values
    (Å, NaN where not computed) at centres origin + (centre_start + k·step)·Δ; window (Å) and step (voxels)."""

    grid: Grid
    coarse: np.ndarray
    centre_start: tuple[int, int, int]
    step: int
    window: float
    box: int
    threshold: float

    def coarse_geometry(self) -> Geometry:
        """Where the coarse values sit (Å, x, y, z): a grid of spacing step·Δ from the first centre."""
        g = self.grid.geometry
        return Geometry(self.coarse.shape, tuple(self.step * v for v in g.voxel_size),
                        tuple(o + s * v for o, s, v in zip(g.origin, self.centre_start, g.voxel_size)))


def soft_sphere(box: int, edge: float = EDGE) -> np.ndarray:
    """A cube of ``box`` voxels: 1 within radius box/2 − edge of its centre, raised cosine to 0 at box/2."""
    c = (box - 1) / 2
    r = np.sqrt(sum(np.square(np.arange(box) - c).reshape([-1 if a == i else 1 for a in range(3)])
                    for i in range(3)))
    outer, inner = box / 2, box / 2 - edge
    return np.where(r <= inner, 1.0, np.where(r >= outer, 0.0, 0.5 * (1 + np.cos(math.pi * (r - inner) / edge))))


def window_box(window: float | None, voxel_size: tuple[float, ...], grid_shape: tuple[int, ...]) -> int:
    """Cube edge in voxels (even) for a window of ``window`` Å (default DEFAULT_WINDOW_VOXELS voxels)."""
    if window is None:  # the default shrinks to the box: a small map gets the largest window it holds
        box = min(DEFAULT_WINDOW_VOXELS, 2 * (min(grid_shape) // 2))
        if box < MIN_WINDOW_VOXELS:
            raise NemapError(f"the box {tuple(grid_shape)} holds no window of {MIN_WINDOW_VOXELS} voxels",
                             code="GRID_TOO_SMALL")
    else:
        if not (isinstance(window, (int, float)) and math.isfinite(window) and window > 0):
            raise ArgumentError(f"'window' must be a finite number > 0 Å, got {window}", parameter="window")
        box = 2 * max(MIN_WINDOW_VOXELS // 2, int(math.ceil(window / max(voxel_size) / 2)))
    if box > min(grid_shape):
        raise NemapError(f"a window of {box} voxels ({box * max(voxel_size):.3g} Å) is larger than the box "
                         f"{tuple(grid_shape)}", code="GRID_TOO_SMALL")
    return box


def centres(n: int, step: int) -> np.ndarray:
    """Centre indices along an axis of n voxels: every ``step`` voxels, the grid's middle among them."""
    first = (n - 1) // 2 % step
    return np.arange(first, n, step)


def whitened(h1: np.ndarray, h2: np.ndarray, voxel_size: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Both half maps [x, y, z] (voxels of ``voxel_size`` Å) divided in Fourier space by √(mean power per shell of
    their mean); shells with no power are left as they are (a floor of 1e-12 × the strongest shell's power)."""
    sh = shells(h1.shape, voxel_size)
    f1, f2 = (scipy.fft.rfftn(h, workers=-1) for h in (h1, h2))
    count = shell_sums(np.ones(sh.index.shape), sh)
    power = shell_sums(np.abs(f1 + f2) ** 2, sh) / np.maximum(count, 1.0)
    if not power.max() > 0:
        return h1, h2
    gain = 1.0 / np.sqrt(np.maximum(power, 1e-12 * power.max()))
    factor = gain[np.where(sh.index >= 0, sh.index, sh.count - 1)]  # the corners beyond Nyquist: the last shell's
    return tuple(scipy.fft.irfftn(f * factor, s=h1.shape, workers=-1) for f in (f1, f2))


def window_resolutions(h1: np.ndarray, h2: np.ndarray, points: np.ndarray, box: int, voxel_size: tuple[float, ...],
                       threshold: float, progress: Callable[[int], Any] | None = None) -> np.ndarray:
    """Resolution (Å) of the windows centred on voxel indices ``points`` [M, 3], in batches."""
    half = box // 2
    padded = [np.pad(h, half) for h in (h1, h2)]
    sphere = soft_sphere(box)
    sh = shells((box,) * 3, voxel_size)
    frequency = np.arange(sh.count) * sh.spacing
    out = np.empty(points.shape[0])
    batch = max(1, BATCH_VOXELS // box ** 3)
    grid = np.arange(box)
    for start in range(0, points.shape[0], batch):
        p = points[start:start + batch]
        ix = [(p[:, a, None] + grid)[(slice(None),) + tuple(slice(None) if b == a else None for b in range(3))]
              for a in range(3)]  # window voxels [B, box, 1, 1], [B, 1, box, 1], [B, 1, 1, box] of the padded maps
        f1, f2 = (scipy.fft.rfftn(x[ix[0], ix[1], ix[2]] * sphere, axes=(1, 2, 3), workers=-1) for x in padded)
        out[start:start + p.shape[0]] = 1.0 / first_crossings(frequency, batch_correlation(f1, f2, sh), threshold)
        if progress is not None:
            progress(p.shape[0])
    return out


def batch_correlation(f1: np.ndarray, f2: np.ndarray, sh: Any) -> np.ndarray:
    """FSC [B, shells] of B pairs of half-space transforms [B, …] (one bincount per sum for the batch)."""
    b = f1.shape[0]
    keep = (sh.index >= 0).reshape(-1)
    index = (sh.index.reshape(-1)[keep][None, :] + sh.count * np.arange(b)[:, None]).reshape(-1)
    weight = np.asarray(sh.weight).reshape(-1)[keep]

    def sums(v: np.ndarray) -> np.ndarray:
        return np.bincount(index, weights=(v.reshape(b, -1)[:, keep] * weight).reshape(-1),
                           minlength=b * sh.count).reshape(b, sh.count)

    cross, p1, p2 = sums((f1 * np.conj(f2)).real), sums(np.abs(f1) ** 2), sums(np.abs(f2) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((p1 > 0) & (p2 > 0), cross / np.sqrt(p1 * p2), 0.0)


def first_crossings(frequency: np.ndarray, curves: np.ndarray, threshold: float) -> np.ndarray:
    """Per curve [B, shells], :func:`nemap.resolution.fsc.crossing`'s frequency (Å⁻¹), vectorized."""
    below = curves[:, 1:] < threshold
    k = np.where(below.any(axis=1), below.argmax(axis=1) + 1, curves.shape[1] - 1)
    rows = np.arange(curves.shape[0])
    f0, f1 = curves[rows, np.maximum(k - 1, 0)], curves[rows, k]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where((k > 1) & below.any(axis=1), (f0 - threshold) / (f0 - f1), 1.0)
    return frequency[k - 1] + t * (frequency[k] - frequency[k - 1])


def local_resolution(h1: Grid, h2: Grid, mask: Grid | None = None, *, window: float | None = None,
                     step: int | None = None, threshold: float = 0.143, names: tuple[str, str] = ("half 1", "half 2"),
                     progress: Callable[[int], Any] | None = None, mask_name: str = "the mask") -> LocalResolution:
    """Local resolution (Å) of two half maps on one grid; with ``mask`` only centres where it is ≥ 0.5."""
    check_pair(h1, h2, names)
    threshold = check_threshold(threshold)
    g = h1.geometry
    box = window_box(window, g.voxel_size, g.grid_shape)
    if step is None:
        step = max(1, box // 4)
    elif not (isinstance(step, (int, np.integer)) and step >= 1):
        raise ArgumentError(f"'step' must be a whole number of voxels ≥ 1, got {step}", parameter="step")
    m = check_mask(mask, h1, mask_name) if mask is not None else None
    axes = [centres(n, step) for n in g.grid_shape]
    idx = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    use = np.ones(idx.shape[0], bool) if m is None else m[idx[:, 0], idx[:, 1], idx[:, 2]] >= 0.5
    coarse = np.full(idx.shape[0], np.nan)
    log.info("local resolution: %d windows of %d³ voxels every %d voxels", int(use.sum()), box, step)
    halves = whitened(*(np.asarray(x.values, dtype=np.float64) for x in (h1, h2)), g.voxel_size)
    coarse[use] = window_resolutions(*halves, idx[use], box, g.voxel_size, threshold, progress)
    coarse = coarse.reshape([a.size for a in axes])
    values = spread(coarse, axes, g.grid_shape)
    if m is not None:
        values[m < 0.5] = 0.0
    return LocalResolution(Grid(values.astype(np.float32), g), coarse, tuple(int(a[0]) for a in axes), int(step),
                           box * max(g.voxel_size), box, threshold)


def spread(coarse: np.ndarray, axes: list[np.ndarray], grid_shape: tuple[int, ...]) -> np.ndarray:
    """Trilinear interpolation of the coarse values onto every voxel (NaN centres take their nearest valid
    neighbour's value first; clamped beyond the outer centres)."""
    filled = coarse.copy()
    bad = np.isnan(filled)
    if bad.all():
        return np.zeros(grid_shape)
    if bad.any():
        nearest = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
        filled = filled[tuple(nearest)]
    q = [np.clip((np.arange(n) - a[0]) / (a[1] - a[0] if a.size > 1 else 1), 0, a.size - 1)
         for n, a in zip(grid_shape, axes)]
    mesh = np.meshgrid(*q, indexing="ij")
    return ndimage.map_coordinates(filled, mesh, order=1, mode="nearest")
