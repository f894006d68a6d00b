"""How much memory a conversion needs, and refusing one that cannot fit before anything is allocated."""

from __future__ import annotations

import numpy as np

from nemap.fit.kinds import maker_for
from nemap.fit.options import FitOptions
from nemap.errors import NemapError


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
    """Peak host memory of a conversion, as the method's maker estimates it (bytes)."""
    return maker_for(options).memory_bytes(grid_shape, options, batch)


def check_memory(grid_shape: tuple[int, int, int], options: FitOptions, path: str | None = None) -> None:
    """Refuse, before allocating, a conversion that cannot fit in the memory at hand."""
    need = estimate_memory_bytes(grid_shape, options)
    have = available_memory_bytes()
    if have is not None and need > have:
        raise NemapError(
            f"a {grid_shape[0]}×{grid_shape[1]}×{grid_shape[2]} map needs about {need / 2**30:.1f} GiB to convert, "
            f"but only {have / 2**30:.1f} GiB is available", path=path, code="OUT_OF_MEMORY")
