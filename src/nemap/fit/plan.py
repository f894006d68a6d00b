"""A map's fit plan: its regions (indices into ``bounds``, x slowest), which are already fitted (resumed), flat
(stored as constants) or still to fit, and the regions dataset they make."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nemap.fit.region import RegionFit
from nemap.format.content import Regions

log = logging.getLogger("nemap")


@dataclass
class Plan:
    """What a fit does to each region: already fitted (``fits``), flat (the constant ``flat[r]``, network output
    units) or still to fit (``todo``); ``coefficients``: the spline method's coefficients of the whole map."""

    bounds: np.ndarray
    fits: dict[int, RegionFit] = field(default_factory=dict)
    flat: dict[int, float] = field(default_factory=dict)
    todo: list[int] = field(default_factory=list)
    coefficients: np.ndarray | None = None

    @property
    def total(self) -> int:
        return int(self.bounds.shape[0])

    def box(self, r: int) -> tuple[slice, slice, slice]:
        """Region r's voxels as slices of the grid (x, y, z)."""
        return tuple(slice(int(a), int(b) + 1) for a, b in zip(*self.bounds[r]))  # type: ignore[return-value]


def find_flat(plan: Plan, targets: np.ndarray, flat_tolerance: float) -> None:
    """Regions whose targets span less than ``flat_tolerance`` become constants; the rest are to fit."""
    if flat_tolerance > 0:
        for r in range(plan.total):
            box = targets[plan.box(r)]
            if float(box.max() - box.min()) < flat_tolerance:
                plan.flat[r] = float(box.mean())
    plan.todo = [r for r in range(plan.total) if r not in plan.fits and r not in plan.flat]
    if plan.flat:
        log.info("%d of %d regions are flat (targets span < %g): stored as constants", len(plan.flat), plan.total,
                 flat_tolerance)


def plan_regions(plan: Plan, slots: list[int], options: Any, tiling: str, fill: float = 0.0) -> Regions:
    """The regions of a fit: ``slots`` (region indices, in slot order) have networks; flat regions hold their
    constant, any other region ``fill`` (network output units); ``tiling`` names how they were chosen."""
    network_index = np.full(plan.total, -1, dtype=np.int64)
    network_index[slots] = np.arange(len(slots))
    constant_value = np.full(plan.total, fill, dtype=np.float32)
    for r, value in plan.flat.items():
        constant_value[r] = value
    return Regions(plan.bounds, network_index, constant_value, options.ramp_width,
                   {"method": tiling, "max_size": options.max_region_size,
                    "min_overlap": options.min_overlap})
