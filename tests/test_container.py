"""The .nemap container: round trips, strict reading, and every malformed-file class."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import nemap
from nemap import container
from nemap.errors import FormatError, NemapError
from nemap.validate import validate
from fixtures.random_nemap import random_content


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


def replace_dataset(path: Path, name: str, data, **kw) -> None:
    with h5py.File(path, "r+") as f:
        del f[name]
        f.create_dataset(name, data=data, **kw)


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
        m2.weights


def test_written_file_is_hdf5_1_8_compatible(good: Path) -> None:
    raw = good.read_bytes()
    assert raw[:8] == container.HDF5_SIGNATURE
    assert raw[8] <= 2  # superblock version
    with h5py.File(good) as f:
        assert f.attrs["nemap_format"] == "nemap"
        assert h5py.check_string_dtype(f["header"].dtype).encoding == "utf-8"
        assert f["header"].shape == ()
        assert f["network/layer_00/weight"].dtype == np.dtype("<f4")
        assert f["regions/bounds"].dtype == np.dtype("<i8")


def test_never_overwrites_without_force(good: Path) -> None:
    before = good.read_bytes()
    with pytest.raises(NemapError, match="exists; use --force"):
        nemap.write(good, random_content(seed=9))
    assert good.read_bytes() == before
    nemap.write(good, random_content(seed=9), force=True)
    assert good.read_bytes() != before
    assert not list(good.parent.glob("*.partial"))


def test_missing_output_directory(tmp_path: Path) -> None:
    with pytest.raises(NemapError, match="does not exist"):
        nemap.write(tmp_path / "nope" / "x.nemap", random_content())


def test_digest_is_of_values_not_encoding(tmp_path: Path) -> None:
    a = np.arange(12, dtype="<f4").reshape(3, 4)
    assert container.digest(a) == container.digest(a.astype(">f4"))
    assert container.digest(a) == container.digest(np.asfortranarray(a))
    assert container.digest(a) != container.digest(a.astype("<f8"))
    content = random_content(seed=1)
    p1, p2 = tmp_path / "a.nemap", tmp_path / "b.nemap"
    nemap.write(p1, content)
    nemap.write(p2, content, compression=6)
    with nemap.open(p1) as m1, nemap.open(p2, verify=True) as m2:
        assert m1.header["integrity"] == m2.header["integrity"]


def test_newer_minor_with_unknown_members_opens(good: Path) -> None:
    def newer(h):
        h["nemap_version"] = "0.7"
        h["future_member"] = {"anything": [1, 2]}
        h["geometry"]["future_field"] = True

    edit_header(good, newer)
    with h5py.File(good, "r+") as f:
        f.attrs["nemap_version"] = "0.7"
        f.create_dataset("future/thing", data=np.zeros(3, "<f4"))
    with nemap.open(good) as m:
        assert m.version == "0.7"
        assert [i.code for i in m.notices] == ["VERSION_MINOR_NEWER"]
        assert m.weights[0].shape == (1, 16, 3)
    report = validate(good)
    assert report.valid, report.to_text()
    assert "UNKNOWN_OBJECT" not in codes(good)


def _set_attr(name, value):
    def change(path):
        with h5py.File(path, "r+") as f:
            f.attrs[name] = value
    return change


def _header(change):
    return lambda path: edit_header(path, change)


def _nan_weight(path):
    with h5py.File(path, "r+") as f:
        f["network/layer_01/weight"][0, 0, 0] = np.nan


def _bounds_out(path):
    with h5py.File(path, "r+") as f:
        b = f["regions/bounds"][()]
        b[1, 1, 0] = 40  # grid has 40 voxels along x: last index 39
        f["regions/bounds"][...] = b


def _lzf(path):
    with h5py.File(path, "r+") as f:
        w = f["network/layer_00/weight"][()]
        del f["network/layer_00/weight"]
        f.create_dataset("network/layer_00/weight", data=w, compression="lzf", chunks=w.shape)


def _soft_link(path):
    with h5py.File(path, "r+") as f:
        f["regions/alias"] = h5py.SoftLink("/regions/bounds")


def _external_link(path):
    with h5py.File(path, "r+") as f:
        f["extras/elsewhere"] = h5py.ExternalLink("other.h5", "/")


def _missing(path):
    with h5py.File(path, "r+") as f:
        del f["network/layer_02/bias"]


def _misshaped(path):
    replace_dataset(path, "network/layer_01/bias", np.zeros((1, 15), "<f4"))


def _big_endian(path):
    with h5py.File(path, "r") as f:
        w = f["network/layer_00/weight"][()]
    replace_dataset(path, "network/layer_00/weight", w.astype(">f4"))


def _float64(path):
    with h5py.File(path, "r") as f:
        w = f["network/layer_00/weight"][()]
    replace_dataset(path, "network/layer_00/weight", w.astype("<f8"))


def _huge_header(path):
    with h5py.File(path, "r+") as f:
        del f["header"]
        f.create_dataset("header", data="{" + " " * (container.MAX_HEADER_BYTES + 1) + "}",
                         dtype=h5py.string_dtype("utf-8"))


def _not_json(path):
    with h5py.File(path, "r+") as f:
        del f["header"]
        f.create_dataset("header", data="{not json", dtype=h5py.string_dtype("utf-8"))


def _nan_in_json(path):
    with h5py.File(path, "r+") as f:
        text = f["header"][()].decode().replace('"value_min": -0.5', '"value_min": NaN')
        del f["header"]
        f.create_dataset("header", data=text, dtype=h5py.string_dtype("utf-8"))


def _user_block(path):
    data = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: data.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        attrs = dict(f.attrs)
    path.unlink()
    with h5py.File(path, "w", userblock_size=512, libver=("earliest", "v108")) as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        for n, v in data.items():
            f.create_dataset(n, data=v.decode() if isinstance(v, bytes) else v,
                             dtype=h5py.string_dtype("utf-8") if isinstance(v, bytes) else None)


def _tampered(path):
    with h5py.File(path, "r+") as f:
        f["network/layer_00/bias"][0, 0] += 1.0


def _too_many_regions(path):
    edit_header(path, lambda h: h["regions"].update(count=container.MAX_REGIONS + 1))


MALFORMED = {
    # name: (make defect, expected code, substring of the one-line message, caught without verify)
    "wrong_format_tag": (_set_attr("nemap_format", "something-else"), "FORMAT_TAG_MISSING", "not a .nemap file", True),
    "unknown_major": (_set_attr("nemap_version", "1.0"), "VERSION_MAJOR_UNSUPPORTED", "not supported", True),
    "malformed_version": (_set_attr("nemap_version", "0.1.2"), "VERSION_MALFORMED", "MAJOR.MINOR", True),
    "version_mismatch": (_header(lambda h: h.update(nemap_version="0.0")), "VERSION_MISMATCH", "disagrees", True),
    "required_extension": (_header(lambda h: h.update(extensions_used=["EXT_magic"], extensions_required=["EXT_magic"])),
                           "EXTENSION_REQUIRED_UNSUPPORTED", "EXT_magic", True),
    "undeclared_extension": (_header(lambda h: h.update(extensions_required=["EXT_magic"])),
                             "EXTENSION_UNDECLARED", "extensions_used", True),
    "missing_dataset": (_missing, "DATASET_MISSING", "/network/layer_02/bias", True),
    "misshaped_dataset": (_misshaped, "DATASET_SHAPE_MISMATCH", "(1, 15)", True),
    "big_endian": (_big_endian, "DTYPE_NOT_ALLOWED", "big-endian", True),
    "float64_weights": (_float64, "DTYPE_NOT_ALLOWED", "float64", True),
    "nan_weight": (_nan_weight, "NUMERIC_NONFINITE", "NaN", False),
    "bounds_outside": (_bounds_out, "REGION_OUT_OF_GRID", "outside the grid", True),
    "header_too_large": (_huge_header, "HEADER_TOO_LARGE", "limit", True),
    "too_many_regions": (_too_many_regions, "SCHEMA_VIOLATION", "maximum", True),
    "lzf_filter": (_lzf, "FILTER_NOT_ALLOWED", "lzf", True),
    "soft_link": (_soft_link, "HDF5_FORBIDDEN_LINK", "soft link", True),
    "external_link": (_external_link, "HDF5_FORBIDDEN_LINK", "external link", True),
    "user_block": (_user_block, "HDF5_USER_BLOCK", "user block", True),
    "schema": (_header(lambda h: h["geometry"].update(voxel_size=[1.1, -1.0, 0.9])), "SCHEMA_VIOLATION", "voxel_size", True),
    "schema_missing_member": (_header(lambda h: h.pop("normalization")), "SCHEMA_VIOLATION", "normalization", True),
    "not_json": (_not_json, "HEADER_NOT_JSON", "not valid JSON", True),
    "nan_in_json": (_nan_in_json, "HEADER_NOT_JSON", "NaN", True),
    "affine_inconsistent": (_header(lambda h: h["geometry"].update(origin=[0.0, 0.0, 0.0])), "GEOMETRY_INCONSISTENT", "diagonal", True),
    "chain_broken": (_header(lambda h: h["network"]["layers"][1].update(in_features=8)), "NETWORK_SHAPE_CHAIN_BROKEN", "chain", True),
    "bad_normalization": (_header(lambda h: h["normalization"].update(value_max=-0.5)), "NORMALIZATION_INVALID", "value_max", True),
    "digest_mismatch": (_tampered, "INTEGRITY_DIGEST_MISMATCH", "SHA-256", False),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_rejected_with_its_message(good: Path, case: str) -> None:
    make, code, text, at_open = MALFORMED[case]
    make(good)
    if at_open:
        with pytest.raises(FormatError) as err:
            with nemap.open(good) as m:
                m.weights
    else:
        with nemap.open(good) as m:  # structure is fine: the values are checked on load / verify
            if code == "NUMERIC_NONFINITE":
                with pytest.raises(FormatError) as err:
                    m.weights
        with pytest.raises(FormatError) as err:
            nemap.open(good, verify=True)
    assert err.value.code == code
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(good)) and text in message, message
    report = validate(good)
    assert not report.valid and code in {i.code for i in report.issues}, report.to_text()
    assert report.exit_code == 1


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
    _nan_weight(good)
    _soft_link(good)
    edit_header(good, lambda h: h.update(extensions_used=["EXT_optional"]))
    with h5py.File(good, "r+") as f:
        f.create_dataset("extras/notes", data=np.zeros(2, "<f4"))
    found = codes(good)
    assert {"NUMERIC_NONFINITE", "HDF5_FORBIDDEN_LINK", "EXTENSION_UNSUPPORTED", "INTEGRITY_DIGEST_MISSING"} <= found


def test_validate_json_report(good: Path, capsys) -> None:
    from nemap.cli import main

    _tampered(good)
    assert main(["validate", "--json", str(good)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["num_errors"] == 1
    assert report["issues"][0]["code"] == "INTEGRITY_DIGEST_MISMATCH"
    assert report["issues"][0]["location"] == "/network/layer_00/bias"


from hypothesis import given, settings, strategies as st  # noqa: E402


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
