"""MRC reading/writing: axis order, voxel size, origin conventions, errors, real EMDB maps."""

from __future__ import annotations

import io
import itertools
import json
import logging
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.synthetic_mrc import patch_int32, write_raw_mrc
from nemap.errors import FormatError, NemapError
from nemap.format.geometry import Geometry
from nemap.io.mrc import (
    ORIGIN_CONVENTIONS,
    mrc_info,
    read_mrc,
    read_mrc_header,
    write_mrc,
)

PERMUTATIONS = list(itertools.permutations((1, 2, 3)))


def xyz_array(shape=(4, 5, 6), dtype=np.float32) -> np.ndarray:
    """Distinct values that encode their own index: v[i, j, k] = 100 i + 10 j + k."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return (100 * i + 10 * j + k).astype(dtype)


def close(a, b, tol=1e-6):
    """Equal to tol Å, relative to the magnitude (the header stores float32)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.allclose(a, b, rtol=tol, atol=tol)


# ------------------------------------------------------------------------------------------
# 1. Synthetic files written with mrcfile directly
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis_order", PERMUTATIONS)
def test_axis_permutation_values_voxel_and_nstart(tmp_path, axis_order):
    v = xyz_array((4, 5, 6))
    voxel = (0.5, 1.25, 2.0)
    nstart = (-3, 7, 11)
    p = tmp_path / "perm.mrc"
    write_raw_mrc(p, v, voxel_size=voxel, axis_order=axis_order, nstart_xyz=nstart)
    with mrcfile.open(p) as m:  # the file really is stored in the permuted order
        assert (int(m.header.mapc), int(m.header.mapr), int(m.header.maps)) == axis_order
    g = read_mrc(p)
    assert g.values.dtype == np.float32
    assert g.values.shape == (4, 5, 6)
    np.testing.assert_array_equal(g.values, v)
    assert g.geometry.grid_shape == (4, 5, 6)
    assert close(g.geometry.voxel_size, voxel)
    assert close(g.geometry.origin, np.multiply(nstart, voxel))
    src = g.geometry.source
    assert src["axis_order"] == list(axis_order)
    assert src["origin_convention"] == "nstart"
    # NSTART stored in file (c, r, s) order: column c holds spatial axis mapc - 1
    assert src["nstart_crs"] == [nstart[a - 1] for a in axis_order]
    assert src["grid_shape_crs"] == [v.shape[a - 1] for a in axis_order]


@pytest.mark.parametrize("axis_order", PERMUTATIONS)
def test_every_convention_with_origin_and_nstart(tmp_path, axis_order, caplog):
    v = xyz_array((3, 4, 5))
    voxel = np.array([0.8, 1.1, 1.7])
    nstart = np.array([5, -2, 9])
    origin = np.array([10.5, -20.25, 3.0])
    p = tmp_path / "both.mrc"
    write_raw_mrc(p, v, voxel_size=voxel, axis_order=axis_order, nstart_xyz=nstart, origin=origin)
    expected = {
        "auto": origin,
        "origin": origin,
        "nstart": nstart * voxel,
        "sum": origin + nstart * voxel,
        "zero": np.zeros(3),
    }
    for conv in ORIGIN_CONVENTIONS:
        with caplog.at_level(logging.INFO, logger="nemap"):
            caplog.clear()
            g = read_mrc(p, conv)
        assert close(g.geometry.origin, expected[conv]), conv
        np.testing.assert_array_equal(g.values, v)
        used = g.geometry.source["origin_convention"]
        assert used == ("origin" if conv == "auto" else conv)
        assert g.geometry.source["origin_convention_requested"] == conv
        # ORIGIN and NSTART·Δ disagree: always warned about
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any("disagree" in r.getMessage() for r in warnings), conv
        assert any(r.levelno == logging.INFO and "origin" in r.getMessage() for r in caplog.records)


def test_auto_origin_only_and_nstart_only(tmp_path, caplog):
    v = xyz_array((3, 3, 3))
    p1, p2, p3 = tmp_path / "o.mrc", tmp_path / "n.mrc", tmp_path / "z.mrc"
    write_raw_mrc(p1, v, voxel_size=(1.5, 1.5, 1.5), origin=(15.0, -3.0, 7.5))
    write_raw_mrc(p2, v, voxel_size=(1.5, 1.5, 1.5), nstart_xyz=(10, -2, 5))
    write_raw_mrc(p3, v, voxel_size=(1.5, 1.5, 1.5))
    with caplog.at_level(logging.INFO, logger="nemap"):
        g1, g2, g3 = read_mrc(p1), read_mrc(p2), read_mrc(p3)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert close(g1.geometry.origin, (15.0, -3.0, 7.5)) and g1.geometry.source["origin_convention"] == "origin"
    assert close(g2.geometry.origin, (15.0, -3.0, 7.5)) and g2.geometry.source["origin_convention"] == "nstart"
    assert g3.geometry.origin == (0.0, 0.0, 0.0)
    # "nstart" on an ORIGIN-only file ignores ORIGIN; "origin" on an NSTART-only file ignores NSTART
    assert read_mrc(p1, "nstart").geometry.origin == (0.0, 0.0, 0.0)
    assert read_mrc(p2, "origin").geometry.origin == (0.0, 0.0, 0.0)
    # consistent ORIGIN and NSTART·Δ: no disagreement warning
    p4 = tmp_path / "same.mrc"
    write_raw_mrc(p4, v, voxel_size=(1.5, 1.5, 1.5), nstart_xyz=(10, -2, 5), origin=(15.0, -3.0, 7.5))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nemap"):
        assert close(read_mrc(p4).geometry.origin, (15.0, -3.0, 7.5))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_voxel_size_uses_mxyz_not_n(tmp_path):
    v = xyz_array((4, 5, 6))
    # a crop of a 40×50×30 cell with 0.5, 1, 2 Å voxels: CELLA = (20, 50, 60)
    p = tmp_path / "crop.mrc"
    write_raw_mrc(p, v, voxel_size=(0.5, 1.0, 2.0), mxyz=(40, 50, 30), axis_order=(2, 3, 1), nstart_xyz=(4, 0, -6))
    g = read_mrc(p)
    assert close(g.geometry.voxel_size, (0.5, 1.0, 2.0))  # CELLA/N would be (5, 10, 10)
    assert close(g.geometry.origin, (2.0, 0.0, -12.0))
    assert g.geometry.source["mxyz"] == [40, 50, 30]
    assert close(g.geometry.source["cella"], (20.0, 50.0, 60.0))


def test_ccp4_suffix_with_origin_warns(tmp_path, caplog):
    v = xyz_array((2, 2, 2))
    p = tmp_path / "x.map"
    write_raw_mrc(p, v, origin=(1.0, 2.0, 3.0))
    with caplog.at_level(logging.INFO, logger="nemap"):
        g = read_mrc(p)
    assert g.geometry.origin == (1.0, 2.0, 3.0)  # auto = ChimeraX .mrc rule for every suffix
    assert any(r.levelno == logging.WARNING and "ignore ORIGIN" in r.getMessage() for r in caplog.records)


def test_invalid_origin_and_uninitialised_nstart(tmp_path, caplog):
    v = xyz_array((2, 3, 4))
    p = tmp_path / "nan.mrc"
    write_raw_mrc(p, v, nstart_xyz=(1, 2, 3), origin=(np.nan, 0.0, 0.0))
    with caplog.at_level(logging.WARNING, logger="nemap"):
        g = read_mrc(p)
    assert g.geometry.origin == (1.0, 2.0, 3.0) and g.geometry.source["origin_convention"] == "nstart"
    assert any("not usable" in r.getMessage() for r in caplog.records)
    with pytest.raises(FormatError, match="ORIGIN"):
        read_mrc(p, "origin")
    p2 = tmp_path / "huge.mrc"  # RELION 2.0-style garbage: x + Δ == x
    write_raw_mrc(p2, v, origin=(1e30, 0.0, 0.0))
    assert read_mrc(p2).geometry.origin == (0.0, 0.0, 0.0)
    p3 = tmp_path / "bad_nstart.mrc"  # |NSTART| > 10·max(M, N): uninitialised, as in ChimeraX
    write_raw_mrc(p3, v, nstart_xyz=(0, 100000, 0))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nemap"):
        assert read_mrc(p3).geometry.origin == (0.0, 0.0, 0.0)
    assert any("uninitialised" in r.getMessage() for r in caplog.records)


def test_header_only_and_info_match_read(tmp_path):
    v = xyz_array((3, 4, 5))
    p = tmp_path / "h.mrc"
    write_raw_mrc(p, v, voxel_size=(1.0, 2.0, 3.0), axis_order=(3, 1, 2), nstart_xyz=(1, 2, 3))
    g = read_mrc(p)
    h = read_mrc_header(p)
    assert isinstance(h, Geometry)
    assert h == g.geometry and h.source == g.geometry.source
    json.dumps(h.source)  # JSON-serialisable
    for key in ("format", "filename", "mode", "axis_order", "grid_shape_crs", "nstart_crs", "mxyz", "cella",
                "cellb", "header_origin", "ispg", "origin_convention", "origin_convention_requested", "labels"):
        assert key in h.source, key
    assert h.source["filename"] == "h.mrc" and h.source["format"] == "mrc"
    info = mrc_info(p)
    json.dumps(info)
    assert info["grid_shape"] == [3, 4, 5]
    assert close(info["voxel_size"], (1.0, 2.0, 3.0))
    assert close(info["origin"], (1.0, 4.0, 9.0))
    assert info["axis_order"] == [3, 1, 2] and info["mode"] == 2
    assert info["nstart_crs"] == [3, 1, 2]
    assert info["origin_convention"] == "nstart"
    assert info["header_origin"] == [0.0, 0.0, 0.0]
    assert info["labels"] and info["labels"][0].startswith("Created by mrcfile")
    assert info["dmin"] == pytest.approx(float(v.min())) and info["dmax"] == pytest.approx(float(v.max()))
    assert info["dmean"] == pytest.approx(float(v.mean()), rel=1e-5)
    assert info["rms"] == pytest.approx(float(v.std()), rel=1e-5)
    assert read_mrc_header(p, "zero").origin == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        read_mrc(p, "none")


@pytest.mark.parametrize(
    "dtype, mode",
    [(np.int8, 0), (np.int16, 1), (np.float32, 2), (np.uint16, 6), (np.float16, 12), (">f4", 2)],
)
def test_modes_read_as_float32(tmp_path, dtype, mode):
    v = xyz_array((3, 4, 5), dtype=np.int64) % 120
    v = v.astype(dtype)
    p = tmp_path / f"mode{mode}.mrc"
    write_raw_mrc(p, v, axis_order=(2, 1, 3))
    with mrcfile.open(p, header_only=True) as m:
        assert int(m.header.mode) == mode
    g = read_mrc(p)
    assert g.values.dtype == np.float32
    np.testing.assert_array_equal(g.values, v.astype(np.float32))
    assert mrc_info(p)["mode"] == mode


# ------------------------------------------------------------------------------------------
# 2. Errors
# ------------------------------------------------------------------------------------------


def _mrc_with_mode(tmp_path, mode):
    p = tmp_path / f"mode{mode}.mrc"
    write_raw_mrc(p, xyz_array((2, 3, 4)))
    patch_int32(p, 4, mode)
    return p


def test_mode_4_rejected(tmp_path):
    p = tmp_path / "complex.mrc"
    with mrcfile.new(p) as m:
        m.set_data(np.zeros((2, 3, 4), dtype=np.complex64))
    with pytest.raises(FormatError) as ei:
        read_mrc(p)
    assert "unsupported MRC mode 4 (complex); nemap reads modes 0, 1, 2, 6 and 12" in str(ei.value)
    assert "complex.mrc" in str(ei.value) and ei.value.path == str(p)
    with pytest.raises(FormatError, match="mode 4"):
        read_mrc_header(p)


@pytest.mark.parametrize("mode", [3, 101, 7, -1])
def test_other_modes_rejected(tmp_path, mode):
    p = _mrc_with_mode(tmp_path, mode)
    with pytest.raises(FormatError, match=f"unsupported MRC mode {mode} "):
        read_mrc(p)


@pytest.mark.parametrize(
    "setup, match",
    [
        (lambda p: p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()),
         "not an MRC map"),
        (lambda p: p.write_text("this is a text file\n" * 100), "not an MRC map"),
        (lambda p: p.write_bytes(b"MAP " * 10), "too short"),
        (lambda p: p.write_bytes(b""), "too short"),
    ],
    ids=["random-bytes", "text", "short", "empty"],
)
def test_not_an_mrc(tmp_path, setup, match):
    p = tmp_path / "garbage_file.mrc"
    setup(p)
    for fn in (read_mrc, read_mrc_header, mrc_info):
        with pytest.raises(FormatError, match=match) as ei:
            fn(p)
        assert "garbage_file.mrc" in str(ei.value)
        assert "\n" not in str(ei.value)


def test_truncated_file(tmp_path):
    p = tmp_path / "cut_short.mrc"
    write_raw_mrc(p, xyz_array((4, 5, 6)))
    data = p.read_bytes()
    p.write_bytes(data[:-7])
    read_mrc_header(p)  # the header alone is fine
    with pytest.raises(FormatError, match="truncated") as ei:
        read_mrc(p)
    assert "cut_short.mrc" in str(ei.value) and ei.value.code == "MRC_TRUNCATED"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FormatError, match="no such file") as ei:
        read_mrc(tmp_path / "nothere.mrc")
    assert "nothere.mrc" in str(ei.value)
    with pytest.raises(FormatError):
        read_mrc(tmp_path)


@pytest.mark.parametrize(
    "kwargs, patch, match",
    [
        ({}, (17, 3), "invalid axis order"),  # MAPC, MAPR, MAPS = 3, 2, 3
        ({}, (8, 0), r"voxel size unknown: CELLA/MX is 2/0"),
        ({"cellb": (90.0, 100.0, 90.0)}, None, "non-orthogonal"),
        ({"ispg": 401}, None, "volume stack"),
    ],
    ids=["mapc", "mx0", "angles", "volume-stack"],
)
def test_bad_headers(tmp_path, kwargs, patch, match):
    p = tmp_path / "bad.mrc"
    write_raw_mrc(p, xyz_array((2, 3, 4)), **kwargs)
    if patch is not None:
        patch_int32(p, *patch)
    with pytest.raises(FormatError, match=match) as ei:
        read_mrc_header(p)
    assert "bad.mrc" in str(ei.value)


def test_zero_cella_and_ignore_cell_angles(tmp_path):
    p = tmp_path / "cell0.mrc"
    write_raw_mrc(p, xyz_array((2, 3, 4)), voxel_size=(0.0, 1.0, 1.0))
    with pytest.raises(FormatError, match="voxel size unknown"):
        read_mrc(p)
    p2 = tmp_path / "skew.mrc"
    write_raw_mrc(p2, xyz_array((2, 3, 4)), cellb=(90.0, 100.0, 90.0))
    g = read_mrc(p2, ignore_cell_angles=True)
    assert g.geometry.source["cell_angles_ignored"] is True and g.geometry.voxel_size == (1.0, 1.0, 1.0)


# ------------------------------------------------------------------------------------------
# 2b. write_mrc
# ------------------------------------------------------------------------------------------


def _header(path):
    with mrcfile.open(path, header_only=True) as m:
        h = m.header
        return {
            "mode": int(h.mode),
            "axes": (int(h.mapc), int(h.mapr), int(h.maps)),
            "n": (int(h.nx), int(h.ny), int(h.nz)),
            "m": (int(h.mx), int(h.my), int(h.mz)),
            "cella": (float(h.cella.x), float(h.cella.y), float(h.cella.z)),
            "cellb": (float(h.cellb.alpha), float(h.cellb.beta), float(h.cellb.gamma)),
            "nstart": (int(h.nxstart), int(h.nystart), int(h.nzstart)),
            "origin": (float(h.origin.x), float(h.origin.y), float(h.origin.z)),
            "ispg": int(h.ispg),
            "nversion": int(h.nversion),
            "labels": [lbl for lbl in m.get_labels()],
        }


def test_write_integer_offset_uses_nstart(tmp_path):
    rng = np.random.default_rng(1)
    v = rng.normal(size=(5, 6, 7)).astype(np.float32)
    geom = Geometry((5, 6, 7), (1.25, 0.5, 2.0), (-12.5, 3.0, 40.0))
    p = tmp_path / "int.mrc"
    write_mrc(p, v, geom, label="made by nemap test")
    h = _header(p)
    assert h["mode"] == 2 and h["axes"] == (1, 2, 3) and h["n"] == (5, 6, 7) and h["m"] == (5, 6, 7)
    assert close(h["cella"], (6.25, 3.0, 14.0)) and h["cellb"] == (90.0, 90.0, 90.0)
    assert h["nstart"] == (-10, 6, 20) and h["origin"] == (0.0, 0.0, 0.0)
    assert h["ispg"] == 1 and h["nversion"] == 20141
    assert h["labels"] == ["made by nemap test"]
    assert mrcfile.validate(str(p), print_file=io.StringIO())  # stats, version, labels all valid
    g = read_mrc(p)
    np.testing.assert_array_equal(g.values, v)
    assert close(g.geometry.voxel_size, geom.voxel_size) and close(g.geometry.origin, geom.origin)
    assert g.geometry.source["origin_convention"] == "nstart"
    assert not list(tmp_path.glob("*partial*"))


def test_write_fractional_offset_uses_origin(tmp_path):
    v = xyz_array((3, 4, 5)).astype(np.float64)  # float64 in, float32 out
    geom = Geometry((3, 4, 5), (1.05, 1.05, 1.05), (162.3, -0.5, 7.0))
    p = tmp_path / "frac.mrc"
    write_mrc(p, v, geom, label="é" * 5 + "x" * 200)
    h = _header(p)
    assert h["nstart"] == (0, 0, 0) and close(h["origin"], (162.3, -0.5, 7.0))
    assert len(h["labels"]) == 1 and len(h["labels"][0]) == 80 and h["labels"][0].isascii()
    assert mrcfile.validate(str(p), print_file=io.StringIO())
    g = read_mrc(p)
    np.testing.assert_array_equal(g.values, v.astype(np.float32))
    assert close(g.geometry.voxel_size, geom.voxel_size) and close(g.geometry.origin, geom.origin)
    assert g.geometry.source["origin_convention"] == "origin"


def test_write_nearly_whole_offset_keeps_the_origin(tmp_path):
    # 41.6875 / 1.158016… = 35.99906 voxels: rounding it into NSTART would move the map by 1.1e-3 Å
    # (found by hypothesis); only offsets within 1e-6 voxel of a whole number go to NSTART
    geom = Geometry((1, 1, 4), (1.158016562461853, 1.0, 1.0), (41.6875, 0.0, 0.0))
    p = tmp_path / "near.mrc"
    write_mrc(p, xyz_array((1, 1, 4)), geom)
    h = _header(p)
    assert h["nstart"] == (0, 0, 0) and close(h["origin"], (41.6875, 0.0, 0.0))
    assert np.allclose(read_mrc(p).geometry.origin, geom.origin, rtol=0, atol=1e-5)


def test_write_large_whole_offset_uses_origin(tmp_path):
    # NSTART 1000 on a 4-voxel box would look "uninitialised" to ChimeraX (|s| > 10·max(M, N))
    geom = Geometry((4, 4, 4), (1.0, 1.0, 1.0), (1000.0, 0.0, 0.0))
    p = tmp_path / "far.mrc"
    write_mrc(p, np.zeros((4, 4, 4), np.float32), geom)
    h = _header(p)
    assert h["nstart"] == (0, 0, 0) and h["origin"] == (1000.0, 0.0, 0.0)
    assert read_mrc(p).geometry.origin == (1000.0, 0.0, 0.0)


def test_write_refuses_overwrite_and_missing_dir(tmp_path):
    geom = Geometry((2, 2, 2), (1.0, 1.0, 1.0))
    v = np.ones((2, 2, 2), np.float32)
    p = tmp_path / "out.mrc"
    p.write_bytes(b"precious")
    with pytest.raises(NemapError, match="exists; use force=True to overwrite") as ei:
        write_mrc(p, v, geom)
    assert "out.mrc" in str(ei.value)
    assert p.read_bytes() == b"precious"
    write_mrc(p, v, geom, force=True)
    np.testing.assert_array_equal(read_mrc(p).values, v)
    with pytest.raises(NemapError, match="does not exist"):
        write_mrc(tmp_path / "no" / "such" / "dir.mrc", v, geom)
    with pytest.raises(ValueError):
        write_mrc(tmp_path / "shape.mrc", np.ones((2, 2, 3), np.float32), geom)


def test_write_failure_leaves_nothing(tmp_path, monkeypatch):
    import nemap.io.mrc as mod

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mod.os, "replace", boom)
    with pytest.raises(NemapError, match="No space left"):
        write_mrc(tmp_path / "x.mrc", np.ones((2, 2, 2), np.float32), Geometry((2, 2, 2), (1.0, 1.0, 1.0)))
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.tuples(*(st.integers(1, 6),) * 3),
    voxel=st.tuples(*(st.floats(0.2, 5.0),) * 3),
    origin=st.tuples(*(st.floats(-500.0, 500.0),) * 3),
    nstart=st.tuples(*(st.integers(-60, 60),) * 3),
    axis_order=st.sampled_from(PERMUTATIONS),
    use_origin=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_read_any_axis_order(tmp_path, shape, voxel, origin, nstart, axis_order, use_origin, seed):
    v = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    p = tmp_path / "prop.mrc"
    # |NSTART| > 10·max(M, N) counts as uninitialised (ChimeraX rule; tested above): stay below it
    nstart = tuple(int(n) for n in np.clip(nstart, -10 * max(shape), 10 * max(shape)))
    origin32 = np.asarray(origin, dtype=np.float32).astype(np.float64)  # what the header can hold
    if use_origin:
        write_raw_mrc(p, v, voxel_size=voxel, axis_order=axis_order, origin=origin32)
        expected = origin32
    else:
        write_raw_mrc(p, v, voxel_size=voxel, axis_order=axis_order, nstart_xyz=nstart)
        expected = np.multiply(nstart, voxel)
    g = read_mrc(p)
    np.testing.assert_array_equal(g.values, v)
    assert g.geometry.grid_shape == shape
    assert close(g.geometry.voxel_size, voxel)
    assert np.allclose(g.geometry.origin, expected, rtol=1e-6, atol=1e-5)
    # and back out through write_mrc: axis order 1,2,3, same geometry and values
    q = tmp_path / "prop_out.mrc"
    write_mrc(q, g.values, g.geometry, force=True)
    g2 = read_mrc(q)
    np.testing.assert_array_equal(g2.values, v)
    assert close(g2.geometry.voxel_size, g.geometry.voxel_size)
    assert np.allclose(g2.geometry.origin, g.geometry.origin, rtol=1e-6, atol=1e-5)


# ------------------------------------------------------------------------------------------
# 3. Real EMDB data (skipped without ../shared/data)
# ------------------------------------------------------------------------------------------


def _verification(shared: Path, folder: str, mapfile: str) -> dict:
    for entry in json.loads((shared / folder / "verification.json").read_text()):
        if entry["map"]["file"] == mapfile:
            return entry
    raise KeyError(mapfile)


def _atoms(path: Path) -> np.ndarray:
    gemmi = pytest.importorskip("gemmi")
    st_ = gemmi.read_structure(str(path))
    return np.array([cra.atom.pos.tolist() for cra in st_[0].all()], dtype=np.float64)


def _trilinear(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of values[x, y, z] at continuous indices q (N, 3), inside the box."""
    n = np.array(values.shape)
    i0 = np.clip(np.floor(q).astype(np.int64), 0, np.maximum(n - 2, 0))
    f = q - i0
    out = np.zeros(len(q))
    for corner in itertools.product((0, 1), repeat=3):
        idx = np.minimum(i0 + corner, n - 1)
        w = np.prod(np.where(corner, f, 1.0 - f), axis=1)
        out += w * values[idx[:, 0], idx[:, 1], idx[:, 2]]
    return out


def _placement(grid, atoms: np.ndarray) -> tuple[float, float]:
    """(fraction of atoms inside the box, z-score of the mean trilinear density at them)."""
    inside = grid.geometry.contains(atoms)
    if not inside.any():
        return 0.0, float("nan")
    vals = grid.values.astype(np.float64)
    at = _trilinear(vals, grid.geometry.to_index(atoms[inside]))
    return float(inside.mean()), float((at.mean() - vals.mean()) / vals.std())


SPIKE = "emd21457_spike_ntd_segment"


def test_emd21457_three_headers_same_density(shared_data):
    d = shared_data / SPIKE
    g_orig = read_mrc(d / "emd_21457_seg.mrc")
    g_nst = read_mrc(d / "emd_21457_seg_nstart.mrc")
    g_zero = read_mrc(d / "emd_21457_seg_orig0.mrc")
    assert g_orig.geometry.source["origin_convention"] == "origin"
    assert g_nst.geometry.source["origin_convention"] == "nstart"
    assert g_nst.geometry.source["nstart_crs"] == [155, 220, 195]
    for g in (g_orig, g_nst, g_zero):
        assert g.geometry.grid_shape == (48, 40, 47)
        assert np.allclose(g.geometry.voxel_size, 1.05, atol=1e-6)
    assert np.allclose(g_orig.geometry.origin, (162.75, 231.0, 204.75), atol=1e-4)
    assert np.allclose(g_nst.geometry.origin, g_orig.geometry.origin, atol=1e-4)
    assert g_zero.geometry.origin == (0.0, 0.0, 0.0)
    # identical values at identical Å positions (same index -> same position -> same value)
    np.testing.assert_array_equal(g_orig.values, g_nst.values)
    np.testing.assert_array_equal(g_orig.values, g_zero.values)
    pts = g_orig.geometry.to_physical(np.array([[0, 0, 0], [47, 39, 46], [20, 13, 31]]))
    idx = np.rint(g_nst.geometry.to_index(pts)).astype(int)
    assert np.array_equal(idx, [[0, 0, 0], [47, 39, 46], [20, 13, 31]])


@pytest.mark.parametrize(
    "mapfile, model",
    [
        ("emd_21457_seg.mrc", "6vyb_Ndom.pdb"),
        ("emd_21457_seg_nstart.mrc", "6vyb_Ndom.pdb"),
        ("emd_21457_seg_orig0.mrc", "6vyb_Ndom_shifted.pdb"),
    ],
)
def test_emd21457_model_sits_on_density(shared_data, mapfile, model):
    frac, z = _placement(read_mrc(shared_data / SPIKE / mapfile), _atoms(shared_data / SPIKE / model))
    ref = _verification(shared_data, SPIKE, mapfile)["models"][0]["placement"]["origin+nstart"]
    assert frac == pytest.approx(ref["frac_inside"], abs=0.01)
    assert z > 1.0
    assert z == pytest.approx(ref["z_mean_at_atoms"], abs=0.01)


MAPS_WITH_MODELS = [
    ("emd6272_rotavirus_vp6", "6272_zone4A.mrc", "pdb3j9s.ent"),
    ("emd5778_trpv1_chainA", "5578_ChainA.mrc", "pdb3j5p.pdb"),
    ("emd0093_hcn4", "emd_0093_m4A_chainA_crop.mrc", "6gyn_in_chainA_crop.pdb"),
    ("emd21457_spike_ntd_segment", "emd_21457_seg.mrc", "6vyb_Ndom.pdb"),
]


@pytest.mark.parametrize("folder, mapfile, model", MAPS_WITH_MODELS, ids=[m[1] for m in MAPS_WITH_MODELS])
def test_shared_maps_place_model_on_density(shared_data, folder, mapfile, model):
    """Every convention reproduces verification.json's independent numbers for its placement."""
    ver = _verification(shared_data, folder, mapfile)
    ref = next(m for m in ver["models"] if m["model"] == model)["placement"]
    atoms = _atoms(shared_data / folder / model)
    grid = read_mrc(shared_data / folder / mapfile)
    assert grid.geometry.grid_shape == tuple(ver["map"]["shape_xyz"])
    assert np.allclose(grid.geometry.voxel_size, ver["map"]["voxel"], atol=1e-4)
    frac, z = _placement(grid, atoms)
    # the verified placement (x = ORIGIN + (NSTART + i)·Δ; at most one of them set here)
    assert frac == pytest.approx(ref["origin+nstart"]["frac_inside"], abs=0.01)
    assert z == pytest.approx(ref["origin+nstart"]["z_mean_at_atoms"], abs=0.01)
    assert z > 1.0  # the weakest map (EMD-21457 NTD segment) is at +1.38σ in verification.json
    # the explicit conventions agree with verification.json's alternative placements
    for conv, key in (("sum", "origin+nstart"), ("nstart", "nstart_only"), ("origin", "origin_only")):
        g = read_mrc_header(shared_data / folder / mapfile, conv)
        f2, z2 = _placement(type(grid)(grid.values, g), atoms)
        assert f2 == pytest.approx(ref[key]["frac_inside"], abs=0.01), conv
        if ref[key]["frac_inside"] > 0:
            assert z2 == pytest.approx(ref[key]["z_mean_at_atoms"], abs=0.01), conv


EMD3001 = "emd3001_microed_nacore_maponly"


def test_emd3001_axis_order_312_anisotropic_nstart(shared_data):
    path = shared_data / EMD3001 / "EMD-3001.map"
    ver = _verification(shared_data, EMD3001, "EMD-3001.map")["map"]
    # Its cell is monoclinic (beta = 94.326°, P21): nemap refuses non-orthogonal cells by default.
    with pytest.raises(FormatError, match="non-orthogonal"):
        read_mrc(path)
    g = read_mrc(path, ignore_cell_angles=True)
    assert ver["axis_crs"] == [3, 1, 2] and ver["nstart_crs"] == [0, -21, -12]
    assert g.geometry.grid_shape == (43, 25, 73) == tuple(ver["shape_xyz"])
    step = np.array([17.93 / 40, 4.71 / 12, 33.03 / 72])
    assert np.allclose(g.geometry.voxel_size, step, rtol=1e-5)
    # mapc=3: columns run along z; mapr=1: rows along x; maps=2: sections along y.
    # NSTART (c, r, s) = (0, -21, -12)  ->  (x, y, z) = (r, s, c) = (-21, -12, 0).
    assert np.allclose(g.geometry.origin, np.array([-21, -12, 0]) * step, rtol=1e-5)
    assert np.allclose(g.geometry.origin, (-9.41325, -4.71, 0.0), atol=1e-4)
    # values[i, j, k] (x, y, z) == mrcfile's data[s, r, c] = data[j, i, k]
    with mrcfile.open(path) as m:
        raw = np.array(m.data)
    np.testing.assert_array_equal(g.values, raw.transpose(1, 0, 2))
    assert float(g.values.min()) == pytest.approx(ver["min"], abs=1e-4)
    # independent check: gemmi's axis reordering gives the same x, y, z array
    gemmi = pytest.importorskip("gemmi")
    cmap = gemmi.read_ccp4_map(str(path))
    cmap.setup(float("nan"), gemmi.MapSetup.ReorderOnly)
    np.testing.assert_array_equal(np.array(cmap.grid, copy=False), g.values)
    info = mrc_info(path, ignore_cell_angles=True)
    assert info["axis_order"] == [3, 1, 2] and info["cellb"][1] == pytest.approx(94.326, abs=1e-3)


def test_gzipped_map_header(shared_data):
    info = mrc_info(shared_data / "emd0093_hcn4" / "MAP_m4A.mrc.gz")  # header only: fast
    assert info["grid_shape"] == [220, 220, 220] and info["origin"] == [0.0, 0.0, 0.0]
    assert np.allclose(info["voxel_size"], 1.34, atol=1e-6)
    assert info["filename"] == "MAP_m4A.mrc.gz"


def test_shared_map_roundtrip_through_write(shared_data, tmp_path):
    g = read_mrc(shared_data / SPIKE / "emd_21457_seg.mrc")
    out = tmp_path / "seg_copy.mrc"
    write_mrc(out, g.values, g.geometry, label="nemap round-trip test")
    g2 = read_mrc(out)
    np.testing.assert_array_equal(g2.values, g.values)
    assert np.allclose(g2.geometry.origin, g.geometry.origin, atol=1e-4)
    assert np.allclose(g2.geometry.voxel_size, g.geometry.voxel_size, rtol=1e-6)
    # 162.75/1.05 etc. are whole voxels (to float32 precision): written as NSTART, ORIGIN 0
    assert _header(out)["nstart"] == (155, 220, 195) and _header(out)["origin"] == (0.0, 0.0, 0.0)


def test_machine_stamp_that_disagrees_with_the_data_is_read_with_a_warning(tmp_path):
    """MACHST says big-endian, the header and data are little-endian: read as the data says, warned."""
    from nemap.errors import NemapWarning

    path = tmp_path / "stamp.mrc"
    values = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
    write_raw_mrc(path, values)
    with open(path, "r+b") as fh:
        fh.seek(212)
        fh.write(bytes([0x11, 0x11, 0, 0]))
    with pytest.warns(NemapWarning, match="MACHST says big-endian"):
        grid = read_mrc(path)
    np.testing.assert_array_equal(grid.values, values)


def test_nsymbt_beyond_the_file_is_refused_before_reading(tmp_path):
    import struct

    path = tmp_path / "ext.mrc"
    write_raw_mrc(path, np.zeros((4, 4, 4), np.float32))
    with open(path, "r+b") as fh:
        fh.seek(92)
        fh.write(struct.pack("<i", 2**31 - 1))
    with pytest.raises(FormatError, match="extended header") as ei:
        read_mrc_header(path)
    assert ei.value.code == "MRC_TRUNCATED"


def test_a_quiet_header_read_logs_nothing_and_gives_the_same_geometry(tmp_path, caplog):
    path = tmp_path / "m.mrc"
    write_raw_mrc(path, xyz_array((6, 5, 4)), nstart_xyz=(2, 0, 0), cellb=(90.0, 95.0, 90.0))
    with caplog.at_level(logging.INFO, logger="nemap"):
        loud = read_mrc_header(path, ignore_cell_angles=True)
        assert any("cell angles" in r.getMessage() for r in caplog.records)
        caplog.clear()
        assert read_mrc_header(path, ignore_cell_angles=True, quiet=True) == loud
        assert caplog.records == []
        read_mrc(path, ignore_cell_angles=True)
        assert any("origin" in r.getMessage() for r in caplog.records)  # the level is restored
