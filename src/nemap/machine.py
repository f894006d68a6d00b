"""What this process may use of the machine it runs on (imports nothing of nemap, so that every layer may use it)."""

from __future__ import annotations

import os
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
