"""What this process may use of the machine it runs on (imports nothing of nemap, so that every layer may use it)."""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def map_on_cores(work: Callable[[Any], Any], items: Sequence[Any], minimum: int = 2) -> list[Any]:
    """``[work(item) for item in items]``, on one thread per core when there are at least ``minimum`` items (for
    work that releases the GIL: zlib, NumPy's gathers and products; never HDF5, which is not thread-safe)."""
    if len(items) < minimum or cores() < 2:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(len(items), cores())) as pool:
        return list(pool.map(work, items))


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as oneDNN sees it: then PyTorch's
    bfloat16 autocast is faster there, and slower than float32 elsewhere. False without torch."""
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (ImportError, AttributeError, RuntimeError):
        return False


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve every allocation from the heap and keep what is freed (``mallopt``:
    M_MMAP_MAX 0, M_TRIM_THRESHOLD 2 GiB), for a process that makes and frees many large arrays, as a network
    reading a map does: they are then not page-faulted afresh each time (a 256³ map's resolution estimate 15-25 %
    faster on a 2-core VM, the same peak memory). Freed memory stays with the process until it exits, so a
    command calls it, never the library. Whether it applied: False off glibc (macOS, musl, Windows)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
