"""How much memory a conversion needs, and refusing one that cannot fit before anything is allocated."""

from __future__ import annotations

import os
from pathlib import Path

from nemap.errors import NemapError
from nemap.fit.kinds import maker_for
from nemap.fit.options import FitOptions


def available_memory_bytes() -> int | None:
    """The memory this process may still take (bytes; None where unknown): the least of the machine's
    MemAvailable, what its cgroup (v2 memory.max, v1 memory.limit_in_bytes) leaves, and what the address-space
    limit (ulimit -v) leaves — a container's limit is not in MemAvailable."""
    found = [v for v in (_meminfo(), _cgroup_left(), _address_space_left()) if v is not None]
    return min(found) if found else None


def _read_number(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cgroup_left() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, else v1); None without a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_number(limit_file), _read_number(usage_file)
        if limit is not None and limit < 2**60:
            return max(limit - (usage or 0), 0)
    return None


def _address_space_left() -> int | None:
    """RLIMIT_AS minus this process's virtual size (None without a limit)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft in (resource.RLIM_INFINITY, -1):
        return None
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return soft
    return max(soft - pages * os.sysconf("SC_PAGE_SIZE"), 0)


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
