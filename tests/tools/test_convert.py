"""MRC ⇄ .nemap conversion (nemap.tools.convert): round trips, resume, refusals."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import nemap
from nemap.errors import NemapError
from nemap.io.mrc import read_mrc
from nemap.tools.convert import mrc_to_nemap, nemap_to_mrc
from tests.conftest import quick


def test_round_trip_reproduces_the_voxels(small_map, fitted, tmp_path) -> None:
    back = tmp_path / "back.mrc"
    nemap_to_mrc(fitted, back)
    a, b = read_mrc(small_map), read_mrc(back)
    assert b.geometry.grid_shape == a.geometry.grid_shape
    np.testing.assert_allclose(b.geometry.origin, a.geometry.origin, atol=1e-5)
    np.testing.assert_allclose(b.geometry.voxel_size, a.geometry.voxel_size, rtol=1e-6)
    corr = np.corrcoef(a.values.ravel(), b.values.ravel())[0, 1]
    assert corr > 0.99
    with nemap.open(fitted, verify=True) as m:
        fid = m.provenance["fidelity"]["overall"]
        assert fid["correlation"] == pytest.approx(corr, abs=1e-4)  # the stored report is the real one
        assert len(m.provenance["fidelity"]["regions"]) == m.regions.count == 8
        assert m.resolution == 4.0
        assert m.provenance["source"]["filename"] == "small.mrc"
        assert len(m.source_mrc_header()) == 1024
        training = m.provenance["training"]
        assert training["options"]["max_steps"] == 300
        assert {r["stop_reason"] for r in training["regions"]} <= {"exit-loss", "natural-fit", "step-cap"}
        assert all(r["steps"] <= 300 and r["device"] == "cpu" and r["wall_time_s"] > 0 for r in training["regions"])
    with mrc_header_labels(back) as labels:
        assert any("small.mrc" in label and "nemap" in label for label in labels)


class mrc_header_labels:
    def __init__(self, path):
        import mrcfile

        self.m = mrcfile.open(path)

    def __enter__(self):
        return [lab.decode() if isinstance(lab,
                                           bytes) else str(lab) for lab in self.m.header.label[: self.m.header.nlabl]]

    def __exit__(self, *a):
        self.m.close()


def test_interrupted_conversion_resumes(small_map, tmp_path, caplog, monkeypatch) -> None:
    out = tmp_path / "r.nemap"
    opts = quick(max_region_size=12, max_steps=40)
    reference = tmp_path / "ref.nemap"
    mrc_to_nemap(small_map, reference, opts, progress=False)

    import nemap.fit.full_batch as enc

    real = enc.fit_regions
    calls = {"n": 0}

    def dying(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(enc, "fit_regions", dying)
    with pytest.raises(KeyboardInterrupt):
        mrc_to_nemap(small_map, out, opts, progress=False)
    assert not out.exists() and not list(tmp_path.glob("*partial*"))
    saved = sorted((tmp_path / "r.nemap.resume").glob("region_*.npz"))
    assert len(saved) == 3
    monkeypatch.setattr(enc, "fit_regions", real)
    fitted_again = []
    monkeypatch.setattr(enc, "fit_regions", lambda *a, **kw: (fitted_again.append(a[2]), real(*a, **kw)))
    with caplog.at_level(logging.INFO, logger="nemap"):
        mrc_to_nemap(small_map, out, opts, progress=False)
    assert "resuming: 3 of 8 regions were already fitted" in caplog.text
    assert sum(len(x) for x in fitted_again) == 5
    assert not (tmp_path / "r.nemap.resume").exists()
    with nemap.open(out) as a, nemap.open(reference) as b:
        for wa, wb in zip(a.weights, b.weights):
            np.testing.assert_array_equal(wa, wb)  # same seeds per region: identical to an uninterrupted run


def test_map_too_large_for_memory_is_refused_before_reading(small_map, tmp_path, monkeypatch) -> None:
    import nemap.fit.memory as enc

    monkeypatch.setattr(enc, "available_memory_bytes", lambda: 10 * 2**20)
    with pytest.raises(NemapError, match="GiB to convert, but only") as err:
        mrc_to_nemap(small_map, tmp_path / "x.nemap", quick(), progress=False)
    assert err.value.code == "OUT_OF_MEMORY"


def test_outputs_are_never_overwritten_and_need_a_directory(small_map, fitted, tmp_path) -> None:
    before = fitted.read_bytes()
    with pytest.raises(NemapError, match="exists; use force=True"):
        mrc_to_nemap(small_map, fitted, quick(), progress=False)
    assert fitted.read_bytes() == before
    with pytest.raises(NemapError, match="does not exist"):
        mrc_to_nemap(small_map, tmp_path / "no" / "x.nemap", quick(), progress=False)
    with pytest.raises(NemapError, match="does not exist"):
        nemap_to_mrc(fitted, tmp_path / "no" / "x.mrc")


def test_an_output_that_appears_during_the_fit_stops_it_early(small_map, tmp_path, monkeypatch) -> None:
    """Another program creates OUT while regions are being fitted: the conversion stops after the region
    it is on (not after the whole fit), names the file, and keeps the fitted regions for a re-run."""
    import nemap.fit.full_batch as full_batch

    out = tmp_path / "late.nemap"
    real, calls = full_batch.fit_regions, []

    def fit_then_collide(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            out.write_bytes(b"someone else's file")
        return real(*args, **kwargs)

    monkeypatch.setattr(full_batch, "fit_regions", fit_then_collide)
    with pytest.raises(NemapError, match="exists") as ei:
        mrc_to_nemap(small_map, out, quick(max_region_size=12, max_steps=5), progress=False)
    assert ei.value.code == "OUTPUT_EXISTS" and len(calls) == 2 < 8
    assert out.read_bytes() == b"someone else's file"
    assert len(list((tmp_path / "late.nemap.resume").glob("region_*.npz"))) == 2
