"""Nothing is ever lost: an output appears only when complete, a failed write leaves the target as it was, and an
output path that is a (dangling) symlink is refused without force and replaced, not followed, with it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nemap.errors import NemapError
from nemap.files import atomic_output, check_output_path


def test_a_failed_write_leaves_the_target_and_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "out.nemap"
    target.write_bytes(b"the old file")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_output(target, force=True) as tmp:
            tmp.write_bytes(b"half a new file")
            raise RuntimeError("half way")
    assert target.read_bytes() == b"the old file" and sorted(p.name for p in tmp_path.iterdir()) == ["out.nemap"]


def test_a_complete_write_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out.nemap"
    target.write_bytes(b"old")
    with atomic_output(target, force=True) as tmp:
        assert not tmp.exists() or tmp.read_bytes() == b""
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # until the block ends
    assert target.read_bytes() == b"new"


def test_a_dangling_symlink_output_is_refused_then_replaced_not_followed(tmp_path: Path) -> None:
    link = tmp_path / "out.nemap"
    os.symlink(tmp_path / "missing" / "elsewhere.nemap", link)
    with pytest.raises(NemapError, match="exists") as err:
        check_output_path(link, force=False)
    assert err.value.code == "OUTPUT_EXISTS"
    with atomic_output(link, force=True) as tmp:
        tmp.write_bytes(b"map")
    assert not link.is_symlink() and link.read_bytes() == b"map"
    assert not (tmp_path / "missing").exists()


def test_a_symlink_to_a_file_is_replaced_and_its_target_kept(tmp_path: Path) -> None:
    kept = tmp_path / "kept.nemap"
    kept.write_bytes(b"someone else's map")
    link = tmp_path / "out.nemap"
    os.symlink(kept, link)
    with atomic_output(link, force=True) as tmp:
        tmp.write_bytes(b"map")
    assert not link.is_symlink() and link.read_bytes() == b"map" and kept.read_bytes() == b"someone else's map"
