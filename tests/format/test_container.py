"""The .nemap container: round trips, strict reading, and every malformed-file class."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import jsonschema
import numpy as np
import pytest

import nemap
from fixtures.conformance.generate import INVALID, SUITE
from fixtures.random_nemap import random_content  # noqa: E402
from nemap.conformance.harness import load_suite
from nemap.errors import FormatError, NemapError
from nemap.format import hdf5, limits
from nemap.format.validate import validate

SPEC = Path(__file__).resolve().parents[2] / "spec" / "0.1"


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.nemap"
    nemap.write(path, random_content(constant_regions=(1,)))
    return path


def edit_header(path: Path, change) -> None:
    """Rewrite /header after ``change(header_dict)`` (for making defective files)."""
    with h5py.File(path, "r+") as f:
        header = json.loads(f["header"][()].decode())
        change(header)
        del f["header"]
        f.create_dataset("header", data=json.dumps(header), dtype=h5py.string_dtype("utf-8"))


def codes(path: Path) -> set[str]:
    return {i.code for i in validate(path).issues}


def test_round_trip_arrays_and_header(tmp_path: Path) -> None:
    content = random_content(grid_shape=(30, 17, 9), constant_regions=(0,), seed=3)
    path = tmp_path / "rt.nemap"
    header = nemap.write(path, content)
    with nemap.open(path, verify=True) as m:
        assert m.version == "0.1"
        assert m.geometry == content.geometry
        assert m.normalization == content.normalization
        assert m.layers == content.layers
        np.testing.assert_array_equal(m.regions.bounds, content.regions.bounds)
        np.testing.assert_array_equal(m.regions.network_index, content.regions.network_index)
        np.testing.assert_array_equal(m.regions.constant_value, content.regions.constant_value)
        assert m.regions.ramp_width == content.regions.ramp_width
        for got, want in zip(m.weights + m.biases, content.weights + content.biases):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want)
        assert m.header == header
        assert m.resolution == 3.0
    assert validate(path).valid


def test_two_region_file_validates_and_prints(good: Path, capsys) -> None:
    from nemap.cli import main

    assert main(["validate", str(good)]) == 0
    assert main(["info", "--json", str(good)]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["grid_shape"] == [40, 20, 12]
    assert info["voxel_size"] == [1.1, 1.0, 0.9]
    assert info["origin"] == [10.0, -5.0, 2.5]
    assert info["axis_order"] == [1, 2, 3]
    assert info["regions"] == 2 and info["networks"] == 1


def test_weights_are_lazy_and_closed_file_refuses(good: Path) -> None:
    m = nemap.open(good)
    assert m._weights is None
    assert m.weights[0].shape == (1, 16, 3)
    m.close()
    m2 = nemap.open(good)
    m2.close()
    with pytest.raises(FormatError, match="closed"):
        _ = m2.weights


def test_written_file_is_hdf5_1_8_compatible(good: Path) -> None:
    raw = good.read_bytes()
    assert raw[:8] == limits.HDF5_SIGNATURE
    assert raw[8] <= 2  # superblock version
    with h5py.File(good) as f:
        assert f.attrs["nemap_format"] == "nemap"
        assert h5py.check_string_dtype(f["header"].dtype).encoding == "utf-8"
        assert f["header"].shape == ()
        assert f["network/layer_00/weight"].dtype == np.dtype("<f4")
        assert f["regions/bounds"].dtype == np.dtype("<i8")


def test_never_overwrites_without_force(good: Path) -> None:
    before = good.read_bytes()
    with pytest.raises(NemapError, match="exists; use force=True"):
        nemap.write(good, random_content(seed=9))
    assert good.read_bytes() == before
    nemap.write(good, random_content(seed=9), force=True)
    assert good.read_bytes() != before
    assert not list(good.parent.glob("*partial*"))


def test_missing_output_directory(tmp_path: Path) -> None:
    with pytest.raises(NemapError, match="does not exist"):
        nemap.write(tmp_path / "nope" / "x.nemap", random_content())


def test_digest_is_of_values_not_encoding(tmp_path: Path) -> None:
    a = np.arange(12, dtype="<f4").reshape(3, 4)
    assert hdf5.digest(a) == hdf5.digest(a.astype(">f4"))
    assert hdf5.digest(a) == hdf5.digest(np.asfortranarray(a))
    assert hdf5.digest(a) != hdf5.digest(a.astype("<f8"))
    content = random_content(seed=1)
    p1, p2 = tmp_path / "a.nemap", tmp_path / "b.nemap"
    nemap.write(p1, content)
    nemap.write(p2, content, compression=6)
    with nemap.open(p1) as m1, nemap.open(p2, verify=True) as m2:
        assert m1.header["integrity"] == m2.header["integrity"]


def test_newer_minor_with_unknown_members_opens() -> None:
    with nemap.open(SUITE / "valid" / "newer_minor_version" / "map.nemap") as m:
        assert m.version == "0.7"
        assert [i.code for i in m.notices] == ["VERSION_MINOR_NEWER", "EXTENSION_UNSUPPORTED"]
        assert m.weights[0].shape == (1, 16, 3)


# One substring of the one-line message per invalid fixture (src/nemap/conformance/suite/0.3/invalid/).
MESSAGES = {
    "wrong_format_tag": "not a .nemap file", "unknown_major_version": "not supported",
    "version_malformed": "MAJOR.MINOR",
    "version_mismatch": "disagrees", "version_missing": "nemap_version is missing", "version_not_scalar": "scalar "
                                                                                                          "string",
    "unknown_required_extension": "VENDOR_magic", "undeclared_extension": "VENDOR_magic",
    "missing_dataset": "/network/layer_02/bias", "shape_mismatch": "(1, 15)", "big_endian": "big-endian",
    "float64_weights": "float64", "nan_weight": "NaN", "nonfinite_constant": "infinite",
    "bounds_outside_grid": "outside the grid",
    "region_degenerate": "single voxel", "network_index_invalid": "exactly once", "coverage_gap": "no region's support",
    "oversize_header": "limit", "too_many_regions": "maximum", "grid_too_large": "2^36", "forbidden_filter": "lzf",
    "soft_link": "soft link", "hard_link_cycle": "already linked", "too_many_elements": "together (limit 2^31)",
    "header_number_overflow": "overflows binary64", "external_link": "external link", "user_block": "user block",
    "superblock_too_new": "superblock",
    "object_attribute": "attribute", "named_datatype": "named datatype", "header_schema": "blend/method",
    "header_missing_member": "normalization", "header_not_json": "not valid JSON", "header_nan": "NaN",
    "header_duplicate_key": "duplicate", "header_missing": "/header is missing", "geometry_inconsistent": "diagonal",
    "network_chain_broken": "chain", "normalization_invalid": "value_max", "digest_mismatch": "SHA-256",
    "digest_orphan": "/regions/gone", "not_hdf5": "not an HDF5 file",
    "feature_grid_not_required": "extensions_required", "feature_grid_in_0_1": "version 0.2",
    "feature_grid_order_4": "order", "feature_grid_nodes_too_few": "node_shape",
    "feature_grid_missing": "NEMAP_feature_grid/coefficients", "feature_grid_nonfinite": "NaN",
    "feature_grid_inputs": "chain",
    "evidence_in_0_1": "0.2 or later", "evidence_fsc_without_half_maps": "half_maps",
    "evidence_fsc_missing": "/evidence/fsc", "evidence_mask_length": "/evidence/mask",
    "evidence_fsc_out_of_range": "[−1, 1]", "evidence_local_resolution_negative": "≥ 0 Å",
    "evidence_mask_padding": "padding bits",
    "quantized_in_0_2": "version 0.3", "quantized_not_required": "extensions_required",
    "quantized_member_missing": "NEMAP_quantized", "quantized_step_above_bound": "twice",
    "quantized_two_regions": "one region", "quantized_tile_cut": "does not decode",
    "quantized_bomb": "inflates to more than", "quantized_offsets_decrease": "never decrease",
    "quantized_streams_missing": "NEMAP_quantized/streams", "evidence_dtype_and_network_index": "float32",
}


def test_every_invalid_fixture_has_a_message_check() -> None:
    assert set(MESSAGES) == {p.name for p in (SUITE / "invalid").iterdir()}


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_invalid_fixture_is_refused_in_one_line(case: str) -> None:
    """The reader refuses each defect (at open, on loading weights, or when asked to verify) with its
    code and a one-line message naming the file; the validator reports exactly the fixture's codes."""
    folder = SUITE / "invalid" / case
    meta = json.loads((folder / "case.json").read_text())
    path = folder / "map.nemap"
    if "materialize" in meta:  # built when the suite runs (conformance.md §1)
        path = next(c.file for c in load_suite(SUITE) if c.meta["name"] == case)
    if meta["reader"] == "must-refuse":
        with pytest.raises(FormatError) as err:
            with nemap.open(path) as m:
                assert m.weights is not None
                if m.quantized is not None:  # tiles are decoded when a query needs them
                    m.sample()
    elif case.startswith("evidence_"):  # evidence never changes evaluation: others may ignore it; we check it
        with pytest.raises(FormatError) as err:
            nemap.open(path)
    else:
        with nemap.open(path, verify=False) as m:  # a reader may skip digests and coverage ...
            assert m.weights is not None
        with pytest.raises(FormatError) as err:  # ... but nemap.open checks them unless told not to
            nemap.open(path)
    assert err.value.code in meta["validator_codes"]
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)) and MESSAGES[case] in message, message
    report = validate(path)
    assert sorted({i.code for i in report.issues}) == meta["validator_codes"], report.to_text()
    assert not report.valid and report.exit_code == (2 if case == "not_hdf5" else 1)


def test_not_hdf5_and_missing_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.nemap"
    text.write_text("hello")
    with pytest.raises(FormatError, match="not an HDF5 file") as err:
        nemap.open(text)
    assert err.value.code == "IO_NOT_HDF5"
    with pytest.raises(FormatError, match="cannot read") as err:
        nemap.open(tmp_path / "absent.nemap")
    assert validate(text).exit_code == 2


def test_truncated_file(good: Path) -> None:
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError):
        nemap.open(good, verify=True)
    assert validate(good).exit_code in (1, 2)


def test_coverage_gap_is_reported(tmp_path: Path) -> None:
    bounds = np.array([[[0, 0, 0], [20, 19, 11]], [[20, 0, 0], [39, 19, 11]]])  # touch at x=20, no overlap
    path = tmp_path / "gap.nemap"
    with pytest.raises(FormatError, match="no region's support"):
        nemap.write(path, random_content(bounds=bounds))
    assert not path.exists() and not list(tmp_path.iterdir())


def test_validator_collects_several_problems(good: Path) -> None:
    INVALID["nan_weight"].edit(good)
    INVALID["soft_link"].edit(good)
    edit_header(good, lambda h: h.update(extensions_used=["EXT_optional"]))
    with h5py.File(good, "r+") as f:
        f.create_dataset("extras/notes", data=np.zeros(2, "<f4"))
    found = codes(good)
    assert {"NUMERIC_NONFINITE", "HDF5_FORBIDDEN_LINK", "EXTENSION_UNSUPPORTED", "INTEGRITY_DIGEST_MISSING"} <= found


def test_validate_json_report(good: Path, capsys) -> None:
    from nemap.cli import main

    INVALID["digest_mismatch"].edit(good)
    assert main(["validate", "--json", str(good)]) == 1
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, json.loads((SPEC / "schema" / "validation-report.schema.json").read_text()))
    assert report["valid"] is False and report["num_errors"] == 1
    assert report["issues"][0]["code"] == "INTEGRITY_DIGEST_MISMATCH"
    assert report["issues"][0]["location"] == "/network/layer_00/bias"


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(*[st.integers(1, 30)] * 3),
    voxel=st.tuples(*[st.floats(0.05, 20.0, allow_nan=False)] * 3),
    origin=st.tuples(*[st.floats(-1e4, 1e4, allow_nan=False)] * 3),
    ramp=st.floats(0.1, 8.0),
)
def test_random_geometries_round_trip_exactly(tmp_path_factory, shape, voxel, origin, ramp) -> None:
    bounds = np.array([[[0, 0, 0], [n - 1 for n in shape]]])
    content = random_content(grid_shape=shape, voxel_size=voxel, origin=origin, bounds=bounds,
                             width=4, sine_layers=1, ramp_width=ramp)
    path = tmp_path_factory.mktemp("prop") / "g.nemap"
    nemap.write(path, content)
    with nemap.open(path, verify=True) as m:
        assert m.geometry == content.geometry  # binary64 values survive JSON exactly
        assert m.geometry.index_to_physical.tolist() == content.geometry.index_to_physical.tolist()
        assert m.regions.ramp_width == ramp
