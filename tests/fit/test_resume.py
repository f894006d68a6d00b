"""The resume store: damaged entries are refitted, a second conversion to the same output is refused
before fitting, and a lock left by a conversion that is gone is taken over."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from nemap.errors import NemapError, NemapWarning
from nemap.fit.region import RegionFit
from nemap.fit.resume import LOCK, ResumeStore, remove_resume_folder

KEY = {"source_sha256": "0" * 64, "options": {"width": 8}}


def _fit(index: int) -> RegionFit:
    return RegionFit(index, [np.ones((8, 3), np.float32)], [np.zeros(8, np.float32)], {"steps": 3})


def test_saved_regions_come_back_and_a_damaged_one_is_refitted(tmp_path: Path) -> None:
    folder = tmp_path / "out.nemap.resume"
    store = ResumeStore(folder, KEY)
    store.save(_fit(0))
    store.save(_fit(1))
    data = (folder / "region_000001.npz").read_bytes()
    (folder / "region_000001.npz").write_bytes(data[: len(data) // 2])  # killed while copying, say
    with pytest.warns(NemapWarning, match="unreadable, fitting that region again"):
        back = ResumeStore(folder, KEY).finished()
    assert sorted(back) == [0] and not (folder / "region_000001.npz").exists()
    np.testing.assert_array_equal(back[0].weights[0], _fit(0).weights[0])


def test_another_live_conversion_holds_the_output(tmp_path: Path) -> None:
    folder = tmp_path / "out.nemap.resume"
    folder.mkdir()
    (folder / LOCK).write_text(str(os.getppid()))  # a live process that is not this one
    with pytest.raises(NemapError, match="another conversion") as ei:
        ResumeStore(folder, KEY)
    assert ei.value.code == "OUTPUT_BUSY" and (folder / LOCK).read_text() == str(os.getppid())


def test_a_stale_lock_is_taken_over_and_removed_with_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "out.nemap.resume"
    folder.mkdir()
    (folder / LOCK).write_text("999999999")  # no such process
    ResumeStore(folder, KEY).save(_fit(2))
    assert (folder / LOCK).read_text() == str(os.getpid())
    remove_resume_folder(folder)
    assert not folder.exists()


def test_a_folder_of_another_conversion_is_emptied_not_mixed(tmp_path: Path) -> None:
    folder = tmp_path / "out.nemap.resume"
    ResumeStore(folder, KEY).save(_fit(0))
    with pytest.warns(NemapWarning, match="different conversion"):
        store = ResumeStore(folder, {**KEY, "options": {"width": 16}})
    assert store.finished() == {}
