"""nemap.machine: what a process may use of its machine."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

FAULTS = '''
import resource, sys
import numpy as np
from nemap.machine import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "kept" else False
def touch():
    a = np.ones(64 << 17)  # 64 MiB, written, then freed
    del a
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    touch()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_kept_freed_memory_is_not_page_faulted_again() -> None:
    """After keep_freed_memory, a large array made and freed again and again is served from the heap the process
    already holds: no page faults after the first (in a child process: the setting is the process's)."""
    found = {}
    for mode in ("default", "kept"):
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
        applied, faults = out.stdout.split()
        found[mode] = (applied == "True", int(faults))
    assert found["kept"][0] and not found["default"][0]
    assert found["default"][1] > 100 and found["kept"][1] < 10
