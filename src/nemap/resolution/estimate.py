"""Resolution of a single map by a learned estimator (no half maps): global resolution and class, local
resolution and molecular mask, each on the map's own grid.

1–4. The reading (``nemap.resolution.reading``): the map resampled to the model's voxels, its noise measured in
   its solvent and subtracted patch by patch, patches predicted and blended; the global resolution the median
   of the local resolution inside the predicted mask, its class high (< 5 Å), medium (5–10 Å) or low
   (> 10 Å); a classifier's class probabilities instead. Where the noise was measured, a warning when it is as
   strong as the signal in the shells up to the learned estimate (the median shell's signal/noise power of the
   patches of most molecule under NOISE_DOMINATES): such an estimate reads the noise as much as the map (whole
   simulated maps: a 3 Å map with white noise of SD 0.3× the peak read 4.35 Å, with coloured noise of 0.1×
   2.40 Å; none of the benchmark's 90 whole maps, nor EMD-5168, warned). That median is reported whether or not
   it warns (``signal_to_noise``; None where no noise was measured: a masked map, one without solvent).
5. Beside it, where the power spectrum's fall ends (``nemap.resolution.edge``; ``spectrum_edge``), with a note
   when that is well finer than the estimate: a post-processed map's resolution, which the networks read coarse.
   Where that end is a low-pass filter's cliff (an unmasked map filtered with nothing left beyond, in every
   direction: ``edge.low_pass_edge``) and the learned estimate is no coarser than FILTER_LOOK times it, the
   filter's resolution is the global one (and its class; the local map stays the learned one): the map holds
   nothing finer, and a map filtered at up to twice the resolution it looks was filtered at its resolution, as
   post-processing does (``local`` reads the deposited maps here at 0.9–1.6× their FSC resolution; they look like
   molmaps at 1.4–1.8× it, docs/resolution.md). A map filtered at under half the resolution it looks keeps the
   learned estimate, and gets no note: post-processing does not leave a map looking that much coarser than its
   filter, and the steep fall of coloured noise makes such edges (3–16 Å maps with strong coloured noise end at
   2.4 Å); ``spectrum_edge`` still reports it. ``source`` says which the global resolution is.
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
   answer's model is then ``local+fine``, its interval ``fine``'s widened to hold the first reading's interval too
   (``spanning_both``): on 64³ maps drawn by the held-out recipe at 1 Å voxels, ``fine``'s own interval held 0.70
   and 0.76 of the truths it answered (two draws of 400 maps, 90 and 104 such maps; it reads unfiltered maps of
   1 Å voxels 8–22 % too fine on average), both together 0.93 and 0.96 (``benchmarks/resolution_models.py``,
   docs/resolution.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from nemap.errors import NemapError, warn
from nemap.format.geometry import Geometry, Grid
from nemap.resolution import spectral
from nemap.resolution.classes import CLASSES, classify
from nemap.resolution.edge import EdgeResult, edge_resolution
from nemap.resolution.models import CUBE, available, kind_of, load, model_voxel, training_range
from nemap.resolution.noise import is_masked
from nemap.resolution.reading import MASKED_FLAT, Reading, flat_solvent, read

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
    signal_to_noise: float | None = None  # median signal/noise power per shell up to it (band_signal_to_noise;
    # None: no noise measured, or no patch half molecule)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "global_class": self.global_class,
                               "global_resolution": self.global_resolution, "global_resolution_source": self.source}
        if self.interval is not None:
            out["global_resolution_interval"] = [float(self.interval[0]), float(self.interval[1])]
        out["spectrum_edge_resolution"] = self.spectrum_edge
        out["band_signal_to_noise"] = self.signal_to_noise
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
    ratio, band_voxel = reading.signal_to_noise, model_voxel(recipe)
    first = interval(reading.global_resolution, recipe) if model == DEFAULT_MODEL else None  # before a second reading
    if model == DEFAULT_MODEL:
        reading, recipe, model = read_finer(grid, reading, recipe, flat, masked, name, notes)
    g, edge, source = with_spectrum_edge(grid, reading.global_resolution, notes)
    span, band = interval(g, recipe), band_signal_to_noise(ratio, band_voxel, g)
    if source == "learned":
        span = spanning_both(span, first if model != DEFAULT_MODEL else None)
        span = below_floor(g, span, recipe, grid, notes)
        noise_dominates(band, g, name, notes)
    inside = reading.inside
    return Estimate(g, classify(g), Grid(reading.local, grid.geometry),
                    Grid(inside.astype(np.float32), grid.geometry) if inside is not None else None, model, notes,
                    interval=span, spectrum_edge=edge.global_resolution if edge is not None else None,
                    source=source, signal_to_noise=band)


def nyquist_resolution(grid: Grid) -> float:
    """The finest resolution (Å) ``grid``'s voxels hold: twice its largest voxel size."""
    return 2.0 * float(np.max(grid.geometry.voxel_size))


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
    nyquist = nyquist_resolution(grid)
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


EDGE_NOTE_BELOW = 0.9  # a spectrum edge finer than this × the learned estimate (down to 1/FILTER_LOOK ×) is noted
FILTER_LOOK = 2.0  # a low-pass filter's cliff is the global resolution when the learned one is at most this × it


def with_spectrum_edge(grid: Grid, learned: float, notes: list[str]) -> tuple[float, EdgeResult | None, str]:
    """The global resolution (Å), where ``grid``'s power spectrum ends its fall (``nemap.resolution.edge``, or None)
    and which it is: a low-pass filter's cliff when the ``learned`` estimate (Å) is at most FILTER_LOOK times it,
    else the learned estimate, with a note when the edge is well finer, but no more than FILTER_LOOK times (module
    docstring, 5)."""
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
    if learned / FILTER_LOOK <= r < EDGE_NOTE_BELOW * learned:
        notes.append(f"its power spectrum ends at {r:.2f} Å: if the map was post-processed (low-pass filtered "
                     "at its FSC resolution), that is its resolution (the edge estimator reads it); the learned "
                     "models read such maps coarse")
    return learned, edge, "learned"


NOISE_DOMINATES = 1.0  # signal over noise power (median shell up to the estimate) under which the estimate is doubted


def band_signal_to_noise(ratio: np.ndarray | None, voxel: float, resolution: float) -> float | None:
    """The median of ``ratio`` (signal over noise power per patch shell, ``reading.signal_to_noise``, of patches of
    ``voxel`` Å) over the shells up to 1/``resolution`` Å⁻¹; None when the noise was not measured (``ratio`` None)
    or no patch held molecule (every shell NaN)."""
    if ratio is None:
        return None
    band = ratio[1:int(CUBE * voxel / resolution) + 1]
    band = band[np.isfinite(band)]
    return float(np.median(band)) if band.size else None


def noise_dominates(median: float | None, resolution: float, name: str, notes: list[str]) -> None:
    """A warning and a note when the measured noise is as strong as the signal in the band the map was read to
    (up to ``resolution`` Å): ``median``, the ``band_signal_to_noise``, under NOISE_DOMINATES (module docstring,
    1–4; None: nothing measured, nothing said)."""
    if median is None or median >= NOISE_DOMINATES:
        return
    warn(f"{name}: the noise measured in the solvent is as strong as the signal up to {resolution:.2f} Å (median "
         f"signal/noise power {median:.2f} per shell): the estimate reads the noise as much as the map and may be "
         "far off")
    notes.append(f"noise-dominated up to {resolution:.2f} Å: median signal/noise power {median:.2f} per shell")


FLOOR_READ = 1.25  # × the finest training resolution: a learned estimate up to this is at the model's floor


def below_floor(resolution: float, span: tuple[float, float] | None, recipe: dict[str, Any], grid: Grid,
                notes: list[str]) -> tuple[float, float] | None:
    """The interval ``span`` (Å) reaching down to ``grid``'s Nyquist resolution when the learned ``resolution``
    (Å) is at the floor of the model's training range (FLOOR_READ times its finest): the model reads every map
    finer than that floor about as the floor (module docstring, 6)."""
    finest = training_range(recipe)[0]
    nyquist = nyquist_resolution(grid)
    if span is None or resolution > FLOOR_READ * finest or nyquist >= span[0]:
        return span
    notes.append(f"{resolution:.2f} Å is at the floor of what the model tells apart (trained from {finest:g} Å; "
                 f"it reads finer maps about as its floor): the map may be as fine as its Nyquist resolution, "
                 f"{nyquist:.2f} Å, and the interval reaches down to it")
    return nyquist, span[1]


def spanning_both(span: tuple[float, float] | None, first: tuple[float, float] | None
                  ) -> tuple[float, float] | None:
    """The interval (Å) of a reading read again by FINE_MODEL widened to hold the first reading's interval
    ``first`` too (None: not read again; module docstring, 7)."""
    if span is None or first is None:
        return span
    return min(span[0], first[0]), max(span[1], first[1])


def interval(resolution: float, recipe: dict[str, Any]) -> tuple[float, float] | None:
    """The calibrated interval around ``resolution`` Å (module docstring, 6); None for weights without one."""
    cal = recipe.get("interval")
    if not cal:
        return None
    return resolution / float(np.exp(cal["log_ratio_high"])), resolution / float(np.exp(cal["log_ratio_low"]))
