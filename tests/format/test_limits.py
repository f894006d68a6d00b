"""Every limit of spec/0.1/nemap.md §3.6 (and of NEMAP_quantized) at its boundary: the value at the limit passes,
one past it is refused with its code — so that an off-by-one in a limit cannot hide behind fixtures that sit orders
of magnitude beyond it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import h5py
import jsonschema
import numpy as np
import pytest

from nemap.errors import FormatError
from nemap.format import dataset_checks, header_checks, limits
from nemap.format.header_json import load_schema, parse_header_json
from nemap.format.inspector import Inspector
from nemap.format.kinds import voxel_codec

SUITE = Path(__file__).resolve().parents[2] / "src" / "nemap" / "conformance" / "suite" / "0.3"


def _header() -> dict:
    with h5py.File(SUITE / "valid" / "one_region" / "map.nemap", "r") as f:
        return json.loads(f["header"][()])


def _violations(header: dict) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(load_schema()).iter_errors(header)]


def test_nesting_depth_at_and_past_its_limit() -> None:
    deep = "[" * limits.MAX_HEADER_DEPTH + "]" * limits.MAX_HEADER_DEPTH
    assert parse_header_json(deep) == parse_header_json(deep)  # 64 levels: read
    with pytest.raises(ValueError, match="deeper than 64"):
        parse_header_json("[" + deep + "]")


@pytest.mark.parametrize("member,at,limit", [
    (("regions", "count"), None, limits.MAX_REGIONS),
    (("regions", "network_count"), None, limits.MAX_REGIONS),
])
def test_region_counts_at_and_past_their_limit(member, at, limit) -> None:
    header = _header()
    header[member[0]][member[1]] = limit
    assert not _violations(header)
    header[member[0]][member[1]] = limit + 1
    assert _violations(header)


def test_layers_and_widths_at_and_past_their_limits() -> None:
    header = _header()
    layer = {"in_features": limits.MAX_WIDTH, "out_features": limits.MAX_WIDTH, "activation": "sine", "omega": 30.0}
    header["network"]["layers"] = [copy.deepcopy(layer) for _ in range(limits.MAX_LAYERS)]
    assert not _violations(header)
    header["network"]["layers"].append(copy.deepcopy(layer))
    assert _violations(header)
    header["network"]["layers"] = [dict(layer, out_features=limits.MAX_WIDTH + 1)]
    assert _violations(header)


def _geometry_issues(shape: list[int]) -> list[str]:
    ins = Inspector(Path("limits.nemap"), strict=False)
    geo = {"grid_shape": shape, "index_to_physical": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]],
           "voxel_size": [1, 1, 1], "origin": [0, 0, 0]}
    header_checks._check_geometry(ins, geo)
    return [i.code for i in ins.issues]


def test_grid_voxels_at_and_past_their_limit() -> None:
    assert _geometry_issues([4096, 4096, 4096]) == []  # exactly 2^36
    assert _geometry_issues([4096, 4096, 4097]) == ["LIMIT_EXCEEDED"]


def _size_issues(sizes: dict[str, int]) -> tuple[list[str], set[str]]:
    ins = Inspector(Path("limits.nemap"), strict=False)
    dataset_checks._check_sizes(ins, {p: SimpleNamespace(size=n) for p, n in sizes.items()})
    return [i.code for i in ins.issues], ins.unreadable


def test_dataset_elements_at_and_past_their_limits() -> None:
    assert _size_issues({"/a": limits.MAX_DATASET_ELEMENTS}) == ([], set())
    assert _size_issues({"/a": limits.MAX_DATASET_ELEMENTS + 1}) == (["LIMIT_EXCEEDED"], {"/a"})
    half = limits.MAX_TOTAL_ELEMENTS // 2
    assert _size_issues({"/a": half, "/b": half}) == ([], set())
    codes, unreadable = _size_issues({"/a": half, "/b": half + 1})
    assert codes == ["LIMIT_EXCEEDED", "LIMIT_EXCEEDED"] and unreadable == {"/a", "/b"}  # /b is over 2^30 too


def _file_with_header_of(path: Path, size: int) -> Path:
    text = json.dumps(_header())
    with h5py.File(SUITE / "valid" / "one_region" / "map.nemap", "r") as src, h5py.File(path, "w") as f:
        for k, v in src.attrs.items():
            f.attrs[k] = v
        f.create_dataset("header", data=text + " " * (size - len(text.encode())), dtype=h5py.string_dtype("utf-8"))
    return path


def test_header_bytes_at_and_past_their_limit(tmp_path: Path) -> None:
    def read(size: int) -> Inspector:
        path = _file_with_header_of(tmp_path / f"h{size}.nemap", size)
        ins = Inspector(path, strict=True)
        with h5py.File(path, "r") as f:
            header_checks.read_header(ins, {"/header": f["header"]})
        return ins

    assert read(limits.MAX_HEADER_BYTES).header["nemap_version"]
    with pytest.raises(FormatError) as err:
        read(limits.MAX_HEADER_BYTES + 1)
    assert err.value.code == "HEADER_TOO_LARGE"


def test_codes_at_and_past_their_limit() -> None:
    k = np.zeros((3, 2, 2), dtype=np.int64)
    k[1, 1, 1] = voxel_codec.MAX_CODE
    k[2, 0, 1] = -voxel_codec.MAX_CODE
    assert np.array_equal(voxel_codec.decode_tile(voxel_codec.encode_tile(k), k.shape), k)
    k[1, 1, 1] += 1
    with pytest.raises(ValueError, match="2\\^31"):
        voxel_codec.encode_tile(k)


def test_tile_edges_at_and_past_their_limit() -> None:
    schema = jsonschema.Draft202012Validator(load_schema("NEMAP_quantized"))
    member = {"order": 5, "tile_shape": [128, 1, 128], "step": 0.2, "error_bound": 0.1}
    assert not list(schema.iter_errors(member))
    assert list(schema.iter_errors(dict(member, tile_shape=[129, 1, 128])))
    assert list(schema.iter_errors(dict(member, tile_shape=[128, 0, 128])))


def test_a_class_stream_inflating_one_byte_past_its_length_is_refused() -> None:
    import zlib

    shape = (2, 1, 1)  # one level; one target (x = 1), predicted by its left neighbour
    head = bytes([1, 1, 1, 1]) + (5).to_bytes(8, "little", signed=True)

    def tile(inflated: bytes) -> bytes:
        return head + bytes([voxel_codec.JOINT]) + zlib.compress(inflated)

    assert voxel_codec.decode_tile(tile(b"\x04"), shape).ravel().tolist() == [5, 7]  # zigzag 4 = +2
    with pytest.raises(voxel_codec.CodecError, match="inflates to more than"):
        voxel_codec.decode_tile(tile(b"\x04\x00"), shape)
    escaped = (300).to_bytes(8, "little")  # zigzag 300 = +150
    assert voxel_codec.decode_tile(tile(b"\xff" + escaped), shape).ravel().tolist() == [5, 155]
    with pytest.raises(voxel_codec.CodecError, match="ends early"):
        voxel_codec.decode_tile(tile(b"\xff" + escaped[:7]), shape)
    with pytest.raises(voxel_codec.CodecError, match="inflates to more than"):
        voxel_codec.decode_tile(tile(b"\xff" + escaped + b"\x00"), shape)
