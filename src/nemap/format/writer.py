"""Writing a .nemap file: the header built from the content (spec §5), every array with its digest, written to
a temporary file beside the target, checked by the reader's own checks, and renamed into place."""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from nemap.errors import ArgumentError
from nemap.files import atomic_output
from nemap.format.content import NeuralMapContent
from nemap.format.hdf5 import digest
from nemap.format.kinds import kind_of_content
from nemap.format.limits import BASE_VERSION_STRING, FORMAT_TAG, layer_paths
from nemap.format.reader import inspect


def file_version(content: NeuralMapContent) -> str:
    """The lowest version that describes ``content`` (R-VER-05): its kind's, 0.2 with resolution evidence,
    else 0.1."""
    version = kind_of_content(content).min_version
    if content.evidence is not None and content.evidence.member():
        version = max(version, (0, 2))
    return BASE_VERSION_STRING if version == (0, 1) else f"{version[0]}.{version[1]}"


def build_header(content: NeuralMapContent, digests: dict[str, str]) -> dict[str, Any]:
    """The JSON header of ``content`` (spec §5), given the digests of its datasets."""
    g = content.geometry
    geometry: dict[str, Any] = {"grid_shape": list(g.grid_shape), "index_to_physical": g.index_to_physical.tolist(),
                                "voxel_size": list(g.voxel_size), "origin": list(g.origin)}
    if g.source:
        geometry["source"] = g.source
    kind = kind_of_content(content)
    extensions = [kind.extension] if kind.extension else []
    header: dict[str, Any] = {"nemap_version": file_version(content), "extensions_used": extensions,
                              "extensions_required": extensions, "geometry": geometry}
    member = kind.member(content)
    if member is not None:
        header["extensions"] = {kind.extension: member}
    for name in ("resolution", "contour_level"):
        if getattr(content, name) is not None:
            header[name] = getattr(content, name)
    if content.evidence is not None and content.evidence.member():
        header["evidence"] = content.evidence.member()
    header["normalization"] = content.normalization.to_json()
    regions: dict[str, Any] = {"count": content.regions.count, "network_count": content.regions.network_count,
                               "blend": {"method": "smoothstep-product",
                                         "ramp_width": float(content.regions.ramp_width)}}
    if content.regions.tiling:
        regions["tiling"] = content.regions.tiling
    header["regions"] = regions
    header["network"] = {"layers": [layer.to_json() for layer in content.layers]}
    header["integrity"] = {"arrays": dict(sorted(digests.items()))}
    if content.provenance:
        header["provenance"] = content.provenance
    if content.extras:
        header["extras"] = content.extras
    return header


def content_arrays(content: NeuralMapContent) -> dict[str, np.ndarray]:
    """Dataset path → array in its declared little-endian dtype."""
    reg = content.regions
    arrays: dict[str, np.ndarray] = {
        "/regions/bounds": np.ascontiguousarray(reg.bounds, dtype="<i8"),
        "/regions/network_index": np.ascontiguousarray(reg.network_index, dtype="<i8"),
        "/regions/constant_value": np.ascontiguousarray(reg.constant_value, dtype="<f4"),
    }
    for i, (w, b) in enumerate(zip(content.weights, content.biases)):
        wp, bp = layer_paths(i)
        arrays[wp] = np.ascontiguousarray(w, dtype="<f4")
        arrays[bp] = np.ascontiguousarray(b, dtype="<f4")
    arrays.update(kind_of_content(content).arrays(content))
    if content.evidence is not None:
        arrays.update(content.evidence.arrays())
    if content.source_mrc_header is not None:
        arrays["/source/mrc_header"] = np.frombuffer(content.source_mrc_header, dtype="u1")
    return arrays


def _storage(path: str, array: np.ndarray, compression: int | None, slotted: tuple[str, ...]) -> dict[str, Any]:
    """HDF5 creation options: networks and the kind's ``slotted`` arrays (coefficient grids) chunked one slot per
    chunk (deflate when asked); the rest contiguous (a chunk index costs kilobytes, which a small map feels)."""
    if not (path.startswith("/network/") or path in slotted) or array.ndim < 2 or array.shape[0] == 0:
        return {}
    opts: dict[str, Any] = {"chunks": (1,) + array.shape[1:]}
    if compression:
        opts.update(compression="gzip", compression_opts=int(compression), shuffle=True)
    return opts


def _libver(version: str) -> tuple[str, str]:
    """HDF5 object formats: 0.3 files use HDF5 1.8's compact groups (superblock 2, R-HDF-02 allows it: ≈ 6 KB less
    per file, which small quantized maps feel); older versions keep the earliest formats their files always had."""
    return ("v108", "v108") if tuple(int(p) for p in version.split(".")) >= (0, 3) else ("earliest", "v108")


def write(path: str | os.PathLike, content: NeuralMapContent, *, force: bool = False,
          compression: int | None = None) -> dict[str, Any]:
    """Write ``content`` as a .nemap file; returns the header written.

    The file is written to a temporary file beside the target, checked, and renamed into place
    (``nemap.files.atomic_output``), so the target appears only when complete. compression: deflate level 1–9
    (with shuffle) for networks and coefficient grids, or None.
    """
    if len(content.layers) != len(content.weights) or len(content.weights) != len(content.biases):
        raise ArgumentError("one weight and one bias array per layer", parameter="content")
    arrays = content_arrays(content)
    header = build_header(content, {p: digest(a) for p, a in arrays.items()})
    text = json.dumps(header, ensure_ascii=False, allow_nan=False)
    slotted = kind_of_content(content).slot_arrays
    with atomic_output(path, force=force) as tmp:
        with h5py.File(tmp, "w", libver=_libver(header["nemap_version"])) as f:
            f.attrs["nemap_format"] = FORMAT_TAG
            f.attrs["nemap_version"] = header["nemap_version"]
            f.create_dataset("header", data=text, dtype=h5py.string_dtype("utf-8"))
            for p, a in arrays.items():
                f.create_dataset(p, data=a, **_storage(p, a, compression, slotted))
        _, written, _ = inspect(tmp, strict=True, values=True, verify=False)
        if written is not None:
            written.close()
    return header
