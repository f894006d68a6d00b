"""Lengths of variable-length string attributes read from the raw object header (nemap.format.raw_attributes),
against what h5py reads, for the layouts libhdf5 writes."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from nemap.format.raw_attributes import vlen_lengths

LAYOUTS = {
    "v1 header": dict(libver=("earliest", "v108")),
    "v2 header": dict(libver="latest"),
    "v2, creation order tracked": dict(libver="latest", track_order=True),
}


def _lengths(path: Path) -> dict[str, int] | None:
    with h5py.File(path) as f:
        address = h5py.h5o.get_info(f.id).addr
        sizes = f.id.get_create_plist().get_sizes()
    with open(path, "rb") as fh:
        return vlen_lengths(fh, address, *sizes)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("count", [2, 30])
def test_lengths_match_the_values(layout: str, count: int, tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    values = {f"attr_{i:02d}": "é" * i + "x" * (3 * i + 1) for i in range(count)}
    with h5py.File(path, "w", **LAYOUTS[layout]) as f:
        for name, value in values.items():
            f.attrs[name] = value
        f.attrs["fixed"] = np.array(b"fixed-length, not variable", dtype="S26")  # fixed length: not listed
    found = _lengths(path)
    assert found is not None and "fixed" not in found
    dense = count > 8 and layout != "v1 header"  # libhdf5 moves many attributes to dense storage
    expected = {} if dense else {k: len(v.encode("utf-8")) for k, v in values.items()}
    assert found == expected  # dense storage is not read: the caller falls back


def test_a_header_it_does_not_know_gives_none(tmp_path: Path) -> None:
    path = tmp_path / "junk.bin"
    path.write_bytes(b"\x07" * 64)
    with open(path, "rb") as fh:
        assert vlen_lengths(fh, 0, 8, 8) is None
