"""What this process may use of the machine it runs on (imports nothing of nemap, so that every layer may use it)."""

from __future__ import annotations

import os


def cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
