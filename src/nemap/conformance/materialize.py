"""Cases whose file is too large to ship are built when the suite runs (spec/0.1/conformance.md §1).

A case.json with ``"materialize": {"from": SEED, "pad_header_to_bytes": N}`` ships a small SEED file;
its ``file`` is SEED with the JSON text of /header padded with spaces before its final ``}`` until the
text is N bytes long (the same JSON value), written as a variable-length UTF-8 string dataset.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import h5py


def materialize(case_folder: Path, meta: dict[str, Any], workdir: Path) -> Path:
    """Build the case's file under ``workdir`` (once) and return its path."""
    recipe = meta["materialize"]
    out = workdir / meta["name"] / meta["file"]
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    shutil.copyfile(case_folder / recipe["from"], tmp)
    pad_header(tmp, int(recipe["pad_header_to_bytes"]))
    tmp.replace(out)
    return out


def pad_header(path: Path, size: int) -> None:
    """Pad /header of ``path`` with spaces before its final '}' to ``size`` bytes of UTF-8."""
    with h5py.File(path, "r+") as f:
        text = f["header"][()].decode("utf-8")
        padding = size - len(text.encode("utf-8"))
        if padding < 0 or not text.endswith("}"):
            raise ValueError(f"{path}: the header cannot be padded to {size} bytes")
        del f["header"]
        f.create_dataset("header", data=text[:-1] + " " * padding + "}", dtype=h5py.string_dtype("utf-8"))
