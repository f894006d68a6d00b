"""The resume store: finished regions of an interrupted conversion, kept in a folder beside the output."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nemap.errors import NemapError, warn
from nemap.files import replace_atomically
from nemap.fit.region import RegionFit


class ResumeStore:
    """Finished regions of an interrupted conversion, one .npz per region, in a folder beside the
    output. ``key`` identifies the conversion (source digest and options); a folder with another
    key is discarded."""

    def __init__(self, folder: Path, key: dict[str, Any]):
        self.folder = folder
        self.key = key
        state = folder / "state.json"
        folder.mkdir(parents=True, exist_ok=True)
        take_lock(folder)
        try:
            same = json.loads(state.read_text()) == key
        except (OSError, ValueError):
            same = not any(folder.glob("region_*.npz"))  # a new folder: nothing to discard
        if not same:
            warn(f"{folder}: left by a different conversion; starting afresh")
            for old in folder.glob("region_*.npz"):
                old.unlink()
        replace_atomically(state, lambda tmp: tmp.write_text(json.dumps(key, sort_keys=True)))

    def finished(self) -> dict[int, RegionFit]:
        out: dict[int, RegionFit] = {}
        for path in sorted(self.folder.glob("region_*.npz")):
            try:
                with np.load(path, allow_pickle=False) as z:
                    n = int(z["layers"])
                    fit = RegionFit(int(z["index"]), [z[f"w{i}"] for i in range(n)], [z[f"b{i}"] for i in range(n)],
                                    json.loads(str(z["stats"])))
                out[fit.index] = fit
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # a damaged entry: refit it
                warn(f"{path}: unreadable, fitting that region again")
                path.unlink(missing_ok=True)
        return out

    def save(self, fit: RegionFit) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(fit.weights)} | {f"b{i}": b for i, b in enumerate(fit.biases)}
        replace_atomically(self.folder / f"region_{fit.index:06d}.npz", lambda tmp: np.savez(
            tmp, index=fit.index, layers=len(fit.weights), stats=json.dumps(fit.stats), **arrays))

    def clear(self) -> None:
        remove_resume_folder(self.folder)


LOCK = "lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def take_lock(folder: Path) -> None:
    """Hold ``folder`` for this process: a lock file with our process id. A lock of a live other process
    means another conversion writes the same output: refused (OUTPUT_BUSY), before any fitting. A lock of a
    process that is gone (an interrupted conversion) is taken over."""
    lock = folder / LOCK
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise NemapError(f"another conversion (process {pid}) is writing this output; wait for it, or "
                                 f"remove {lock} if that process is not a conversion", path=folder,
                                 code="OUTPUT_BUSY") from None
            lock.unlink(missing_ok=True)  # stale, or ours from an earlier attempt in this process
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return
    raise NemapError("cannot take the resume folder's lock", path=folder, code="OUTPUT_BUSY")


def remove_resume_folder(folder: Path) -> None:
    """Delete a resume folder (after the output has been written)."""
    if folder.is_dir():
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
