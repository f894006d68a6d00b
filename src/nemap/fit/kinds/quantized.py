"""Making quantized regions (NEMAP_quantized, spec/extensions/NEMAP_quantized/README.md): the voxels rounded to
codes of a step chosen from the map's noise, coded tile by tile, with a certificate of what was kept.

The bound B is ``tolerance`` noise SDs (options.tolerance; the step is 2B, so every decoded voxel is within B of
its source). Without a tolerance the conversion is *invisible*: B = σ/20, halved (at most MAX_HALVINGS times)
until the FSC of the decoded map against its source is ≥ INVISIBLE_FSC in every shell up to the resolution.
A map whose noise cannot be measured (constant, tiny) is taken to have σ = FALLBACK_SD of its range (so the
invisible bound is 10⁻⁴ of the range), with a warning.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft

from nemap.errors import NemapError, warn
from nemap.fit.kinds.base import RegionMaker
from nemap.format.content import Layer, NeuralMapContent, Regions
from nemap.format.kinds import voxel_codec
from nemap.format.kinds.quantized import (
    CERTIFICATE_COLUMNS,
    QuantizedVoxels,
    base_matrix,
    evaluate_base,
    tile_boxes,
)
from nemap.machine import map_on_cores
from nemap.resolution import fsc as fsc_module
from nemap.resolution.noise import NoiseEstimate, estimate_noise

INVISIBLE_TOLERANCE = 1 / 20  # noise SDs: the default bound
INVISIBLE_FSC = 0.999  # the default's floor of FSC(decoded, source) up to the resolution
MAX_HALVINGS = 4
FLOOR_TOLERANCE = 1.0  # noise SDs: the pointwise bound of an --fsc-floor conversion without a tolerance
BASE_SPACINGS = (2.0, 2.5, 3.0)  # a base's spacing: the resolution divided by these
MIN_BASE_TENTHS = 13  # a base coarser than 1.3 voxels or none (finer ones save nothing)
BASE_STEPS = (0.25, 0.5, 1.0)  # without a floor: the base steps tried, as multiples of the bound
BASE_RCOND = 1e-2  # relative cut of the least-squares fit's singular values (edge nodes barely touch a tile)
FALLBACK_SD = 2e-3  # of the map's range (of its largest |value|, or 1, for a constant map): σ when none is measured
POWER_FRACTION = 1e-4  # shells holding less than this of the largest shell's power are left out of the powered floor
TILE = 64  # voxels per tile edge of a large map: a sub-box reads few voxels it does not need
SMALL_TILE_GRID = 1 << 24  # up to 256³ voxels, tiles of LARGE_TILE (fewer tile edges: 4–8 % smaller files)
LARGE_TILE = 128


def tile_edge(grid_shape: Any) -> int:
    """The tile edge the converter uses for a grid (voxels)."""
    return LARGE_TILE if int(np.prod(grid_shape)) <= SMALL_TILE_GRID else TILE


@dataclass
class Quantization:
    """One quantization of a map: codes of step 2·bound (and a base), the decoded map and what it keeps."""

    bound: float
    step: float
    codes: np.ndarray
    decoded: np.ndarray
    certificate: dict[str, Any]
    table: np.ndarray
    base: dict[str, Any] | None = None  # spacing_tenths, step
    base_codes: list[np.ndarray] | None = None  # per tile
    tile: int = TILE
    encoded: dict[tuple[int, ...], Any] = field(default_factory=dict, repr=False)  # streams per grid shape

    def stream_bytes(self, grid_shape: Any) -> int:
        """Bytes of the encoded tiles (codes and base): what a candidate costs in the file."""
        streams, _, base_streams, _ = self.streams(grid_shape)
        return streams.size + (base_streams.size if base_streams is not None else 0)

    def streams(self, grid_shape: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(streams, offsets, base streams, base offsets) of the codes, tile by tile (encoded once)."""
        key = tuple(int(n) for n in grid_shape)
        if key not in self.encoded:
            streams, offsets = encode_tiles([self.codes[box] for box in tile_boxes(grid_shape, [self.tile] * 3)])
            base = (None, None) if self.base_codes is None else encode_tiles(self.base_codes)
            self.encoded[key] = (streams, offsets, *base)
        return self.encoded[key]


class QuantizedMaker(RegionMaker):
    """The spline method's map stored as quantized voxels (the default of ``nemap convert``)."""

    method = "spline"
    tiling = "whole-grid"
    trains = False
    handles_constant = True

    def start_message(self, options: Any, regions: int, where: str) -> str:
        how = ("invisible: σ/20 and FSC ≥ 0.999" if options.tolerance is None and options.fsc_floor is None else
               f"{options.tolerance or FLOOR_TOLERANCE:g} noise SD" +
               (f", FSC ≥ {options.fsc_floor:g}" if options.fsc_floor is not None else ""))
        return (f"converting to the quintic B-spline of the voxels, stored as voxels quantized within a bound "
                f"({how})")

    def prepare(self, job: Any) -> None:
        values = np.asarray(job.grid.values, dtype=np.float64)
        noise = job.noise or estimate_noise(values, job.grid.geometry.voxel_size, job.resolution)
        job.noise = noise
        if noise.sd <= 0:
            warn(f"{noise.description}: its noise is taken as {FALLBACK_SD:g} of its range (bound "
                 f"{FALLBACK_SD * (job.options.tolerance or INVISIBLE_TOLERANCE):.1e} of the range)")
        job.plan.todo = []
        job.quantization = quantize(values, job.grid.geometry.voxel_size, noise, job.options, job.resolution)

    def assemble(self, job: Any) -> NeuralMapContent:
        extra = {"tolerance": float(job.options.tolerance)} if job.options.tolerance is not None else {}
        return quantized_content(job.grid.geometry, job.normalization, job.quantization, job.noise, extra,
                                 job.options.ramp_width)

    def record(self, options: Any, plan: Any, device: Any) -> dict[str, Any]:
        return {"options": self.recorded_options(options), "method": "spline",
                "coefficients": "quintic B-spline interpolating the decoded voxels (computed by the reader)",
                "storage": "NEMAP_quantized: codes of step 2·error_bound in tiles, interpolation-predicted "
                           "residuals, zlib"}

    def recorded_options(self, options: Any) -> dict[str, Any]:
        return {"preset": options.preset, "method": "spline", "storage": "quantized",
                "tolerance": options.tolerance, "fsc_floor": options.fsc_floor}

    def memory_bytes(self, grid_shape: tuple[int, int, int], options: Any, batch: int = 1) -> int:
        """Values (float32 and float64), codes (int64), the decoded copy and two FFTs of the certificate."""
        return 60 * int(np.prod(grid_shape)) + 64 * 2**20


def quantized_content(geometry: Any, normalization: Any, q: Quantization, noise: NoiseEstimate | None,
                      extra: dict[str, Any] | None = None, ramp_width: float = 3.0) -> NeuralMapContent:
    """The content of a quantized map: one region over the grid, no network, the voxels' tiles and its member."""
    shape = geometry.grid_shape
    streams, offsets, base_streams, base_offsets = q.streams(shape)
    member: dict[str, Any] = {"order": 5, "tile_shape": [q.tile] * 3, "step": q.step, "error_bound": q.bound}
    if q.base is not None:
        member["base"] = q.base
    if noise is not None:
        member["noise"] = noise.to_json()
    member.update(certificate=q.certificate, **(extra or {}))
    regions = Regions(np.asarray([[[0, 0, 0], [n - 1 for n in shape]]], dtype=np.int64), np.asarray([-1]),
                      np.zeros(1, np.float32), ramp_width, {"method": "whole-grid"})
    return NeuralMapContent(geometry, normalization, regions, [Layer(3, 1, "identity")],
                            [np.zeros((0, 1, 3), np.float32)], [np.zeros((0, 1), np.float32)],
                            quantized=QuantizedVoxels(member, streams, offsets, q.table, base_streams, base_offsets))


def quantize(values: np.ndarray, voxel_size: Any, noise: NoiseEstimate, options: Any,
             resolution: float | None) -> Quantization:
    """The quantization the options ask for: the invisible default (tolerance None), the smallest file within
    ``tolerance`` noise SDs, or with ``fsc_floor`` too the smallest whose certificate keeps that floor."""
    span = float(values.max() - values.min()) or max(abs(float(values.max())), 1.0)
    sd = noise.sd if noise.sd > 0 else FALLBACK_SD * span
    if options.tolerance is None and options.fsc_floor is None:
        return invisible(values, voxel_size, INVISIBLE_TOLERANCE * sd, resolution)
    tolerance = options.tolerance if options.tolerance is not None else FLOOR_TOLERANCE
    candidates = [c for c in (plain(values, voxel_size, tolerance * sd, resolution, options.fsc_floor),
                              *based(values, voxel_size, tolerance * sd, resolution, options.fsc_floor))
                  if c is not None]
    if not candidates:
        raise NemapError(f"no quantization within {tolerance:g} noise SD keeps an FSC floor of {options.fsc_floor} "
                         "(raise the tolerance or lower the floor)", code="BAD_ARGUMENT", parameter="fsc_floor")
    return min(candidates, key=lambda c: c.stream_bytes(values.shape))


def invisible(values: np.ndarray, voxel_size: Any, bound: float, resolution: float | None) -> Quantization:
    """B = σ/20, halved (at most MAX_HALVINGS times) until the FSC floor is ≥ INVISIBLE_FSC."""
    for _ in range(MAX_HALVINGS + 1):
        found = quantize_within(values, voxel_size, bound, resolution)
        if found.certificate["fsc_floor"] >= INVISIBLE_FSC:
            return found
        bound /= 2
    warn(f"the FSC floor stays at {found.certificate['fsc_floor']:.5f} below {INVISIBLE_FSC} with the bound halved "
         f"{MAX_HALVINGS} times ({found.bound:.3g})")
    return found


def plain(values: np.ndarray, voxel_size: Any, bound: float, resolution: float | None,
          floor: float | None) -> Quantization | None:
    """Codes only: the largest bound ≤ ``bound`` (bisection on its logarithm) whose floor is kept."""
    found = quantize_within(values, voxel_size, bound, resolution)
    if floor is None or found.certificate["fsc_floor"] >= floor:
        return found
    return _bisect(lambda b: quantize_within(values, voxel_size, b, resolution), bound * 1e-3, bound, floor)


def based(values: np.ndarray, voxel_size: Any, bound: float, resolution: float | None,
          floor: float | None) -> list[Quantization]:
    """Codes over a base (a cubic B-spline of the map on a grid coarser than the voxels), for maps sampled finer
    than their resolution needs: one candidate per spacing of BASE_SPACINGS, the base's step the largest that keeps
    the floor (without a floor: the step of smallest file among BASE_STEPS multiples of the bound)."""
    if resolution is None:
        return []
    out = []
    for divisor in BASE_SPACINGS:
        tenths = [int(round(10 * resolution / divisor / d)) for d in np.broadcast_to(np.asarray(voxel_size), (3,))]
        if min(tenths) < MIN_BASE_TENTHS:
            continue
        fit = BaseFit(values, tenths)
        if floor is None:
            tries = [fit.quantize(bound, factor * bound, voxel_size, resolution) for factor in BASE_STEPS]
            out.append(min(tries, key=lambda c: c.stream_bytes(values.shape)))
            continue
        found = _bisect(lambda step, fit=fit: fit.quantize(bound, step, voxel_size, resolution), bound * 1e-3,
                        bound * 8, floor)
        if found is not None:
            out.append(found)
    return out


def _bisect(make: Any, low: float, high: float, floor: float, rounds: int = 10) -> Quantization | None:
    """The result of ``make(x)`` for the largest x in [low, high] (log scale) whose floor is ≥ ``floor``."""
    best = None
    for _ in range(rounds):
        middle = math.sqrt(low * high)
        found = make(middle)
        if found.certificate["fsc_floor"] >= floor:
            best, low = found, middle
        else:
            high = middle
    return best


class BaseFit:
    """Least-squares cubic B-spline coefficients of every tile of a map on a grid of spacing tenths/10 voxels."""

    def __init__(self, values: np.ndarray, tenths: list[int], tile: int | None = None):
        tile = tile or tile_edge(values.shape)
        self.values, self.tenths, self.tile = values, tenths, tile
        self.boxes = tile_boxes(values.shape, [tile] * 3)
        self.coefficients = [self._fit(values[box]) for box in self.boxes]

    def _fit(self, tile: np.ndarray) -> np.ndarray:
        out = tile
        for a in range(3):
            inverse = np.linalg.pinv(base_matrix(tile.shape[a], self.tenths[a]), rcond=BASE_RCOND)
            out = np.moveaxis(np.tensordot(inverse, out, axes=([1], [a])), 0, a)
        return out

    def quantize(self, bound: float, step: float, voxel_size: Any, resolution: float | None) -> Quantization:
        """Base codes of ``step``, then the voxels' codes of 2·bound over the decoded base."""
        base = np.empty(self.values.shape)
        codes = []
        for box, c in zip(self.boxes, self.coefficients):
            k = np.rint(c / step).astype(np.int64)
            codes.append(k)
            base[box] = evaluate_base(k, base[box].shape, self.tenths, step)
        found = quantize_within(self.values, voxel_size, bound, resolution, base, self.tile)
        found.base, found.base_codes = {"spacing_tenths": list(self.tenths), "step": float(step)}, codes
        return found


def quantize_within(values: np.ndarray, voxel_size: Any, bound: float, resolution: float | None,
                    base: np.ndarray | None = None, tile: int | None = None) -> Quantization:
    """Codes k = round((v − base) / 2B) and the certificate of the decoded map base + Δ·k against ``values``."""
    step = 2.0 * bound
    if not (math.isfinite(step) and step > 0):
        raise NemapError(f"the error bound {bound!r} is not a positive number", code="BAD_ARGUMENT",
                         parameter="tolerance")
    rest = values if base is None else values - base
    if float(np.abs(rest).max()) / step > voxel_codec.MAX_CODE:
        raise NemapError(f"a bound of {bound:.3g} is too fine for values up to {float(np.abs(values).max()):.3g}: "
                         f"codes would exceed 2^31 (raise the tolerance)", code="BAD_ARGUMENT", parameter="tolerance")
    codes = np.rint(rest / step).astype(np.int64)
    decoded = codes * step if base is None else base + codes * step
    certificate, table = certify(values, decoded, voxel_size, resolution)
    return Quantization(bound, step, codes, decoded, certificate, table, tile=tile or tile_edge(values.shape))


def certify(source: np.ndarray, decoded: np.ndarray, voxel_size: Any,
            resolution: float | None) -> tuple[dict[str, Any], np.ndarray]:
    """The FSC of the decoded map against its source per shell (spec R-QNT-05), its floor up to the resolution
    over all shells and over those holding ≥ POWER_FRACTION of the largest shell's power, and the errors."""
    error = decoded - source
    d = tuple(float(v) for v in np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,)))
    fs, sh, power = _spectrum(source, d)
    frequency = np.arange(sh.count) * sh.spacing
    nyquist = 1.0 / (2.0 * max(d))
    limit = 1.0 / resolution if resolution else nyquist
    fd = scipy.fft.rfftn(decoded, workers=-1)
    empty = (power == 0) & (fsc_module.shell_sums(np.abs(fd) ** 2, sh) == 0)  # nothing there to lose: FSC 1
    curve = np.where(empty, 1.0, fsc_module.correlation(fd, fs, sh))
    inside = (frequency > 0) & (frequency <= limit + 1e-12)
    fraction = power / max(float(power[1:].max()) if sh.count > 1 else 1.0, 1e-300)
    powered = inside & (fraction >= POWER_FRACTION)
    certificate = {"resolution": float(resolution) if resolution else float(1 / nyquist),
                   "fsc_floor": _floor(curve, inside), "fsc_floor_powered": _floor(curve, powered),
                   "power_fraction": POWER_FRACTION, "max_error": float(np.abs(error).max()),
                   "rms_error": float(np.sqrt(np.mean(error * error))), "shells": int(np.count_nonzero(inside))}
    table = np.stack([frequency, np.clip(curve, -1.0, 1.0), fraction], axis=1)
    return certificate, table


_SPECTRUM: list[Any] = []  # the last source's (weak reference, voxel size, transform, shells, shell power)


def _spectrum(source: np.ndarray, d: tuple[float, ...]) -> tuple[np.ndarray, Any, np.ndarray]:
    """The source's transform, shells and power per shell; kept for the next call with the same array (a search
    certifies many quantizations of one source; the array must not change in between)."""
    if _SPECTRUM and _SPECTRUM[0]() is source and _SPECTRUM[1] == d:
        return _SPECTRUM[2], _SPECTRUM[3], _SPECTRUM[4]
    fs = scipy.fft.rfftn(source, workers=-1)
    sh = fsc_module.shells(source.shape, d)
    power = fsc_module.shell_sums(np.abs(fs) ** 2, sh)
    _SPECTRUM[:] = [weakref.ref(source), d, fs, sh, power]
    weakref.finalize(source, _SPECTRUM.clear)  # the transform goes with its source
    return fs, sh, power


def _floor(curve: np.ndarray, where: np.ndarray) -> float:
    return float(np.clip(curve[where].min(), -1.0, 1.0)) if where.any() else 1.0


def encode_tiles(tiles: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The tile streams (concatenated bytes) of integer codes and their offsets [T + 1]."""
    parts = map_on_cores(voxel_codec.encode_tile, tiles)
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in parts])
    return np.frombuffer(b"".join(parts), dtype=np.uint8).copy(), offsets


assert CERTIFICATE_COLUMNS == ("frequency", "fsc", "power")  # the table's columns, as certify stacks them
