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


def test_regions_saved_out_of_order_land_in_their_own_slots(tmp_path: Path) -> None:
    """A resumed fit takes each saved region for the region it was (here 5, 2, 7 of a 12-region map, saved in that
    order, with distinct weights), never by the order of the files or of the saves."""
    from fixtures.synthetic_maps import chain_map
    from nemap.fit.fit_map import MapFit
    from nemap.fit.options import options_for

    grid = chain_map((40, 30, 26), resolution=3.0, margin=0.0, atoms=200, seed=3)[0]
    options = options_for("siren-tiny", width=8, sine_layers=1, max_steps=1, max_region_size=16, device="cpu")
    folder = tmp_path / "out.nemap.resume"
    probe = MapFit(grid, options, resume=folder, resume_key=KEY)
    layers = options.layers()
    saved = {}
    for r in (5, 2, 7):
        w = [np.full((layer.out_features, layer.in_features), r + i / 10, np.float32) for i, layer in enumerate(layers)]
        b = [np.full(layer.out_features, -r, np.float32) for layer in layers]
        saved[r] = RegionFit(r, w, b, {"steps": 1, "stop_reason": "step-cap"})
        probe.record(saved[r])
    job = MapFit(grid, options, resume=folder, resume_key=KEY)
    assert sorted(job.plan.fits) == [2, 5, 7] and 5 not in job.plan.todo and 0 in job.plan.todo
    job.fit_here()
    content = job.content()
    for r, fit in saved.items():
        slot = int(content.regions.network_index[r])
        for layer_weights, want in zip(content.weights, fit.weights):
            np.testing.assert_array_equal(layer_weights[slot], want)


def test_a_resume_folder_of_another_source_map_is_not_used(tmp_path: Path) -> None:
    """The key names the source's SHA-256: regions fitted for map A are never taken for map B."""
    folder = tmp_path / "out.nemap.resume"
    ResumeStore(folder, {**KEY, "source_sha256": "a" * 64}).save(_fit(0))
    with pytest.warns(NemapWarning, match="different conversion"):
        assert ResumeStore(folder, {**KEY, "source_sha256": "b" * 64}).finished() == {}
