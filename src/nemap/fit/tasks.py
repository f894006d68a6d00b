"""Region fits as self-contained tasks: what one region's fit needs, picklable, so that it runs in this
process or on any worker of a cluster and gives the same weights (the initial weights and the points drawn
depend only on the seed and the region's index)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nemap.engine.device import no_tf32, resolve_device
from nemap.fit import full_batch, sampled
from nemap.fit.options import FitOptions
from nemap.fit.region import RegionFit
from nemap.fit.stack import local_inputs

SPLINE_MARGIN = 3  # coefficients beyond a region's box that its cubic B-spline targets read (2 needed)


@dataclass
class RegionTask:
    """One region's fit: ``targets`` are its voxels on the network's [−1, 1] scale ([x, y, z]); for the
    ``sampled`` method also ``spline``, the map's cubic B-spline coefficients around the region, and
    ``bounds`` (first and last voxel index of the region within ``spline``, x, y, z)."""

    index: int
    options: FitOptions
    targets: np.ndarray
    spline: np.ndarray | None = None
    bounds: np.ndarray | None = None

    def __call__(self, device: torch.device | None = None,
                 on_step: Callable[[int, float], None] | None = None) -> RegionFit:
        """Fit the region (on ``device``, default the options' device as this machine resolves it)."""
        out: list[RegionFit] = []
        fit_together([self], device or resolve_device(self.options.device), out.append, on_step)
        return out[0]


def region_task(index: int, options: FitOptions, targets: np.ndarray, box: tuple[slice, slice, slice],
                spline: np.ndarray | None) -> RegionTask:
    """The task of region ``index`` whose voxels are ``box`` of the map's ``targets`` ([x, y, z]); ``spline``
    the whole map's cubic B-spline coefficients (``sampled`` method only)."""
    region = np.ascontiguousarray(targets[box], dtype=np.float32)
    if spline is None:
        return RegionTask(index, options, region)
    lo = [max(0, s.start - SPLINE_MARGIN) for s in box]
    hi = [min(n, s.stop + SPLINE_MARGIN) for s, n in zip(box, spline.shape)]
    window = np.ascontiguousarray(spline[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
    bounds = np.array([[s.start - a for s, a in zip(box, lo)], [s.stop - 1 - a for s, a in zip(box, lo)]])
    return RegionTask(index, options, region, window, bounds)


def fit_together(tasks: list[RegionTask], device: torch.device, on_done: Callable[[RegionFit], None],
                 on_step: Callable[[int, float], None] | None = None) -> None:
    """Fit tasks of one map (same options and region shape) as one batch of stacked networks on ``device``;
    ``on_done`` gets each region as it finishes."""
    options = tasks[0].options
    indices = [t.index for t in tasks]
    if options.method == "sampled":
        # the spline window is mirrored exactly where the whole map's is: at the map's own edges
        pools = [sampled.training_pool(t.spline, t.targets, t.bounds, options, t.index) for t in tasks]
        sampled.fit_regions_sampled([p[0] for p in pools], [p[1] for p in pools], indices, options, device, on_done,
                                    on_step)
        return
    u = local_inputs(tasks[0].targets.shape)
    full_batch.fit_regions(u, np.stack([t.targets.reshape(-1) for t in tasks]), indices, options, device, on_done,
                           on_step)


def task_context(targets: np.ndarray, options: FitOptions) -> np.ndarray | None:
    """What every region task of a map shares: the map's cubic B-spline coefficients for the sampled method
    (each task takes its window), nothing for the full-batch method."""
    return sampled.spline_coefficients(targets) if options.method == "sampled" else None


def fit_in_batches(tasks: Iterable[RegionTask], bounds: np.ndarray, options: FitOptions, device: torch.device,
                   on_done: Callable[[RegionFit], None], on_step: Callable[[int, float], None] | None = None) -> None:
    """Fit ``tasks`` in this process: one at a time on a CPU, batches that fit in its memory on a GPU."""
    if device.type == "cuda":
        no_tf32()
    batch = options.batch_regions or (1 if device.type == "cpu" else _gpu_batch(bounds, options, device))
    pending: list[RegionTask] = []
    for task in tasks:
        pending.append(task)
        if len(pending) == batch:
            fit_together(pending, device, on_done, on_step)
            pending = []
    if pending:
        fit_together(pending, device, on_done, on_step)


def _gpu_batch(bounds: np.ndarray, options: FitOptions, device: Any) -> int:
    """Regions per batch that fit in 60 % of the free GPU memory."""
    free, _ = torch.cuda.mem_get_info(device)
    voxels = int(np.prod(bounds[0, 1] - bounds[0, 0] + 1))
    per_region = min(voxels, options.chunk_voxels) * options.width * 4 * (3 * options.sine_layers + 2) + voxels * 8
    return max(1, min(bounds.shape[0], int(0.6 * free // per_region)))
