"""A voxel grid in, neural-map content out (no file format): the regions planned, flat ones found, the rest made
by the maker of the chosen method (``nemap.fit.kinds``: SIREN networks trained per region, or spline windows of
one prefilter), with the fidelity report.

SIREN methods fit regions in batches of stacked weights (several at once on a GPU) and can save finished regions
to a resume folder as they complete; the paper's recipe (``preset="paper"``) is Eq. 1–2 normalization, Eq. 3
tiling, SIREN 3 → 256 ×5 sine (ω0 = 30) → 1 linear, Adam lr 1e-4, full-batch MSE and the "natural fit point"
stop rule, plus a step cap.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nemap.engine.query import Engine
from nemap.errors import ArgumentError, NemapError, require, warn
from nemap.fit.fidelity import fidelity, fsc_fidelity
from nemap.fit.kinds import maker_for
from nemap.fit.normalization import network_targets, normalization_for
from nemap.fit.options import FitOptions
from nemap.fit.plan import Plan, find_flat
from nemap.fit.region import RegionFit
from nemap.fit.resume import ResumeStore
from nemap.format.content import NeuralMapContent
from nemap.format.geometry import Grid
from nemap.format.tiling import tiling
from nemap.resolution.noise import NoiseEstimate

log = logging.getLogger("nemap")


class MapFit:
    """One map's fit in phases, so that its regions can be fitted anywhere: the constructor plans it (regions,
    flat ones, those a resume folder already holds), ``tasks()`` gives the regions still to fit as
    self-contained :class:`~nemap.fit.tasks.RegionTask` objects, ``record(fit)`` takes each finished region (saved
    to the resume folder), and ``content()`` assembles the map once every region is in. ``fit_here()`` fits the
    remaining regions in this process (several at once on a GPU).

    grid: values [x, y, z], geometry in Å. resume: a folder that keeps finished regions (created, reused if
    its key matches, removed by the caller when the output is written). elsewhere: the regions will be fitted on
    other machines (each resolves ``options.device`` itself). resolution (Å) and noise (an estimate, from half
    maps say) serve quantized storage: its noise estimate and its certificate. Raises NemapError for grids it
    cannot fit (non-finite voxels)."""

    def __init__(self, grid: Grid, options: FitOptions, *, resume: Path | None = None,
                 resume_key: dict[str, Any] | None = None, elsewhere: bool = False,
                 resolution: float | None = None, noise: NoiseEstimate | None = None):
        values = np.asarray(grid.values, dtype=np.float32)
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise NemapError(f"{bad} voxel(s) are NaN or infinite; fix or mask the map first",
                             code="NONFINITE_VOXELS")
        self.grid, self.options = grid, options
        self.resolution, self.noise = resolution, noise  # Å; the noise estimate (quantized storage)
        self.quantization: Any = None
        self.maker = maker_for(options)
        self.normalization, self.constant = normalization_for(values, options.clamp_negative)
        self.plan = Plan(tiling(grid.geometry.grid_shape, options.max_region_size, options.min_overlap,
                                self.maker.tiling))
        self.elsewhere = elsewhere
        self.device = _device("auto" if elsewhere else options.device) if self.maker.trains else None
        self.workers: dict[str, Any] | None = None
        self.store: ResumeStore | None = None
        self.targets: np.ndarray | None = None
        where = "a cluster" if elsewhere else str(self.device)
        log.info("%s", self.maker.start_message(options, self.plan.total, where))
        if self.constant and not self.maker.handles_constant:
            warn(f"the map is constant ({self.normalization.value_min:g}): stored as constant regions, no networks")
            return
        self.targets = network_targets(values, self.normalization)
        if self.maker.trains:
            self.store = _open_store(self.plan, resume, resume_key)
        find_flat(self.plan, self.targets, options.flat_tolerance)
        self.maker.prepare(self)

    @property
    def total(self) -> int:
        return self.plan.total

    @property
    def done(self) -> int:
        """Regions finished: fitted, resumed, flat, or all of them when nothing is trained or the map is constant."""
        if self.constant or not self.maker.trains:
            return self.plan.total
        return len(self.plan.fits) + len(self.plan.flat)

    def tasks(self) -> Iterator[Any]:
        """The regions still to fit, in region order (each made when asked for: they hold copies of voxels)."""
        if self.targets is None or not self.plan.todo:
            return
        from nemap.fit.tasks import region_task, task_context

        context = task_context(self.targets, self.options)
        for r in list(self.plan.todo):
            if r not in self.plan.fits:
                yield region_task(r, self.options, self.targets, self.plan.box(r), context)

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
        from nemap.fit.tasks import fit_in_batches

        def done(fit: RegionFit) -> None:
            self.record(fit)
            if progress:
                progress(self.done, self.total, fit.stats)

        fit_in_batches(self.tasks(), self.plan.bounds, self.options, self.device, done, getattr(progress, "step", None))

    def content(self) -> NeuralMapContent:
        """The fitted map with its provenance (training, fidelity); every region must be in."""
        missing = [r for r in self.plan.todo if r not in self.plan.fits]
        if missing:
            raise NemapError(f"{len(missing)} region(s) are not fitted yet (first: {missing[0]})", code="INCOMPLETE")
        content = self.maker.assemble(self)
        decoded = Engine(content, device=self.device or "cpu").sample(self.grid.geometry).values
        content.provenance["training"] = self.maker.record(self.options, self.plan, self.device)
        if self.workers is not None:
            content.provenance["training"]["workers"] = self.workers
        content.provenance["fidelity"] = fidelity(self.grid, decoded, self.plan.bounds)
        faithful = fsc_fidelity(self.grid, decoded)
        if faithful is not None:
            content.provenance["fidelity"]["fsc"] = faithful
        return content


def fit_map(grid: Grid, options: FitOptions, *, resume: Path | None = None,
            resume_key: dict[str, Any] | None = None, progress: Any = None, resolution: float | None = None,
            noise: NoiseEstimate | None = None) -> NeuralMapContent:
    """Fit a neural map to ``grid`` (values [x, y, z], geometry in Å) in this process (see :class:`MapFit`)."""
    job = MapFit(grid, options, resume=resume, resume_key=resume_key, resolution=resolution, noise=noise)
    job.fit_here(progress)
    return job.content()


def _device(device: str) -> Any:
    require("torch", "siren", "fit SIREN networks")
    from nemap.engine.device import resolve_device

    return resolve_device(device)


DEVICE_NAMES = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(options: FitOptions) -> None:
    """Refuse, before any work, a device this machine lacks (or a method that needs torch where it is missing);
    a method that trains nothing checks only the name (auto, cpu, cuda, cuda:N)."""
    if maker_for(options).trains:
        _device(options.device)
    elif not DEVICE_NAMES.match(str(options.device)):
        raise ArgumentError(f"'device' {options.device!r} is not a device (auto, cpu, cuda, cuda:N)",
                            parameter="device", code="DEVICE_UNAVAILABLE")


def _open_store(plan: Plan, resume: Path | None, resume_key: dict[str, Any] | None) -> ResumeStore | None:
    """The resume store, with the regions it already holds put into ``plan.fits``."""
    if resume is None:
        return None
    store = ResumeStore(resume, resume_key or {})
    plan.fits = store.finished()
    if plan.fits:
        log.info("resuming: %d of %d regions were already fitted (%s)", len(plan.fits), plan.total, resume)
    return store
