"""Region fits as self-contained tasks: what one region's fit needs, picklable, so that it runs in this
process or on any worker of a cluster and gives the same weights (the initial weights and the points drawn
depend only on the seed and the region's index)."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import torch

from nemap.engine.device import resolve_device
from nemap.fit import full_batch, sampled
from nemap.fit.options import FitOptions
from nemap.fit.stack import RegionFit, local_inputs

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
