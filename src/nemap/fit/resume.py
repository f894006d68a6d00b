"""The resume store: finished regions of an interrupted conversion, kept in a folder beside the output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nemap.fit.stack import RegionFit
from nemap.format.errors import warn
from nemap.format.files import replace_atomically


class ResumeStore:
    """Finished regions of an interrupted conversion, one .npz per region, in a folder beside the
    output. ``key`` identifies the conversion (source digest and options); a folder with another
    key is discarded."""

    def __init__(self, folder: Path, key: dict[str, Any]):
        self.folder = folder
        self.key = key
        state = folder / "state.json"
        if folder.is_dir():
            try:
                same = json.loads(state.read_text()) == key
            except (OSError, ValueError):
                same = False
            if not same:
                warn(f"{folder}: left by a different conversion; starting afresh")
                self.clear()
        folder.mkdir(parents=True, exist_ok=True)
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
            except (OSError, ValueError, KeyError):
                warn(f"{path}: unreadable, fitting that region again")
        return out

    def save(self, fit: RegionFit) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(fit.weights)} | {f"b{i}": b for i, b in enumerate(fit.biases)}
        replace_atomically(self.folder / f"region_{fit.index:06d}.npz", lambda tmp: np.savez(
            tmp, index=fit.index, layers=len(fit.weights), stats=json.dumps(fit.stats), **arrays))

    def clear(self) -> None:
        remove_resume_folder(self.folder)


def remove_resume_folder(folder: Path) -> None:
    """Delete a resume folder (after the output has been written)."""
    if folder.is_dir():
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
