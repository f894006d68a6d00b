"""Fitting options and the named presets (``spline``, ``paper``, ``paper-skip-flat``, ``siren-sampled``,
``siren-tiny``).

Units: region sizes and ramp width in voxels; losses are MSE on the network's [−1, 1] output scale.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from nemap.errors import ArgumentError, warn
from nemap.format.content import Layer, siren_layers


@dataclass(frozen=True)
class FitOptions:
    """How to fit. Units: region sizes and ramp in voxels; losses are MSE on the [−1, 1] scale."""

    preset: str = "paper"
    width: int = 256
    sine_layers: int = 5
    omega: float = 30.0
    learning_rate: float = 1e-4
    max_steps: int = 3000
    exit_loss: float = 1e-5
    plateau_loss: float = 4e-4
    patience: int = 25
    max_region_size: int = 64
    min_overlap: int = 4
    ramp_width: float = 3.0
    clamp_negative: bool = True
    seed: int = 0
    device: str = "auto"
    batch_regions: int = 0  # regions fitted at once; 0 = automatic (1 on CPU)
    chunk_voxels: int = 1 << 14  # voxels per forward/backward chunk: bounds memory, same gradient, and
    # keeps tensors small enough for the allocator to reuse (65536 doubled the step time in page faults)
    # the fast ("sampled") method: mini-batches of points between voxel centres, supervised by the
    # cubic B-spline interpolant of the voxels, cosine schedule, stop on held-out error
    method: str = "paper"  # "paper" (full batch at voxel centres) | "sampled" | "spline" (nothing trained)
    spline_order: int = 5  # the spline method's B-spline degree: 3 or 5
    points_per_step: int = 8192
    pool_factor: float = 2.0  # random off-grid points per voxel in a region's training pool
    heldout_points: int = 4096
    eval_every: int = 50
    final_learning_rate: float = 1e-5
    flat_tolerance: float = 0.0  # regions whose targets span less than this (y units) become constants
    # the spline method's storage: quantized voxels within ``tolerance`` noise SDs (None: invisible, σ/20 and
    # FSC ≥ 0.999), or ``lossless`` float32 coefficient windows (NEMAP_feature_grid, format 0.2)
    tolerance: float | None = None
    fsc_floor: float | None = None  # with quantized storage: keep the FSC against the source ≥ this to the resolution
    lossless: bool = False

    def layers(self) -> list[Layer]:
        return siren_layers(self.width, self.sine_layers, self.omega)

    def to_json(self) -> dict[str, Any]:
        """The options that matter to the method, as recorded in a file's provenance and a resume key."""
        from nemap.fit.kinds import maker_for

        return maker_for(self).recorded_options(self)


PRESETS: dict[str, FitOptions] = {
    # spline (the default): nothing is trained. Each region stores its window of the quintic B-spline
    # that interpolates the voxels (NEMAP_feature_grid, format 0.2; nemap.fit.kinds.spline), with the zero
    # correction network; regions whose targets span less than 2e-3 are constants. No network trained
    # so far beats this between voxel centres (CHANGELOG, benchmarks/results/region, decimation).
    "spline": FitOptions(preset="spline", method="spline", spline_order=5, flat_tolerance=2e-3, clamp_negative=False),
    # the published recipe: one 3 → 256 ×5 sine → 1 SIREN per Eq. 3 region, full batch, natural-fit stop
    "paper": FitOptions(),
    # the paper's recipe, except that regions whose targets span less than 2e-3 (solvent, masked or flat) are
    # stored as constants instead of fitted (max error 1e-3 of the range there)
    "paper-skip-flat": FitOptions(preset="paper-skip-flat", flat_tolerance=2e-3),
    # a 128 × 3 SIREN fitted by mini-batches of points between voxel centres, supervised by the cubic B-spline
    # of the voxels, 1,500 steps: minutes per region on a CPU, below the paper's fidelity
    "siren-sampled": FitOptions(preset="siren-sampled", method="sampled", width=128, sine_layers=3,
                                learning_rate=1e-3, final_learning_rate=1e-5, max_steps=1500, points_per_step=8192,
                                pool_factor=2.0, heldout_points=4096, eval_every=50, patience=4, flat_tolerance=2e-3),
    # a 64 × 3 SIREN by the paper's recipe in at most 400 steps: quick looks and tests
    "siren-tiny": FitOptions(preset="siren-tiny", width=64, sine_layers=3, learning_rate=1e-3, max_steps=400),
}

# Names used before 0.3 (accepted with a deprecation warning until the next release).
RENAMED_PRESETS = {"fast": "paper-skip-flat", "quick": "siren-sampled", "small": "siren-tiny"}


MAX_REGION_SIZE = 64  # voxels per axis, the paper's


def options_for(preset: str = "paper", **overrides: Any) -> FitOptions:
    """The options of a preset, with any field overridden (None values are ignored). A name of
    ``RENAMED_PRESETS`` is taken with a deprecation warning."""
    if preset in RENAMED_PRESETS:
        warn(f"preset {preset!r} is now called {RENAMED_PRESETS[preset]!r}; the old name goes in the next release")
        preset = RENAMED_PRESETS[preset]
    if preset not in PRESETS:
        raise ArgumentError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}", parameter="preset")
    options = dataclasses.replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    check_options(options)
    storage = [n for n in ("tolerance", "fsc_floor") if getattr(options, n) is not None] + (
        ["lossless"] if options.lossless else [])
    if storage and (options.method != "spline" or (options.lossless and len(storage) > 1)):
        raise ArgumentError(f"'{storage[0]}' chooses how the spline preset quantizes its map; it does not apply to "
                            f"the {options.preset} preset{' with lossless' if options.lossless else ''}",
                            parameter=storage[0])
    return options


MAX_WIDTH = 4096  # the format's limit on features per layer (spec §3.6)
MAX_SINE_LAYERS = 63  # the format's 64 layers, one of them the linear output
MAX_TOLERANCE = 10.0  # noise SDs: beyond this a quantized map keeps little of the map


def _check_range(name: str, value: Any, low: float, high: float, unit: str = "") -> None:
    """Refuse a value that is not a finite number in [low, high]."""
    try:
        ok = math.isfinite(float(value)) and low <= float(value) <= high
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ArgumentError(f"'{name}' must be {low:g} to {high:g}{unit}, got {value!r}", parameter=name)


def check_options(options: FitOptions) -> None:
    """Every option in its range (before any work): sizes within the format's limits, rates and losses
    finite and positive. Raises ArgumentError naming the option."""
    low = 2 * options.min_overlap  # neighbours overlap by min_overlap voxels
    _check_range("max_region_size", options.max_region_size, low, MAX_REGION_SIZE, " voxels")
    _check_range("width", options.width, 1, MAX_WIDTH, " features")
    _check_range("sine_layers", options.sine_layers, 1, MAX_SINE_LAYERS)
    _check_range("max_steps", options.max_steps, 1, 10**9)
    for name in ("exit_loss", "plateau_loss", "learning_rate", "final_learning_rate", "omega"):
        _check_range(name, getattr(options, name), 1e-300, 1e300)
    _check_range("flat_tolerance", options.flat_tolerance, 0.0, 2.0)
    if options.tolerance is not None:
        _check_range("tolerance", options.tolerance, 1e-6, MAX_TOLERANCE, " noise SDs")
    if options.fsc_floor is not None:
        _check_range("fsc_floor", options.fsc_floor, 0.5, 0.999999)
    if options.spline_order not in (3, 5):
        raise ArgumentError(f"'spline_order' must be 3 or 5, got {options.spline_order!r}", parameter="spline_order")
