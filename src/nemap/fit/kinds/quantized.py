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
from dataclasses import dataclass
from typing import Any

import numpy as np

from nemap.errors import NemapError, warn
from nemap.fit.kinds.base import RegionMaker
from nemap.format.content import Layer, NeuralMapContent, Regions
from nemap.format.kinds import voxel_codec
from nemap.format.kinds.quantized import CERTIFICATE_COLUMNS, QuantizedVoxels, tile_box, tile_grid
from nemap.resolution import fsc as fsc_module
from nemap.resolution.noise import NoiseEstimate, estimate_noise, from_half_maps

INVISIBLE_TOLERANCE = 1 / 20  # noise SDs: the default bound
INVISIBLE_FSC = 0.999  # the default's floor of FSC(decoded, source) up to the resolution
MAX_HALVINGS = 4
FALLBACK_SD = 2e-3  # of the map's range (of its largest |value|, or 1, for a constant map): σ when none is measured
POWER_FRACTION = 1e-4  # shells holding less than this of the largest shell's power are left out of the powered floor
TILE = 64


@dataclass
class Quantization:
    """One quantization of a map: its codes and what they keep."""

    bound: float
    step: float
    codes: np.ndarray
    certificate: dict[str, Any]
    table: np.ndarray


class QuantizedMaker(RegionMaker):
    """The spline method's map stored as quantized voxels (the default of ``nemap convert``)."""

    method = "spline"
    tiling = "whole-grid"
    trains = False
    handles_constant = True

    def start_message(self, options: Any, regions: int, where: str) -> str:
        how = "invisible: σ/20 and FSC ≥ 0.999" if options.tolerance is None else f"{options.tolerance:g} noise SD"
        return (f"converting to the quintic B-spline of the voxels, stored as voxels quantized within a bound "
                f"({how}) in tiles of {TILE}³")

    def prepare(self, job: Any) -> None:
        values = np.asarray(job.grid.values, dtype=np.float64)
        noise = job.noise or estimate_noise(values, job.grid.geometry.voxel_size, job.resolution)
        job.noise = noise
        if noise.sd <= 0:
            warn(f"{noise.description}: its noise is taken as {FALLBACK_SD:g} of its range (bound "
                 f"{FALLBACK_SD * (job.options.tolerance or INVISIBLE_TOLERANCE):.1e} of the range)")
        job.plan.todo = []
        job.quantization = quantize(values, job.grid.geometry.voxel_size, noise, job.options.tolerance,
                                    job.resolution)

    def assemble(self, job: Any) -> NeuralMapContent:
        q: Quantization = job.quantization
        shape = job.grid.geometry.grid_shape
        streams, offsets = encode_tiles(q.codes, shape)
        member = {"order": 5, "tile_shape": [TILE] * 3, "step": q.step, "error_bound": q.bound,
                  "noise": job.noise.to_json(), "certificate": q.certificate}
        if job.options.tolerance is not None:
            member["tolerance"] = float(job.options.tolerance)
        regions = Regions(np.asarray([[[0, 0, 0], [n - 1 for n in shape]]], dtype=np.int64), np.asarray([-1]),
                          np.zeros(1, np.float32), job.options.ramp_width, {"method": self.tiling})
        layer = Layer(3, 1, "identity")
        return NeuralMapContent(job.grid.geometry, job.normalization, regions, [layer],
                                [np.zeros((0, 1, 3), np.float32)], [np.zeros((0, 1), np.float32)],
                                quantized=QuantizedVoxels(member, streams, offsets, q.table))

    def record(self, options: Any, plan: Any, device: Any) -> dict[str, Any]:
        return {"options": self.recorded_options(options), "method": "spline",
                "coefficients": "quintic B-spline interpolating the decoded voxels (computed by the reader)",
                "storage": "NEMAP_quantized: codes of step 2·error_bound, tiles of "
                           f"{TILE}³ voxels, interpolation-predicted residuals, zlib"}

    def recorded_options(self, options: Any) -> dict[str, Any]:
        return {"preset": options.preset, "method": "spline", "storage": "quantized",
                "tolerance": options.tolerance}

    def memory_bytes(self, grid_shape: tuple[int, int, int], options: Any, batch: int = 1) -> int:
        """Values (float32 and float64), codes (int64), the decoded copy and two FFTs of the certificate."""
        return 60 * int(np.prod(grid_shape)) + 64 * 2**20


def quantize(values: np.ndarray, voxel_size: Any, noise: NoiseEstimate, tolerance: float | None,
             resolution: float | None) -> Quantization:
    """Codes of ``values`` within the bound the tolerance asks (the invisible default when None)."""
    span = float(values.max() - values.min()) or max(abs(float(values.max())), 1.0)
    scale = noise.sd if noise.sd > 0 else FALLBACK_SD * span
    bound = (INVISIBLE_TOLERANCE if tolerance is None else float(tolerance)) * scale
    for _ in range(MAX_HALVINGS + 1):
        found = quantize_within(values, voxel_size, bound, resolution)
        if tolerance is not None or found.certificate["fsc_floor"] >= INVISIBLE_FSC:
            return found
        bound /= 2
    warn(f"the FSC floor stays at {found.certificate['fsc_floor']:.5f} below {INVISIBLE_FSC} with the bound halved "
         f"{MAX_HALVINGS} times ({found.bound:.3g})")
    return found


def quantize_within(values: np.ndarray, voxel_size: Any, bound: float, resolution: float | None) -> Quantization:
    """Codes k = round(v / 2B) and the certificate of the decoded map Δ·k against ``values``."""
    step = 2.0 * bound
    if not (math.isfinite(step) and step > 0):
        raise NemapError(f"the error bound {bound!r} is not a positive number", code="BAD_ARGUMENT",
                         parameter="tolerance")
    top = float(np.abs(values).max()) / step
    if top > voxel_codec.MAX_CODE:
        raise NemapError(f"a bound of {bound:.3g} is too fine for values up to {float(np.abs(values).max()):.3g}: "
                         f"codes would exceed 2^31 (raise the tolerance)", code="BAD_ARGUMENT", parameter="tolerance")
    codes = np.rint(values / step).astype(np.int64)
    decoded = codes * step
    certificate, table = certify(values, decoded, voxel_size, resolution)
    return Quantization(bound, step, codes, certificate, table)


def certify(source: np.ndarray, decoded: np.ndarray, voxel_size: Any,
            resolution: float | None) -> tuple[dict[str, Any], np.ndarray]:
    """The FSC of the decoded map against its source per shell (spec R-QNT-05), its floor up to the resolution
    over all shells and over those holding ≥ POWER_FRACTION of the largest shell's power, and the errors."""
    error = decoded - source
    shape = source.shape
    d = tuple(float(v) for v in np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,)))
    sh = fsc_module.shells(shape, d)
    frequency = np.arange(sh.count) * sh.spacing
    nyquist = 1.0 / (2.0 * max(d))
    limit = 1.0 / resolution if resolution else nyquist
    fs, fd = (np.fft.rfftn(a) for a in (source, decoded))
    power = fsc_module.shell_sums(np.abs(fs) ** 2, sh)
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


def _floor(curve: np.ndarray, where: np.ndarray) -> float:
    return float(np.clip(curve[where].min(), -1.0, 1.0)) if where.any() else 1.0


def encode_tiles(codes: np.ndarray, grid_shape: Any) -> tuple[np.ndarray, np.ndarray]:
    """The tile streams (concatenated bytes) and their offsets [T + 1], tiles in C order of the tile grid."""
    count = int(np.prod(tile_grid(grid_shape, [TILE] * 3)))
    parts = [voxel_codec.encode_tile(codes[tile_box(t, grid_shape, [TILE] * 3)]) for t in range(count)]
    offsets = np.zeros(count + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in parts])
    return np.frombuffer(b"".join(parts), dtype=np.uint8).copy(), offsets


assert CERTIFICATE_COLUMNS == ("frequency", "fsc", "power")  # the table's columns, as certify stacks them
