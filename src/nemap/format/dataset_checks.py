"""The datasets' checks (spec/0.1/nemap.md §3.6, §8, §10 and the amendments of later versions): presence,
datatype and shape against the header, size limits before anything is read, region rules, finite values,
evidence values and SHA-256 digests."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from nemap.format import evidence
from nemap.format.hdf5 import dataset_digest
from nemap.format.inspector import Inspector
from nemap.format.kinds import kind_of
from nemap.format.limits import (
    FORMAT_VERSION,
    FREE_GROUPS,
    MAX_DATASET_ELEMENTS,
    MAX_MRC_HEADER_BYTES,
    MAX_TOTAL_ELEMENTS,
    SOURCE_DATASETS,
    VERSION_STRING,
    layer_paths,
)
from nemap.format.tiling import coverage_gaps


def expected_datasets(header: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Required dataset path → (shape, dtype as a NumPy string)."""
    r = header["regions"]["count"]
    n = header["regions"]["network_count"]
    out: dict[str, tuple[tuple[int, ...], str]] = {
        "/regions/bounds": ((r, 2, 3), "<i8"),
        "/regions/network_index": ((r,), "<i8"),
        "/regions/constant_value": ((r,), "<f4"),
    }
    for i, layer in enumerate(header["network"]["layers"]):
        w, b = layer_paths(i)
        out[w] = ((n, layer["out_features"], layer["in_features"]), "<f4")
        out[b] = ((n, layer["out_features"]), "<f4")
    out.update(kind_of(header).expected_datasets(header))
    if header.get("evidence"):
        out.update(evidence.expected_datasets(header["evidence"], header["geometry"]["grid_shape"]))
    return out


def check_datasets(ins: Inspector, header: dict[str, Any], datasets: dict[str, h5py.Dataset]) -> set[str]:
    """Presence, datatype and shape of every dataset (R-VAL-01); returns the required datasets that may not be read
    (missing, of the wrong datatype or shape, over a limit, stored with a forbidden filter or storage)."""
    expected = expected_datasets(header)
    bad = {path for path, (shape, dtype) in expected.items() if not _check_one(ins, path, datasets.get(path), shape,
                                                                               dtype)}
    for path in SOURCE_DATASETS:
        ds = datasets.get(path)
        if ds is not None:
            _check_dtype(ins, path, ds, np.dtype("u1"))
            if ds.ndim != 1 or ds.size > MAX_MRC_HEADER_BYTES:
                ins.add("DATASET_SHAPE_MISMATCH", f"{path} must be a 1-D byte array of at most 16 MiB", path)
    _check_sizes(ins, datasets)
    _check_unknown(ins, header, datasets, set(expected) | set(SOURCE_DATASETS) | {"/header"})
    return (bad | ins.unreadable) & set(expected)


def _check_one(ins: Inspector, path: str, ds: h5py.Dataset | None, shape: Any, dtype: str) -> bool:
    """One required dataset: present, of its datatype and shape (True when it is)."""
    if ds is None:
        ins.add("DATASET_MISSING", f"required dataset {path} is missing", path)
        return False
    before = len(ins.errors)
    _check_dtype(ins, path, ds, np.dtype(dtype))
    if not _shape_matches(tuple(ds.shape), shape):
        ins.add("DATASET_SHAPE_MISMATCH", f"{path} has shape {tuple(ds.shape)}, the header implies {shape}", path)
    return len(ins.errors) == before


def _check_unknown(ins: Inspector, header: dict[str, Any], datasets: dict[str, h5py.Dataset], known: set[str]) -> None:
    """R-VAL-02: datasets not defined, outside /extras and /extensions; R-EXT-04: objects of unlisted extensions."""
    newer = ins.file_version is not None and ins.file_version[1] > FORMAT_VERSION[1]
    used = header.get("extensions_used") if isinstance(header.get("extensions_used"), list) else []
    members = header.get("extensions") if isinstance(header.get("extensions"), dict) else {}
    unlisted: set[str] = set()
    for path in datasets:
        if path not in known and not path.startswith(FREE_GROUPS) and not newer:
            ins.add("UNKNOWN_OBJECT", f"{path} is not defined by format {VERSION_STRING}", path)
        parts = path.split("/")
        if path.startswith("/extensions/") and len(parts) > 3 and parts[2] not in used and parts[2] not in unlisted:
            unlisted.add(parts[2])
            if parts[2] not in members:  # its member, when present, was reported already
                ins.add("EXTENSION_UNLISTED", f"/extensions/{parts[2]} is ignored: extensions_used does not list it",
                        f"/extensions/{parts[2]}")


def _check_sizes(ins: Inspector, datasets: dict[str, h5py.Dataset]) -> None:
    """§3.6: elements per dataset and in all datasets together, from their declared shapes (nothing is read);
    a dataset over a limit is never read. The 2³¹ total makes every value unreadable but not the digests'
    bookkeeping: missing and orphan digests are still reported."""
    total = sum(int(ds.size) for ds in datasets.values())
    if total > MAX_TOTAL_ELEMENTS:
        ins.unreadable.update(datasets)
        ins.add("LIMIT_EXCEEDED", f"the datasets hold {total} elements together (limit 2^31)", "/")
    for path, ds in datasets.items():
        if ds.size > MAX_DATASET_ELEMENTS:
            ins.unreadable.add(path)
            ins.add("LIMIT_EXCEEDED", f"{path} has {ds.size} elements (limit 2^30)", path)


def _check_dtype(ins: Inspector, path: str, ds: h5py.Dataset, want: np.dtype) -> None:
    got = ds.dtype
    if got.kind != want.kind or got.itemsize != want.itemsize:
        ins.add("DTYPE_NOT_ALLOWED", f"{path} has datatype {got}, expected {want.str}", path)
    elif got.itemsize > 1 and got.byteorder == ">":
        ins.add("DTYPE_NOT_ALLOWED", f"{path} is big-endian; the format requires little-endian {want.str}", path)


def _shape_matches(got: tuple[int, ...], want: tuple[int, ...] | None) -> bool:
    """Shapes agree; −1 in ``want`` stands for any length ≥ 2 (the shells of an FSC table), ``want`` None for a
    1-D dataset of any length."""
    if want is None:  # any 1-D length (a byte stream)
        return len(got) == 1
    return len(got) == len(want) and all(g == w or (w == -1 and g >= 2) for g, w in zip(got, want))


def check_regions(ins: Inspector, header: dict[str, Any], bounds: np.ndarray, net_index: np.ndarray,
                  constants: np.ndarray, coverage: bool, kind_values: bool = True) -> None:
    """§8.1 R-REG-01…04 and the kind's rules that need the regions."""
    shape = np.asarray(header["geometry"]["grid_shape"], dtype=np.int64)
    first, last = bounds[:, 0, :], bounds[:, 1, :]
    bad = np.nonzero(np.any((first < 0) | (last > shape - 1) | (first > last), axis=1))[0]
    for r in bad[:5]:
        ins.add("REGION_OUT_OF_GRID", f"region {r} bounds {bounds[r, 0].tolist()}..{bounds[r, 1].tolist()} are "
                f"outside the grid {shape.tolist()}", "/regions/bounds")
    degenerate = np.nonzero(np.any((first == last) & (shape > 1), axis=1))[0]
    for r in degenerate[:5]:
        ins.add("REGION_DEGENERATE", f"region {r} spans a single voxel on an axis where the grid has more",
                "/regions/bounds")
    n = header["regions"]["network_count"]
    used = net_index[net_index >= 0]
    if np.any(net_index < -1) or used.size != n or not np.array_equal(np.sort(used), np.arange(n, dtype=np.int64)):
        ins.add("REGION_NETWORK_INDEX_INVALID",
                f"network_index must use each slot 0..{n - 1} exactly once and -1 for constant regions",
                "/regions/network_index")
    if not np.all(np.isfinite(constants)):
        ins.add("NUMERIC_NONFINITE", "NaN or infinite value in /regions/constant_value", "/regions/constant_value")
    if len(bad) == 0 and kind_values:
        kind_of(header).check_values(ins, header, bounds, net_index)
    if coverage and len(bad) == 0 and len(degenerate) == 0:
        gaps = coverage_gaps(bounds, shape)
        if len(gaps):
            ins.add("REGION_COVERAGE_GAP", f"{len(gaps)} test point(s) of the grid box lie in no region's support, "
                    f"e.g. index {gaps[0].tolist()}", "/regions/bounds")


def check_evidence_values(ins: Inspector, header: dict[str, Any], datasets: dict[str, h5py.Dataset],
                          unreadable: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """R-EVD-02 to R-EVD-04: the values of the evidence arrays that may be read (small: read whole)."""
    member = header.get("evidence")
    if not member:
        return
    arrays = {p: datasets[p][()] for p in evidence.expected_datasets(member, header["geometry"]["grid_shape"])
              if p in datasets and p not in ins.unreadable and p not in unreadable}
    for path, message in evidence.problems(member, arrays, header["geometry"]["grid_shape"]):
        ins.add("EVIDENCE_INVALID", message, path)


def check_digests(ins: Inspector, header: dict[str, Any], datasets: dict[str, h5py.Dataset]) -> None:
    """§10: orphans, missing digests (warnings, always reported), then every readable dataset's SHA-256."""
    recorded = header["integrity"]["arrays"]
    for path in recorded:
        if path not in datasets:
            ins.add("INTEGRITY_DIGEST_ORPHAN", f"integrity.arrays names {path}, which does not exist", path)
    for path, ds in sorted(datasets.items()):
        if path == "/header":
            continue
        if path not in recorded:
            ins.add("INTEGRITY_DIGEST_MISSING", f"{path} has no digest in integrity.arrays", path)
            continue
        if h5py.check_string_dtype(ds.dtype) is not None or ds.dtype.kind not in "iufb" or path in ins.unreadable:
            continue
        if dataset_digest(ds) != recorded[path]:
            ins.add("INTEGRITY_DIGEST_MISMATCH", f"{path} does not match its SHA-256 digest (file corrupted or "
                    "edited)", path)
