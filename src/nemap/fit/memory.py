"""How much memory a conversion needs, and refusing one that cannot fit before anything is allocated."""

from __future__ import annotations

import numpy as np

from nemap.fit.options import FitOptions
from nemap.format.errors import NemapError


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def estimate_memory_bytes(grid_shape: tuple[int, int, int], options: FitOptions, batch: int = 1) -> int:
    """Peak host memory of a conversion: the grid (values, targets, decoded copy) plus training
    activations of one batch of regions, chunked; for the spline method, the coefficient copies instead."""
    voxels = int(np.prod(grid_shape))
    if options.method == "spline":  # values, targets, decoded copy; the float64 prefilter, the padded
        return 40 * voxels + 64 * 2**20  # coefficients and the region windows (EMD-0093: 30 B/voxel measured)
    region = min(options.chunk_voxels, int(np.prod([min(n, options.max_region_size) for n in grid_shape])))
    activations = batch * region * options.width * 4 * (3 * options.sine_layers + 2)
    return 4 * voxels * 4 + activations + 64 * 2**20


def check_memory(grid_shape: tuple[int, int, int], options: FitOptions, path: str | None = None) -> None:
    """Refuse, before allocating, a conversion that cannot fit in the memory at hand."""
    need = estimate_memory_bytes(grid_shape, options)
    have = available_memory_bytes()
    if have is not None and need > have:
        raise NemapError(
            f"a {grid_shape[0]}×{grid_shape[1]}×{grid_shape[2]} map needs about {need / 2**30:.1f} GiB to convert, "
            f"but only {have / 2**30:.1f} GiB is available", path=path, code="OUT_OF_MEMORY")
