"""Resolution of a single map by a learned estimator (no half maps): global resolution and class, local
resolution and molecular mask, each on the map's own grid.

1. The map is resampled to the model's voxel size in Fourier space (its transform cropped or zero-padded, as
   RELION and EMAN rescale maps: every frequency both grids hold is kept, nothing is blurred): 1 Å for ``local``
   and the seed paper's models, so 2.5 Å is the finest resolution they tell apart; 0.5 Å for ``fine`` (step 7).
   Every step below runs on that grid, in Å. Voxels whose 3³ neighbourhood is exactly
   constant (solvent masked to a constant, as deposited maps often are) stay exactly constant.
2. Its noise is measured: when the map has solvent (an unmasked box: ``nemap.resolution.noise.solvent_voxels``
   on the map smoothed by 1.5 Å, clusters under 50 Å³ beyond 3 SD taken as noise), the noise power per shell
   there (``nemap.resolution.spectral``); a masked map has none to measure (its solvent is 0; the models were
   trained on masked maps as they are); a map with neither (cropped tight) gets a warning. Masked: half the
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
5. Beside it, where the power spectrum's fall ends (``nemap.resolution.edge``; ``spectrum_edge``), with a note
   when that is well finer than the estimate: a post-processed map's resolution, which the networks read coarse.
   Where that end is a low-pass filter's cliff (an unmasked map filtered with nothing left beyond, in every
   direction: ``edge.low_pass_edge``) and the learned estimate is no coarser than FILTER_LOOK times it, the
   filter's resolution is the global one (and its class; the local map stays the learned one): the map holds
   nothing finer, and a map filtered at up to twice the resolution it looks was filtered at its resolution, as
   post-processing does (``local`` reads the deposited maps here at 0.9–1.6× their FSC resolution; they look like
   molmaps at 1.4–1.8× it, docs/resolution.md). A map filtered at under half the resolution it looks keeps the
   learned estimate, with the note. ``source`` says which the global resolution is.
6. The interval: the estimate divided by the 95th and 5th percentiles of estimate/truth on held-out simulated
   patches (models never trained on, calibrated by the training script and stored in the weight file's
   recipe): a 90 % interval for a 32³ patch, wider than needed for a whole map (tested in
   ``benchmarks/resolution_models.py``). A learned estimate at the floor of the training range (up to FLOOR_READ
   times its finest resolution: 2.5 Å, 1.25 Å for ``fine``) gets an interval down to the map's Nyquist
   resolution, and a note: a model reads every map finer than its floor about as the floor (``local`` reads maps
   of 2–2.5 Å as 2.9–3.0 Å).
7. With the default model, an estimate within FINE_MODEL's training range (``fine``: ``local``'s network trained
   on patches of 0.5 Å voxels, 1.25–4 Å; the better reader there: on whole simulated maps of 2.5–4 Å 0.23 against
   0.29 Å RMSE, and ``local`` reads every map finer than 2.5 Å as about 3 Å) on a map whose voxels hold detail
   finer than 2.5 Å (its Nyquist) is read again, steps 1–4, by FINE_MODEL when its weights are installed, on a
   cube of at most FINE_EDGE Å around the centre of the first reading's mask (0.5 Å voxels are 8× as many as 1 Å
   ones: time), with the noise the first reading measured in the whole map's solvent, taken on the map's own voxels
   and carried to 0.5 Å (``spectral.resampled_power``).
   Its reading replaces the first (its local map inside the cube) unless it lies beyond its training range. The
   answer's model is then ``local+fine``, its interval ``fine``'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from nemap.errors import NemapError, warn
from nemap.format.geometry import Geometry, Grid
from nemap.machine import native_bf16
from nemap.resolution import spectral
from nemap.resolution.classes import CLASS_CENTRES, CLASSES, classify
from nemap.resolution.edge import EdgeResult, edge_resolution
from nemap.resolution.models import CUBE, LOCAL_BINS, available, kind_of, load, model_voxel, training_range
from nemap.resolution.noise import is_masked, solvent_voxels

log = logging.getLogger("nemap")

DEFAULT_MODEL = "local"


@dataclass
class Estimate:
    """``global_resolution`` Å, ``global_class``, ``local`` (Grid, Å) and ``mask`` (Grid, 0/1) on the map's
    grid, the model's name and what was done to the map (``notes``)."""

    global_resolution: float
    global_class: str
    local: Grid | None
    mask: Grid | None
    model: str
    notes: list[str] = field(default_factory=list)
    class_probabilities: list[float] | None = None
    interval: tuple[float, float] | None = None  # Å, (low, high): a 90 % interval (module docstring, 6)
    spectrum_edge: float | None = None  # Å: where the power spectrum's fall ends (nemap.resolution.edge), if it has one
    source: str = "learned"  # of the global resolution: "learned", or "low-pass filter" (module docstring, 5)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "global_class": self.global_class,
                               "global_resolution": self.global_resolution, "global_resolution_source": self.source}
        if self.interval is not None:
            out["global_resolution_interval"] = [float(self.interval[0]), float(self.interval[1])]
        out["spectrum_edge_resolution"] = self.spectrum_edge
        if self.class_probabilities is not None:
            out["class_probabilities"] = dict(zip(CLASSES, self.class_probabilities))
        if self.local is not None:
            inside = self.local.values[self.mask.values > 0] if self.mask is not None else self.local.values.ravel()
            out["local_resolution"] = {"min": float(inside.min()), "median": float(np.median(inside)),
                                       "max": float(inside.max())} if inside.size else None
        if self.mask is not None:
            out["mask_fraction"] = float(self.mask.values.mean())
        out["notes"] = self.notes
        return out


MIN_EDGE = 8  # voxels along every axis


def check_map(grid: Grid, name: str) -> None:
    """NemapError unless ``grid`` is a finite, non-constant 3-D map of at least MIN_EDGE voxels per axis."""
    v = grid.values
    if v.ndim != 3 or min(v.shape) < MIN_EDGE:
        what = "a 2-D image" if v.ndim < 3 or 1 in v.shape else "too small"
        raise NemapError(f"{name} is {what} ({'×'.join(map(str, v.shape))} voxels): a resolution needs a 3-D map "
                         f"of at least {MIN_EDGE} voxels per axis", code="GRID_TOO_SMALL")
    if not np.isfinite(v).all():
        raise NemapError(f"{name} has NaN or infinite voxels", code="NONFINITE_VOXELS")
    if float(v.max() - v.min()) == 0:
        raise NemapError(f"{name} is constant ({float(v.flat[0]):g} everywhere): it has no resolution",
                         code="CONSTANT_MAP")


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
    the transform cropped or zero-padded per axis, as for a periodic band-limited map; float32."""
    import scipy.fft
    from scipy import signal

    out = values.astype(np.float64)
    for axis, m in enumerate(shape):
        n = out.shape[axis]
        if n == m:
            continue
        delta = 0.5 * (n / m - 1)  # old voxels from the first old centre to the first new one
        phase = np.exp(2j * np.pi * np.fft.fftfreq(n) * delta).reshape([-1 if a == axis else 1 for a in range(3)])
        out = scipy.fft.ifft(scipy.fft.fft(out, axis=axis) * phase, axis=axis).real
        out = signal.resample(out, m, axis=axis)
    return out.astype(np.float32)


MASKED_FLAT = 0.1  # a map with this share of its voxels in exactly constant 3³ neighbourhoods was masked


def flat_solvent(values: np.ndarray) -> np.ndarray:
    """Voxels whose 3³ neighbourhood is exactly constant (solvent masked to a constant). None can be without two
    equal neighbours along x, which most unmasked maps lack: then no filter is run (1.5 s on a 256³ map)."""
    if not np.any(values[1:] == values[:-1]):
        return np.zeros(values.shape, bool)
    return ndimage.maximum_filter(values, size=3, mode="nearest") == ndimage.minimum_filter(values, size=3,
                                                                                             mode="nearest")


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
            p = spectral.subtract_noise(p, noise, voxel)
        p = (p - p.mean(axis=(1, 2, 3), keepdims=True)) / (p.std(axis=(1, 2, 3), keepdims=True) + 1e-8)
        return torch.as_tensor(p.astype(np.float32))[:, None]

    return corners, np.asarray(share), batch


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
                logr, m = centres[out.argmax(1).numpy()], np.ones((len(cs),) + (CUBE,) * 3, np.float32)
            else:
                logr, m = out[0].numpy(), torch.sigmoid(out[1]).numpy()
            for (i, j, k), r, mm in zip(cs, logr, m):
                box = (slice(i, i + CUBE), slice(j, j + CUBE), slice(k, k + CUBE))
                acc_r[box] += window * r
                acc_m[box] += window * mm
                acc_w[box] += window
    if kind == "class":
        return None, None, (share @ np.concatenate(probabilities)) / share.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return voxel * np.exp(acc_r / acc_w), (np.nan_to_num(acc_m / acc_w) if kind == "local" else None), None


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
    return Reading(g, local, inside if mask is not None else None, solvent=noisy)


def estimate(grid: Grid, model: str = DEFAULT_MODEL, name: str = "the map") -> Estimate:
    """The learned estimate of ``grid``'s resolution (see the module docstring)."""
    check_map(grid, name)
    net, recipe = load(model)
    kind = kind_of(net)
    notes: list[str] = []
    flat = flat_solvent(grid.values)
    masked = is_masked(grid.values) or float(flat.mean()) >= MASKED_FLAT
    reading = read(grid, net, kind, model_voxel(recipe), flat, masked, name, notes)
    if reading.probabilities is not None:
        g, edge, source = with_spectrum_edge(grid, reading.global_resolution, notes)
        p = reading.probabilities
        cls = CLASSES[int(np.argmax(p))] if source == "learned" else classify(g)
        return Estimate(g, cls, None, None, model, notes, [float(x) for x in p], interval(g, recipe),
                        edge.global_resolution if edge is not None else None, source)
    if model == DEFAULT_MODEL:
        reading, recipe, model = read_finer(grid, reading, recipe, flat, masked, name, notes)
    g, edge, source = with_spectrum_edge(grid, reading.global_resolution, notes)
    span = interval(g, recipe)
    if source == "learned":
        span = below_floor(g, span, recipe, grid, notes)
    inside = reading.inside
    return Estimate(g, classify(g), Grid(reading.local, grid.geometry),
                    Grid(inside.astype(np.float32), grid.geometry) if inside is not None else None, model, notes,
                    interval=span, spectrum_edge=edge.global_resolution if edge is not None else None,
                    source=source)


FINE_MODEL = "fine"  # reads again what the default model reads within its range (module docstring, 7)


FINE_EDGE = 64.0  # Å: the fine model reads at most a cube of this edge around the molecule's centre (time)


def fine_box(grid: Grid, reading: Reading) -> tuple[slice, slice, slice]:
    """The voxels (x, y, z slices) the fine model reads: the whole map, or a cube of at most FINE_EDGE Å per axis
    around the centre of ``reading``'s mask (of the map where it has none), inside the map."""
    n = np.asarray(grid.values.shape)
    span = np.minimum(n, np.ceil(FINE_EDGE / np.asarray(grid.geometry.voxel_size)).astype(int))
    inside = reading.inside
    centre = (np.asarray(ndimage.center_of_mass(inside)) if inside is not None and inside.any() else (n - 1) / 2)
    lo = np.clip(np.round(centre - (span - 1) / 2).astype(int), 0, n - span)
    return tuple(slice(int(a), int(a + s)) for a, s in zip(lo, span))  # type: ignore[return-value]


def read_finer(grid: Grid, reading: Reading, recipe: dict[str, Any], flat: np.ndarray, masked: bool, name: str,
               notes: list[str]) -> tuple[Reading, dict[str, Any], str]:
    """The default model's ``reading`` read again by FINE_MODEL at its finer voxels, on ``fine_box``, when it lies
    within the fine model's training range (the better reader there) and ``grid``'s voxels hold detail finer than
    the default model's finest; kept when the fine reading lies within that range too (module docstring, 7). The
    reading (the default model's local map outside the box), its model's recipe and the name of what answered."""
    finest = training_range(recipe)[0]
    nyquist = 2.0 * float(np.max(grid.geometry.voxel_size))
    if nyquist >= finest or FINE_MODEL not in available():
        return reading, recipe, DEFAULT_MODEL
    net, fine_recipe = load(FINE_MODEL)
    voxel = model_voxel(fine_recipe)
    low, high = training_range(fine_recipe)
    if reading.global_resolution > high:
        return reading, recipe, DEFAULT_MODEL
    box = fine_box(grid, reading)
    part = Grid(grid.values[box], Geometry(grid.values[box].shape, grid.geometry.voxel_size,
                                           tuple(grid.geometry.to_physical([s.start for s in box]).ravel())))
    given: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    if reading.solvent is not None and reading.solvent.any():  # the whole map's noise, as resampling leaves it
        power = spectral.solvent_power(grid.values, reading.solvent, grid.geometry.voxel_size, 1.0 / (CUBE * voxel))
        given = (spectral.resampled_power(power, (CUBE,) * 3, grid.geometry.voxel_size, voxel), reading.solvent[box])
    finer = read(part, net, "local", voxel, flat[box], masked, name, [], given)
    where = "" if part.values.shape == grid.values.shape else (
        f" on the {'×'.join(str(s.stop - s.start) for s in box)} voxels around the molecule's centre (the rest of "
        f"the local map is {DEFAULT_MODEL}'s)")
    if finer.global_resolution > high:
        notes.append(f"{DEFAULT_MODEL} reads {reading.global_resolution:.2f} Å; {FINE_MODEL} (at {voxel:g} Å voxels, "
                     f"trained on {low:g}-{high:g} Å) reads {finer.global_resolution:.2f} Å{where}, beyond its range: "
                     f"{DEFAULT_MODEL}'s reading kept")
        return reading, recipe, DEFAULT_MODEL
    notes.append(f"{DEFAULT_MODEL} reads {reading.global_resolution:.2f} Å, within {FINE_MODEL}'s range: read again by "
                 f"{FINE_MODEL} at {voxel:g} Å voxels{where} (trained on {low:g}-{high:g} Å)")
    local = reading.local.copy()
    local[box] = finer.local
    inside = None
    if reading.inside is not None and finer.inside is not None:
        inside = reading.inside.copy()
        inside[box] = finer.inside
    return Reading(finer.global_resolution, local, inside), fine_recipe, f"{DEFAULT_MODEL}+{FINE_MODEL}"


EDGE_NOTE_BELOW = 0.9  # a spectrum edge finer than this times the learned estimate is pointed out
FILTER_LOOK = 2.0  # a low-pass filter's cliff is the global resolution when the learned one is at most this × it


def with_spectrum_edge(grid: Grid, learned: float, notes: list[str]) -> tuple[float, EdgeResult | None, str]:
    """The global resolution (Å), where ``grid``'s power spectrum ends its fall (``nemap.resolution.edge``, or None)
    and which it is: a low-pass filter's cliff when the ``learned`` estimate (Å) is at most FILTER_LOOK times it,
    else the learned estimate, with a note when the edge is well finer (module docstring, 5)."""
    try:
        edge = edge_resolution(grid)
    except NemapError:
        return learned, None, "learned"
    r = edge.global_resolution
    if edge.low_pass and learned <= FILTER_LOOK * r:
        notes.append(f"low-pass filtered at {r:.2f} Å (its power spectrum falls {edge.drop:.0f} decades there in "
                     f"every direction): the global resolution; the learned estimate of how it looks is "
                     f"{learned:.2f} Å (the local map)")
        return r, edge, "low-pass filter"
    if r < EDGE_NOTE_BELOW * learned:
        notes.append(f"its power spectrum ends at {r:.2f} Å: if the map was post-processed (low-pass filtered "
                     "at its FSC resolution), that is its resolution (the edge estimator reads it); the learned "
                     "models read such maps coarse")
    return learned, edge, "learned"


FLOOR_READ = 1.25  # × the finest training resolution: a learned estimate up to this is at the model's floor


def below_floor(resolution: float, span: tuple[float, float] | None, recipe: dict[str, Any], grid: Grid,
                notes: list[str]) -> tuple[float, float] | None:
    """The interval ``span`` (Å) reaching down to ``grid``'s Nyquist resolution when the learned ``resolution``
    (Å) is at the floor of the model's training range (FLOOR_READ times its finest): the model reads every map
    finer than that floor about as the floor (module docstring, 6)."""
    finest = training_range(recipe)[0]
    nyquist = 2.0 * float(np.max(grid.geometry.voxel_size))
    if span is None or resolution > FLOOR_READ * finest or nyquist >= span[0]:
        return span
    notes.append(f"{resolution:.2f} Å is at the floor of what the model tells apart (trained from {finest:g} Å; "
                 f"it reads finer maps about as its floor): the map may be as fine as its Nyquist resolution, "
                 f"{nyquist:.2f} Å, and the interval reaches down to it")
    return nyquist, span[1]


def interval(resolution: float, recipe: dict[str, Any]) -> tuple[float, float] | None:
    """The calibrated interval around ``resolution`` Å (module docstring, 6); None for weights without one."""
    cal = recipe.get("interval")
    if not cal:
        return None
    return resolution / float(np.exp(cal["log_ratio_high"])), resolution / float(np.exp(cal["log_ratio_low"]))
