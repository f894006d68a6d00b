"""Fit one SIREN per region of a voxel grid: a Grid in, NeuralMapContent out (no file format).

Implements the paper's recipe (``preset="paper"``): Eq. 1–2 normalization, Eq. 3 tiling, SIREN
3 → 256 ×5 sine (ω0 = 30) → 1 linear, SIREN initialization, Adam lr 1e-4, full-batch MSE, the "natural
fit point" stop rule, keeping the best weights — plus a step cap, which the published rule lacks.
Regions are fitted in batches of stacked weights (several at once on a GPU); finished regions can be
saved to a resume folder as they complete.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nemap.engine.device import no_tf32, resolve_device
from nemap.engine.query import Engine
from nemap.fit import sampled, spline
from nemap.fit.fidelity import fidelity, fsc_fidelity
from nemap.fit.normalization import network_targets, normalization_for
from nemap.fit.options import FitOptions
from nemap.fit.resume import ResumeStore
from nemap.fit.stack import RegionFit
from nemap.fit.tasks import RegionTask, fit_together, region_task
from nemap.format.content import NeuralMapContent, Regions
from nemap.format.errors import NemapError, warn
from nemap.format.geometry import Grid
from nemap.format.tiling import tiling

log = logging.getLogger("nemap")


@dataclass
class _Plan:
    """What a fit does to each region (indices into ``bounds``, x slowest): already fitted (resumed),
    flat (stored as the constant ``flat[r]``, network output units) or still to fit (``todo``)."""

    bounds: np.ndarray
    fits: dict[int, RegionFit] = field(default_factory=dict)
    flat: dict[int, float] = field(default_factory=dict)
    todo: list[int] = field(default_factory=list)
    coefficients: np.ndarray | None = None  # the spline method: the map's coefficients [C, x + 2m, …]

    @property
    def total(self) -> int:
        return int(self.bounds.shape[0])

    def box(self, r: int) -> tuple[slice, slice, slice]:
        """Region r's voxels as slices of the grid (x, y, z)."""
        return tuple(slice(int(f), int(l) + 1) for f, l in zip(*self.bounds[r]))  # type: ignore[return-value]


class MapFit:
    """One map's fit in phases, so that its regions can be fitted anywhere: the constructor plans it (regions,
    flat ones, those a resume folder already holds), ``tasks()`` gives the regions still to fit as
    self-contained :class:`RegionTask` objects, ``record(fit)`` takes each finished region (saved to the
    resume folder), and ``content()`` assembles the map once every region is in. ``fit_here()`` fits the
    remaining regions in this process (several at once on a GPU).

    grid: values [x, y, z], geometry in Å. resume: a folder that keeps finished regions (created, reused if
    its key matches, removed by the caller when the output is written). elsewhere: the regions will be fitted on
    other machines (each resolves ``options.device`` itself). Raises NemapError for grids it cannot fit
    (non-finite voxels)."""

    def __init__(self, grid: Grid, options: FitOptions, *, resume: Path | None = None,
                 resume_key: dict[str, Any] | None = None, elsewhere: bool = False):
        values = np.asarray(grid.values, dtype=np.float32)
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise NemapError(f"{bad} voxel(s) are NaN or infinite; fix or mask the map first",
                             code="NONFINITE_VOXELS")
        self.grid, self.options = grid, options
        self.normalization, self.constant = normalization_for(values, options.clamp_negative)
        self.plan = _Plan(tiling(grid.geometry.grid_shape, options.max_region_size, options.min_overlap,
                                 _tiling_method(options)))
        # elsewhere: the regions are fitted on other machines (each resolves options.device); this one only decodes
        self.device = resolve_device("auto" if elsewhere else options.device)
        self.elsewhere = elsewhere
        self.workers: dict[str, Any] | None = None
        self.store: ResumeStore | None = None
        self.targets: np.ndarray | None = None
        self._log_start()
        if self.constant:
            warn(f"the map is constant ({self.normalization.value_min:g}): stored as constant regions, no networks")
            return
        self.targets = network_targets(values, self.normalization)
        if options.method != "spline":
            self.store = _open_store(self.plan, resume, resume_key)
        _find_flat(self.plan, self.targets, options)
        if options.method == "spline":
            self.plan.coefficients = spline.coefficient_grid(self.targets, options.spline_order)
            self.plan.todo = []

    def _log_start(self) -> None:
        plan, options = self.plan, self.options
        if options.method == "spline":
            log.info("converting %d region(s) of ≤ %d voxels per axis (%s preset: the B-spline of degree %d that "
                     "interpolates the voxels; nothing is trained)", plan.total, options.max_region_size,
                     options.preset, options.spline_order)
        else:
            log.info("fitting %d region(s) of ≤ %d voxels per axis on %s (%s preset, %d×%d sine, ω0 = %g)",
                     plan.total, options.max_region_size, "a cluster" if self.elsewhere else self.device,
                     options.preset, options.width,
                     options.sine_layers, options.omega)

    @property
    def total(self) -> int:
        return self.plan.total

    @property
    def done(self) -> int:
        """Regions finished: fitted, resumed, flat, or all of them for a spline or constant map."""
        if self.constant or self.plan.coefficients is not None:
            return self.plan.total
        return len(self.plan.fits) + len(self.plan.flat)

    def tasks(self) -> Iterator[RegionTask]:
        """The regions still to fit, in region order (each made when asked for: they hold copies of voxels)."""
        if self.targets is None or not self.plan.todo:
            return
        coefficients = sampled.spline_coefficients(self.targets) if self.options.method == "sampled" else None
        for r in list(self.plan.todo):
            if r not in self.plan.fits:
                yield region_task(r, self.options, self.targets, self.plan.box(r), coefficients)

    def record(self, fit: RegionFit) -> None:
        """Take a finished region (and save it to the resume folder)."""
        self.plan.fits[fit.index] = fit
        if self.store is not None:
            self.store.save(fit)

    def fit_here(self, progress: Any = None) -> None:
        """Fit the remaining regions in this process: one at a time on a CPU, batches that fit its memory on a GPU.
        progress(done, total, last_stats) is called as regions finish, and progress.step(step, best_loss) during
        a fit if it has that method."""
        if progress:
            progress(self.done, self.total, None)
        if not self.plan.todo:
            return
        if self.device.type == "cuda":
            no_tf32()
        batch = self.options.batch_regions or (1 if self.device.type == "cpu" else
                                               _gpu_batch(self.plan.bounds, self.options, self.device))

        def done(fit: RegionFit) -> None:
            self.record(fit)
            if progress:
                progress(self.done, self.total, fit.stats)

        on_step = getattr(progress, "step", None)
        pending: list[RegionTask] = []
        for task in self.tasks():
            pending.append(task)
            if len(pending) == batch:
                fit_together(pending, self.device, done, on_step)
                pending = []
        if pending:
            fit_together(pending, self.device, done, on_step)

    def content(self) -> NeuralMapContent:
        """The fitted map with its provenance (training, fidelity); every region must be in."""
        missing = [r for r in self.plan.todo if r not in self.plan.fits]
        if missing and self.plan.coefficients is None:
            raise NemapError(f"{len(missing)} region(s) are not fitted yet (first: {missing[0]})", code="INCOMPLETE")
        content = _assemble(self.grid, self.normalization, self.plan, self.options, self.constant)
        decoded = Engine.from_content(content, device=self.device).sample(self.grid.geometry).values
        content.provenance["training"] = _training_record(self.options, self.plan, self.device)
        if self.workers is not None:
            content.provenance["training"]["workers"] = self.workers
        content.provenance["fidelity"] = fidelity(self.grid, decoded, self.plan.bounds)
        faithful = fsc_fidelity(self.grid, decoded)
        if faithful is not None:
            content.provenance["fidelity"]["fsc"] = faithful
        return content


def fit_map(grid: Grid, options: FitOptions, *, resume: Path | None = None,
            resume_key: dict[str, Any] | None = None, progress: Any = None) -> NeuralMapContent:
    """Fit a neural map to ``grid`` (values [x, y, z], geometry in Å) in this process (see :class:`MapFit`)."""
    job = MapFit(grid, options, resume=resume, resume_key=resume_key)
    job.fit_here(progress)
    return job.content()


def _open_store(plan: _Plan, resume: Path | None, resume_key: dict[str, Any] | None) -> ResumeStore | None:
    """The resume store, with the regions it already holds put into ``plan.fits``."""
    if resume is None:
        return None
    store = ResumeStore(resume, resume_key or {})
    plan.fits = store.finished()
    if plan.fits:
        log.info("resuming: %d of %d regions were already fitted (%s)", len(plan.fits), plan.total, resume)
    return store


def _find_flat(plan: _Plan, targets: np.ndarray, options: FitOptions) -> None:
    """Regions whose targets span less than ``flat_tolerance`` become constants; the rest are to fit."""
    if options.flat_tolerance > 0:
        for r in range(plan.total):
            box = targets[plan.box(r)]
            if float(box.max() - box.min()) < options.flat_tolerance:
                plan.flat[r] = float(box.mean())
    plan.todo = [r for r in range(plan.total) if r not in plan.fits and r not in plan.flat]
    if plan.flat:
        log.info("%d of %d regions are flat (targets span < %g): stored as constants", len(plan.flat), plan.total,
                 options.flat_tolerance)


def _assemble(grid: Grid, normalization: Any, plan: _Plan, options: FitOptions, constant: bool) -> NeuralMapContent:
    """The content of the fitted map: networks stacked in region order, constants elsewhere."""
    if plan.coefficients is not None:
        return _assemble_spline(grid, normalization, plan, options)
    layers = options.layers()
    slots = [r for r in range(plan.total) if r in plan.fits]
    weights = [np.stack([plan.fits[r].weights[i] for r in slots]) if slots else
               np.zeros((0, lay.out_features, lay.in_features), np.float32) for i, lay in enumerate(layers)]
    biases = [np.stack([plan.fits[r].biases[i] for r in slots]) if slots else
              np.zeros((0, lay.out_features), np.float32) for i, lay in enumerate(layers)]
    return NeuralMapContent(grid.geometry, normalization, _regions(plan, slots, options, -1.0 if constant else 0.0),
                            layers, weights, biases)


def _tiling_method(options: FitOptions) -> str:
    """The spline method's regions are windows of one spline, so they need not be 64 voxels long:
    equal regions no longer than needed keep the file small. Network methods keep the paper's Eq. 3."""
    return "balanced" if options.method == "spline" else "paper-eq3"


def _regions(plan: _Plan, slots: list[int], options: FitOptions, fill: float = 0.0) -> Regions:
    """The regions of a fit: ``slots`` (region indices, in slot order) have networks; flat regions hold their
    constant, any other region ``fill`` (network output units)."""
    network_index = np.full(plan.total, -1, dtype=np.int64)
    network_index[slots] = np.arange(len(slots))
    constant_value = np.full(plan.total, fill, dtype=np.float32)
    for r, value in plan.flat.items():
        constant_value[r] = value
    return Regions(plan.bounds, network_index, constant_value, options.ramp_width,
                   {"method": _tiling_method(options), "max_size": options.max_region_size,
                    "min_overlap": options.min_overlap})


def _assemble_spline(grid: Grid, normalization: Any, plan: _Plan, options: FitOptions) -> NeuralMapContent:
    """NEMAP_feature_grid content: each region that is not flat gets its window of the map's B-spline
    coefficients and the zero correction network."""
    assert plan.coefficients is not None
    slots = [r for r in range(plan.total) if r not in plan.flat]
    layers = spline.correction_layers()
    weights = [np.zeros((len(slots), lay.out_features, lay.in_features), np.float32) for lay in layers]
    biases = [np.zeros((len(slots), lay.out_features), np.float32) for lay in layers]
    windows = spline.region_windows(plan.coefficients, plan.bounds, slots, options.spline_order)
    return NeuralMapContent(grid.geometry, normalization, _regions(plan, slots, options), layers, weights,
                            biases, feature_grid=windows, feature_grid_order=options.spline_order)


def _training_record(options: FitOptions, plan: _Plan, device: torch.device) -> dict[str, Any]:
    """How the map was fitted, as recorded in the provenance."""
    if plan.coefficients is not None:
        return {"options": options.to_json(), "method": "spline",
                "coefficients": f"B-spline of degree {options.spline_order} interpolating the normalized voxels "
                                "(scipy spline_filter, mirror boundary); zero correction network",
                "regions": [{"region": r, "stop_reason": "flat" if r in plan.flat else "spline"}
                            for r in range(plan.total)]}
    return {
        "options": options.to_json(),
        "initialization": "SIREN (first layer U(±1/in), later U(±√(6/in)/ω), biases U(±1/√in))",
        "optimizer": {"name": "Adam", "betas": [0.9, 0.999], "eps": 1e-8, "learning_rate": options.learning_rate},
        **_recipe(options),
        "device": str(device),
        "precision": "float32 (no TF32)",
        "torch": torch.__version__,
        "regions": [dict(plan.fits[r].stats, region=r) if r in plan.fits else
                    {"region": r, "stop_reason": "flat" if r in plan.flat else "constant"} for r in range(plan.total)],
    }


def _recipe(options: FitOptions) -> dict[str, Any]:
    """The loss and stop rule of a fit, as recorded in the provenance."""
    if options.method == "sampled":
        return {"loss": (f"MSE on the [−1, 1] scale over mini-batches of {options.points_per_step} points drawn from "
                         f"the voxel centres and {options.pool_factor:g} random points per voxel between them; "
                         "targets between voxel centres are the cubic B-spline interpolant of the voxels"),
                "learning_rate_schedule": {"name": "cosine", "from": options.learning_rate,
                                           "to": options.final_learning_rate, "steps": options.max_steps},
                "stop_rule": {"heldout_points": options.heldout_points, "eval_every": options.eval_every,
                              "patience": options.patience, "max_steps": options.max_steps,
                              "flat_tolerance": options.flat_tolerance, "keeps": "best held-out weights"}}
    return {"loss": "MSE over all voxels of the region (full batch), on the [−1, 1] scale",
            "stop_rule": {"exit_loss": options.exit_loss, "plateau_loss": options.plateau_loss,
                          "patience": options.patience, "max_steps": options.max_steps,
                          "flat_tolerance": options.flat_tolerance, "keeps": "best weights"}}


def _gpu_batch(bounds: np.ndarray, options: FitOptions, device: torch.device) -> int:
    """Regions per batch that fit in 60 % of the free GPU memory."""
    free, _ = torch.cuda.mem_get_info(device)
    voxels = int(np.prod(bounds[0, 1] - bounds[0, 0] + 1))
    per_region = min(voxels, options.chunk_voxels) * options.width * 4 * (3 * options.sine_layers + 2) + voxels * 8
    return max(1, min(bounds.shape[0], int(0.6 * free // per_region)))
