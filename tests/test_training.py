"""The training scripts of the shipped estimators run (at toy size) and are reproducible from their seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_training_data_is_reproducible_and_labelled(shared_data) -> None:
    from training import resolution_data as rd

    a, b = rd.build(3, 7, "train"), rd.build(3, 7, "train")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert set(rd.TRAIN_MODELS).isdisjoint(rd.TEST_MODELS)
    local = a["local"].astype(np.float32)
    assert local.min() >= rd.LOW - 1e-2 and local.max() <= rd.HIGH * 1.3 + 0.1
    for i in range(3):
        inside = local[i][a["masks"][i]] if a["masks"][i].any() else local[i]
        assert abs(a["global"][i] - np.median(inside)) < 1e-2
        m = a["maps"][i].astype(np.float32)
        assert abs(m.mean()) < 1e-2 and abs(m.std() - 1) < 1e-2
    assert set(a) >= {"noise_kind", "mask_kind", "voxel", "base", "snr", "bfactor"}


def test_training_data_covers_every_noise_mask_and_voxel_kind_and_sample_i_depends_only_on_its_seed(
        shared_data) -> None:
    from training import resolution_data as rd

    many = rd.build(60, 11, "train")
    assert set(many["noise_kind"]) == set(range(len(rd.NOISE_KINDS)))
    assert set(many["mask_kind"]) == set(range(len(rd.MASK_KINDS)))
    assert many["voxel"].max() > 1.0 and many["bfactor"].min() < 0 < many["bfactor"].max()
    clean = many["noise_kind"] == rd.NOISE_KINDS.index("clean")
    assert np.all(np.isinf(many["snr"][clean])) and np.all(np.isfinite(many["snr"][~clean]))
    few = rd.build(5, 11, "train")  # another chunking of the same seeds: the same samples
    np.testing.assert_array_equal(few["maps"], many["maps"][:5])


@pytest.mark.parametrize("model", ["local", "cnn3d"])
def test_training_runs_and_writes_a_recorded_weight_file(model: str, tmp_path, shared_data) -> None:
    import h5py

    def run(*args: str) -> None:
        r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO)
        assert r.returncode == 0, r.stderr[-2000:]

    run("training.resolution_data", "--out", str(tmp_path), "--count", "6", "--split", "train")
    run("training.resolution_data", "--out", str(tmp_path), "--count", "4", "--split", "test", "--seed", "1")
    run("training.train_resolution", "--data", str(tmp_path), "--model", model, "--minutes", "0.02",
        "--out", str(tmp_path / "w.h5"), "--calibration-count", "8")
    with h5py.File(tmp_path / "w.h5", "r") as f:
        recipe = json.loads(f.attrs["recipe"])
        assert f.attrs["model"] == model and len(f.attrs["sha256"]) == 64
    assert recipe["data"]["train"]["count"] == 6 and recipe["test"]["maps"] == 4 and recipe["steps"] >= 1
    assert len(recipe["data_sha256"]["train"]) == 64
    assert recipe["interval"]["calibration"]["count"] == 8 and 0 <= recipe["test"]["interval_coverage"] <= 1
    assert set(recipe["test"]["by"]) >= {"noise", "mask", "band"}
