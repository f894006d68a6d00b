"""The HDF5 container of .nemap files: strict reading, checking and atomic writing.

This is the only module that touches h5py. It implements spec/0.1/nemap.md §3–§10: every
check below emits a stable code from ``nemap.codes``. Reading is strict (the first error
raises ``FormatError``); validation collects every issue (``Inspector(strict=False)``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
import struct
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import h5py
from h5py import h5pl, h5t
import jsonschema
import numpy as np

from nemap.format.codes import CODES, ERROR, INFO, WARNING
from nemap.format import evidence
from nemap.format.content import Layer, NeuralMapContent, Normalization, Regions
from nemap.format.errors import ArgumentError, FormatError
from nemap.format.files import atomic_output
from nemap.format.raw_attributes import vlen_lengths
from nemap.format.geometry import Geometry
from nemap.format.tiling import coverage_gaps

FORMAT_TAG = "nemap"
FORMAT_VERSION = (0, 2)  # the newest version this package reads and writes
VERSION_STRING = f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}"
BASE_VERSION_STRING = "0.1"  # what a file without extensions is written as (spec/0.2/nemap.md, R-VER-05)
FEATURE_GRID = "NEMAP_feature_grid"
FEATURE_GRID_PATH = f"/extensions/{FEATURE_GRID}/coefficients"
EVIDENCE_SCHEMA = "evidence"  # schema/evidence/header.schema.json: the header's evidence member (spec/0.2/nemap.md §5.1)
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({FEATURE_GRID})

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ALLOWED_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32"}

# Limits (spec §3.6), checked before anything of that size is allocated.
MAX_HEADER_BYTES = 16 * 2**20
MAX_REGIONS = 1_000_000
MAX_LAYERS = 64
MAX_WIDTH = 4096
MAX_GRID_VOXELS = 2**36
MAX_DATASET_ELEMENTS = 2**30
MAX_TOTAL_ELEMENTS = 2**31
MAX_HEADER_DEPTH = 64
MAX_MRC_HEADER_BYTES = 16 * 2**20
MAX_ROOT_STRING_BYTES = 64  # a root attribute longer than this holds no valid value; it is not read

REGION_DATASETS = ("/regions/bounds", "/regions/network_index", "/regions/constant_value")
SOURCE_DATASETS = ("/source/mrc_header", "/source/mrc_extended_header")
FREE_GROUPS = ("/extras", "/extensions")


def layer_paths(index: int) -> tuple[str, str]:
    """HDF5 paths of layer ``index``'s weight and bias datasets."""
    return f"/network/layer_{index:02d}/weight", f"/network/layer_{index:02d}/bias"


def load_schema(version: str = BASE_VERSION_STRING) -> dict[str, Any]:
    """The bundled JSON Schema of the header (never fetched over a network)."""
    text = resources.files("nemap.format").joinpath("schema", version, "header.schema.json").read_text("utf-8")
    return json.loads(text)


def parse_version(text: Any) -> tuple[int, int] | None:
    """"MAJOR.MINOR" → (major, minor); None if malformed."""
    if not isinstance(text, str):
        return None
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _canonical_bytes(array: Any) -> bytes:
    """The canonical value stream of values (R-INT-01): little-endian, C order, in their own dtype."""
    a = np.asarray(array)
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()


def digest(array: np.ndarray) -> str:
    """'sha256:<hex>' of the canonical value stream: little-endian, C order, declared dtype."""
    return "sha256:" + hashlib.sha256(_canonical_bytes(array)).hexdigest()


DIGEST_CHUNK_BYTES = 1 << 26  # 64 MiB: digests are computed one slab of the first axis at a time


def dataset_digest(ds: h5py.Dataset) -> str:
    """``digest`` of a dataset, read one slab of its first axis at a time (bounded memory)."""
    if ds.ndim == 0 or ds.size == 0:
        return digest(ds[()])
    row = max(1, ds.size // ds.shape[0]) * ds.dtype.itemsize
    step = max(1, DIGEST_CHUNK_BYTES // row)
    h = hashlib.sha256()
    for start in range(0, ds.shape[0], step):
        h.update(_canonical_bytes(ds[start:start + step]))
    return "sha256:" + h.hexdigest()


def _read_short_vlen_string(attr: Any) -> str:
    """A scalar variable-length string attribute read into a buffer of MAX_ROOT_STRING_BYTES + 1 bytes
    (libhdf5 truncates a longer value while converting), so that no copy of a huge value is made in Python."""
    mtype = h5t.C_S1.copy()
    mtype.set_size(MAX_ROOT_STRING_BYTES + 1)
    mtype.set_cset(attr.get_type().get_cset())
    buf = np.zeros((), dtype=f"S{MAX_ROOT_STRING_BYTES + 1}")
    attr.read(buf, mtype=mtype)
    raw = bytes(buf[()])
    if len(raw) > MAX_ROOT_STRING_BYTES:
        return f"<a string of more than {MAX_ROOT_STRING_BYTES} bytes>"
    return raw.decode("utf-8", "replace").rstrip("\x00")


def _address(obj: Any) -> tuple[Any, ...]:
    """Where an HDF5 object lives: (file number, object address), the same for every link to it."""
    info = h5py.h5o.get_info(obj.id)
    return (obj.id.fileno, info.addr)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in the header")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows binary64")
    return value


def _finite_int(text: str) -> int:
    value = int(text)
    if abs(value) >= 2**1024:
        raise ValueError(f"integer of {len(text)} digits overflows binary64")
    return value


def json_depth(value: Any) -> int:
    """How deep objects and arrays nest in ``value`` (a scalar is 0, ``{}`` is 1), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_header_json(text: str) -> Any:
    """Strict JSON (R-HDR-01): no NaN/Infinity, no number that overflows binary64, no duplicate keys,
    at most MAX_HEADER_DEPTH levels of nesting. Raises ValueError otherwise."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates,
                           parse_float=_finite_float, parse_int=_finite_int)
    except RecursionError:
        raise ValueError(f"objects and arrays nest deeper than {MAX_HEADER_DEPTH}") from None
    if json_depth(value) > MAX_HEADER_DEPTH:
        raise ValueError(f"objects and arrays nest deeper than {MAX_HEADER_DEPTH}")
    return value


@dataclass
class Issue:
    """One finding: a stable code, its severity, a message, and where (HDF5 path or JSON pointer)."""

    code: str
    severity: str
    message: str
    location: str = ""

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "location": self.location}


class _Stop(Exception):
    """Raised inside the inspector when nothing further can be checked."""


@dataclass
class Inspector:
    """Runs the checks of spec §3–§10 on one file, in order, recording issues.

    strict=True (the reader): the first error raises FormatError naming the file, the problem
    and the code. strict=False (the validator): all issues are collected in ``issues``.
    """

    path: Path
    strict: bool = True
    issues: list[Issue] = field(default_factory=list)
    header: dict[str, Any] | None = None
    file_version: tuple[int, int] | None = None
    unreadable: set[str] = field(default_factory=set)  # datasets whose values must not be read
    file: h5py.File | None = None
    datasets: dict[str, h5py.Dataset] = field(default_factory=dict)
    _root_lengths: dict[str, int] | None = None

    def add(self, code: str, message: str, location: str = "", fatal: bool = False) -> None:
        severity = CODES[code].severity
        self.issues.append(Issue(code, severity, message, location))
        if severity == ERROR and self.strict:
            raise FormatError(message, path=self.path, code=code)
        if fatal:
            raise _Stop()

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == ERROR]

    # -- stage 1: bytes on disk ------------------------------------------------------------
    def check_file(self) -> None:
        try:
            if not stat.S_ISREG(os.stat(self.path).st_mode):  # a FIFO or device would block or never end
                self.add("IO_CANNOT_OPEN", "not a regular file", "", fatal=True)
            with open(self.path, "rb") as fh:
                head = fh.read(9)
                if head[:8] != HDF5_SIGNATURE:
                    for off in (512, 1024, 2048, 4096):
                        fh.seek(off)
                        if fh.read(8) == HDF5_SIGNATURE:
                            self.add("HDF5_USER_BLOCK", f"HDF5 user block of {off} bytes (not allowed)", "/", fatal=True)
                    self.add("IO_NOT_HDF5", "not an HDF5 file (no HDF5 signature at byte 0)", "/", fatal=True)
                if len(head) > 8 and head[8] > 2:
                    self.add("HDF5_SUPERBLOCK_TOO_NEW",
                             f"HDF5 superblock version {head[8]} (must be <= 2 to be readable by HDF5 1.8)", "/")
        except OSError as exc:
            self.add("IO_CANNOT_OPEN", f"cannot read: {exc.strerror or exc}", "", fatal=True)

    def open_hdf5(self) -> h5py.File:
        try:
            return h5py.File(self.path, "r")
        except OSError as exc:
            self.add("IO_NOT_HDF5", f"HDF5 library cannot open it ({str(exc).splitlines()[0]})", "/", fatal=True)
            raise  # unreachable

    # -- stage 2: identification -----------------------------------------------------------
    def _root_string(self, f: h5py.File, name: str) -> str | None:
        if name not in f.attrs:
            return None
        attr = f.attrs.get_id(name)
        if attr.shape not in ((), None) or h5py.check_string_dtype(attr.dtype) is None:
            self.add("STRING_NOT_UTF8", f"root attribute {name} must be a scalar string", f"/@{name}")
            return None
        if h5py.check_string_dtype(attr.dtype).length is not None:  # fixed length: its size is its datatype's
            if attr.dtype.itemsize > MAX_ROOT_STRING_BYTES:
                return f"<a {attr.dtype.itemsize}-byte string>"
            value = f.attrs[name]
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        declared = self._vlen_lengths(f).get(name)
        if declared is not None and declared > MAX_ROOT_STRING_BYTES:  # variable length: told by its descriptor
            return f"<a {declared}-byte string>"
        return _read_short_vlen_string(attr)

    def _vlen_lengths(self, f: h5py.File) -> dict[str, int]:
        """Byte lengths of the root group's variable-length string attributes, from the raw object header
        (``nemap.format.raw_attributes``; {} where it cannot tell, e.g. dense attribute storage)."""
        if self._root_lengths is None:
            offset_size, length_size = f.id.get_create_plist().get_sizes()
            with open(self.path, "rb") as fh:
                found = vlen_lengths(fh, _address(f)[1], offset_size, length_size)
            self._root_lengths = found or {}
        return self._root_lengths

    def check_identity(self, f: h5py.File) -> None:
        tag = self._root_string(f, "nemap_format")
        if tag != FORMAT_TAG:
            self.add("FORMAT_TAG_MISSING",
                     "not a .nemap file (root attribute nemap_format is "
                     + ("missing)" if tag is None else f"{tag!r}, expected 'nemap')"), "/@nemap_format", fatal=True)
        text = self._root_string(f, "nemap_version")
        if text is None:
            self.add("VERSION_MISSING", "root attribute nemap_version is missing", "/@nemap_version", fatal=True)
        version = parse_version(text)
        if version is None:
            self.add("VERSION_MALFORMED", f"nemap_version {text!r} is not MAJOR.MINOR", "/@nemap_version", fatal=True)
            return
        self.file_version = version
        if version[0] != FORMAT_VERSION[0]:
            self.add("VERSION_MAJOR_UNSUPPORTED",
                     f"format version {text} is not supported (this reader implements {VERSION_STRING})",
                     "/@nemap_version", fatal=True)
        if version[1] > FORMAT_VERSION[1]:
            self.add("VERSION_MINOR_NEWER",
                     f"format version {text} is newer than {VERSION_STRING}; unknown members are ignored",
                     "/@nemap_version")

    # -- stage 3: HDF5 object rules --------------------------------------------------------
    def walk(self, f: h5py.File) -> dict[str, h5py.Dataset]:
        """Check every link and object; return the datasets by absolute path."""
        datasets: dict[str, h5py.Dataset] = {}
        plist = f.id.get_create_plist()
        if plist.get_userblock() != 0:
            self.add("HDF5_USER_BLOCK", f"HDF5 user block of {plist.get_userblock()} bytes (not allowed)", "/")
        for name in f.attrs:
            if name not in ("nemap_format", "nemap_version"):
                self.add("HDF5_FORBIDDEN_ATTRIBUTE", f"attribute {name!r} on / (only nemap_format and nemap_version are allowed)", f"/@{name}")
        stack: list[tuple[str, h5py.Group]] = [("", f)]
        seen = {_address(f)}
        while stack:
            prefix, group = stack.pop()
            for name in group:
                obj = self._follow(group, name, f"{prefix}/{name}", seen)
                if isinstance(obj, h5py.Group):
                    stack.append((f"{prefix}/{name}", obj))
                elif isinstance(obj, h5py.Dataset):
                    datasets[f"{prefix}/{name}"] = obj
        return datasets

    def _follow(self, group: h5py.Group, name: str, path: str, seen: set[tuple[Any, ...]]) -> Any:
        """The object a link leads to, checked (R-HDF-03 … -05); None for a link not to follow."""
        link = group.get(name, getlink=True)
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            kind = "soft" if isinstance(link, h5py.SoftLink) else "external"
            self.add("HDF5_FORBIDDEN_LINK", f"{kind} link at {path} (not allowed)", path)
            return None
        obj = group.get(name)
        address = _address(obj)
        if address in seen:  # a second hard link: an alias, or a cycle that would never end
            self.add("HDF5_FORBIDDEN_LINK", f"{path} links an object that is already linked elsewhere "
                     "(one hard link per object)", path)
            return None
        seen.add(address)
        for attr in obj.attrs:
            self.add("HDF5_FORBIDDEN_ATTRIBUTE", f"attribute {attr!r} on {path} (not allowed)", f"{path}/@{attr}")
        if isinstance(obj, h5py.Dataset):
            self._check_dataset_storage(path, obj)
        elif not isinstance(obj, h5py.Group):
            self.add("HDF5_FORBIDDEN_OBJECT", f"{path} is a named datatype (not allowed)", path)
        return obj

    def _check_dataset_storage(self, path: str, ds: h5py.Dataset) -> None:
        before = len(self.issues)
        self._check_storage_rules(path, ds)
        if len(self.issues) > before:  # a forbidden filter or storage: its values are never read
            self.unreadable.add(path)

    def _check_storage_rules(self, path: str, ds: h5py.Dataset) -> None:
        if ds.is_virtual:
            self.add("HDF5_FORBIDDEN_OBJECT", f"{path} is a virtual dataset (not allowed)", path)
        if ds.external:
            self.add("HDF5_FORBIDDEN_OBJECT", f"{path} uses external storage (not allowed)", path)
        if h5py.check_ref_dtype(ds.dtype) is not None:
            self.add("HDF5_FORBIDDEN_OBJECT", f"{path} holds references (not allowed)", path)
        dcpl = ds.id.get_create_plist()
        for i in range(dcpl.get_nfilters()):
            fid, _, _, fname = dcpl.get_filter(i)
            if fid not in ALLOWED_FILTERS:
                label = fname.decode("ascii", "replace") if isinstance(fname, bytes) else str(fname)
                self.add("FILTER_NOT_ALLOWED",
                         f"{path} uses HDF5 filter {fid} ({label}); only deflate, shuffle and fletcher32 are allowed", path)

    # -- stage 4: the header ---------------------------------------------------------------
    def read_header(self, f: h5py.File, datasets: dict[str, h5py.Dataset]) -> dict[str, Any]:
        ds = datasets.get("/header")
        if ds is None:
            self.add("HEADER_MISSING", "dataset /header is missing", "/header", fatal=True)
        info = h5py.check_string_dtype(ds.dtype)
        if info is None or ds.shape != ():
            self.add("STRING_NOT_UTF8", "/header must be a scalar UTF-8 string dataset", "/header", fatal=True)
        size = self._string_bytes(ds, info)
        if size is not None and size > MAX_HEADER_BYTES:
            self.add("HEADER_TOO_LARGE", f"header is {size} bytes (limit {MAX_HEADER_BYTES})", "/header", fatal=True)
        raw = ds[()]
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            header = parse_header_json(text.rstrip("\x00"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.add("HEADER_NOT_JSON", f"header is not valid JSON ({exc})", "/header", fatal=True)
        if not isinstance(header, dict):
            self.add("HEADER_NOT_JSON", "header is not a JSON object", "/header", fatal=True)
        self.header = header
        return header

    def _string_bytes(self, ds: h5py.Dataset, info: Any) -> int | None:
        """Length in bytes of a scalar string dataset, found without reading the string."""
        if info.length is not None:
            return int(info.length)
        offset = ds.id.get_offset()
        if offset is None:  # compact or empty storage: bounded by the file size
            size = os.path.getsize(self.path)
            return size if size > MAX_HEADER_BYTES else None
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            prefix = fh.read(4)
        return struct.unpack("<I", prefix)[0] if len(prefix) == 4 else None

    def check_header(self, header: dict[str, Any]) -> None:
        version = parse_version(header.get("nemap_version"))
        if header.get("nemap_version") is not None and version != self.file_version:
            self.add("VERSION_MISMATCH",
                     f"header nemap_version {header.get('nemap_version')!r} disagrees with the root attribute "
                     f"{self.file_version[0]}.{self.file_version[1]}" if self.file_version else "",
                     "/header#/nemap_version")
        self._check_extensions(header)
        self._check_evidence_member(header)
        validator = jsonschema.Draft202012Validator(load_schema())
        errors = sorted(validator.iter_errors(header), key=lambda e: list(e.absolute_path))
        for err in errors:
            pointer = "/" + "/".join(str(p) for p in err.absolute_path)
            self.add("SCHEMA_VIOLATION", f"header {pointer}: {err.message}", f"/header#{pointer}")
        if errors:
            raise _Stop()
        self._check_semantics(header)

    def _check_extensions(self, header: dict[str, Any]) -> None:
        """§4: required extensions must be declared and implemented; optional ones are ignored."""
        used = header.get("extensions_used", []) or []
        required = header.get("extensions_required", []) or []
        if not (isinstance(used, list) and isinstance(required, list)):
            return  # the schema check reports it
        for name in required:
            if name not in used:
                self.add("EXTENSION_UNDECLARED", f"extension {name!r} is required but not in extensions_used",
                         "/header#/extensions_required")
            if name not in SUPPORTED_EXTENSIONS:
                self.add("EXTENSION_REQUIRED_UNSUPPORTED", f"requires extension {name!r}, which this reader does not implement",
                         "/header#/extensions_required", fatal=True)
        for name in used:
            if name not in required and name not in SUPPORTED_EXTENSIONS:
                self.add("EXTENSION_UNSUPPORTED", f"ignoring optional extension {name!r}", "/header#/extensions_used")
        if FEATURE_GRID in used:
            self._check_feature_grid_member(header, required)

    def _check_feature_grid_member(self, header: dict[str, Any], required: list[Any]) -> None:
        """NEMAP_feature_grid README §2: required, in a 0.2 file, with a valid header member."""
        if FEATURE_GRID not in required or (self.file_version or (0, 0)) < (0, 2):
            self.add("FEATURE_GRID_INVALID", f"{FEATURE_GRID} must be listed in extensions_required of a file of "
                     "version 0.2 or later", "/header#/extensions_required")
        member = header.get("extensions", {}).get(FEATURE_GRID) if isinstance(header.get("extensions"), dict) else None
        validator = jsonschema.Draft202012Validator(load_schema(FEATURE_GRID))
        for err in validator.iter_errors(member):
            pointer = "/".join(str(p) for p in err.absolute_path)
            self.add("SCHEMA_VIOLATION", f"header /extensions/{FEATURE_GRID}/{pointer}: {err.message}",
                     f"/header#/extensions/{FEATURE_GRID}/{pointer}", fatal=True)

    def _check_evidence_member(self, header: dict[str, Any]) -> None:
        """spec/0.2/nemap.md §5.1 (R-EVD-01): ``evidence`` only in a file of version 0.2 or later, valid against its schema."""
        if "evidence" not in header:
            return
        if (self.file_version or (0, 0)) < (0, 2):
            self.add("EVIDENCE_INVALID", "the evidence member needs a file of version 0.2 or later", "/header#/evidence")
        validator = jsonschema.Draft202012Validator(load_schema(EVIDENCE_SCHEMA))
        for err in validator.iter_errors(header["evidence"]):
            pointer = "/".join(str(p) for p in err.absolute_path)
            self.add("SCHEMA_VIOLATION", f"header /evidence/{pointer}: {err.message}", f"/header#/evidence/{pointer}",
                     fatal=True)

    def check_evidence_values(self, header: dict[str, Any], datasets: dict[str, h5py.Dataset]) -> None:
        """R-EVD-02 to R-EVD-04: the values of the evidence arrays (small: read whole)."""
        member = header.get("evidence")
        if not member:
            return
        arrays = {p: datasets[p][()] for p in evidence.expected_datasets(member, header["geometry"]["grid_shape"])
                  if p in datasets and p not in self.unreadable}
        for path, message in evidence.problems(member, arrays, header["geometry"]["grid_shape"]):
            self.add("EVIDENCE_INVALID", message, path)

    def _check_semantics(self, header: dict[str, Any]) -> None:
        geo = header["geometry"]
        shape = geo["grid_shape"]
        if int(np.prod(np.asarray(shape, dtype=np.float64))) > MAX_GRID_VOXELS:
            self.add("LIMIT_EXCEEDED", f"grid of {shape} voxels exceeds the limit of 2^36", "/header#/geometry/grid_shape")
        a = np.asarray(geo["index_to_physical"], dtype=np.float64)
        lin = a[:, :3]
        if (np.any(lin[~np.eye(3, dtype=bool)] != 0) or np.any(np.diag(lin) <= 0)
                or not np.array_equal(np.diag(lin), np.asarray(geo["voxel_size"], dtype=np.float64))
                or not np.array_equal(a[:, 3], np.asarray(geo["origin"], dtype=np.float64))):
            self.add("GEOMETRY_INCONSISTENT",
                     "index_to_physical must be diagonal with voxel_size on the diagonal and origin as translation",
                     "/header#/geometry/index_to_physical")
        norm = header["normalization"]
        if not norm["value_max"] > norm["value_min"]:
            self.add("NORMALIZATION_INVALID", "normalization value_max must be greater than value_min",
                     "/header#/normalization")
        layers = header["network"]["layers"]
        inputs = _network_inputs(header)
        chain = [inputs] + [layer["out_features"] for layer in layers]
        ins = [layer["in_features"] for layer in layers]
        if ins != chain[:-1] or chain[-1] != 1:
            self.add("NETWORK_SHAPE_CHAIN_BROKEN",
                     f"layer sizes {[(layer['in_features'], layer['out_features']) for layer in layers]} do not chain "
                     f"{inputs} → … → 1", "/header#/network/layers")
        if header["regions"]["network_count"] > header["regions"]["count"]:
            self.add("REGION_NETWORK_INDEX_INVALID", "regions.network_count exceeds regions.count", "/header#/regions")

    # -- stage 5: datasets against the header ----------------------------------------------
    def expected_datasets(self, header: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
        """Required dataset path → (shape, dtype kind as numpy str)."""
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
        grid = feature_grid_member(header)
        if grid is not None:
            out[FEATURE_GRID_PATH] = ((n, grid["channels"], *grid["node_shape"]), "<f4")
        if header.get("evidence"):
            out.update(evidence.expected_datasets(header["evidence"], header["geometry"]["grid_shape"]))
        return out

    def check_datasets(self, header: dict[str, Any], datasets: dict[str, h5py.Dataset]) -> bool:
        """Presence, datatype and shape of every dataset; True when the required ones can be read."""
        before = len(self.errors)
        expected = self.expected_datasets(header)
        for path, (shape, dtype) in expected.items():
            ds = datasets.get(path)
            if ds is None:
                self.add("DATASET_MISSING", f"required dataset {path} is missing", path)
                continue
            self._check_dtype(path, ds, np.dtype(dtype))
            if not _shape_matches(tuple(ds.shape), shape):
                self.add("DATASET_SHAPE_MISMATCH", f"{path} has shape {tuple(ds.shape)}, the header implies {shape}", path)
        for path in SOURCE_DATASETS:
            ds = datasets.get(path)
            if ds is not None:
                self._check_dtype(path, ds, np.dtype("u1"))
                if ds.ndim != 1 or ds.size > MAX_MRC_HEADER_BYTES:
                    self.add("DATASET_SHAPE_MISMATCH", f"{path} must be a 1-D byte array of at most 16 MiB", path)
        known = set(expected) | set(SOURCE_DATASETS) | {"/header"}
        newer = self.file_version is not None and self.file_version[1] > FORMAT_VERSION[1]
        self._check_sizes(datasets)
        for path in datasets:
            if path not in known and not path.startswith(FREE_GROUPS) and not newer:
                self.add("UNKNOWN_OBJECT", f"{path} is not defined by format {VERSION_STRING}", path)
        return len(self.errors) == before

    def _check_sizes(self, datasets: dict[str, h5py.Dataset]) -> None:
        """§3.6: elements per dataset and in all datasets together, from their declared shapes (nothing
        is read); a dataset over a limit is never read."""
        total = sum(int(ds.size) for ds in datasets.values())
        if total > MAX_TOTAL_ELEMENTS:
            self.unreadable.update(datasets)
            self.add("LIMIT_EXCEEDED", f"the datasets hold {total} elements together (limit 2^31)", "/")
        for path, ds in datasets.items():
            if ds.size > MAX_DATASET_ELEMENTS:
                self.unreadable.add(path)
                self.add("LIMIT_EXCEEDED", f"{path} has {ds.size} elements (limit 2^30)", path)

    def _check_dtype(self, path: str, ds: h5py.Dataset, want: np.dtype) -> None:
        got = ds.dtype
        if got.kind != want.kind or got.itemsize != want.itemsize:
            self.add("DTYPE_NOT_ALLOWED", f"{path} has datatype {got}, expected {want.str}", path)
        elif got.itemsize > 1 and got.byteorder == ">":
            self.add("DTYPE_NOT_ALLOWED", f"{path} is big-endian; the format requires little-endian {want.str}", path)

    # -- stage 6: values -------------------------------------------------------------------
    def check_regions(self, header: dict[str, Any], bounds: np.ndarray, net_index: np.ndarray,
                      constants: np.ndarray, coverage: bool) -> None:
        shape = np.asarray(header["geometry"]["grid_shape"], dtype=np.int64)
        first, last = bounds[:, 0, :], bounds[:, 1, :]
        bad = np.nonzero(np.any((first < 0) | (last > shape - 1) | (first > last), axis=1))[0]
        for r in bad[:5]:
            self.add("REGION_OUT_OF_GRID",
                     f"region {r} bounds {bounds[r, 0].tolist()}..{bounds[r, 1].tolist()} are outside the grid {shape.tolist()}",
                     "/regions/bounds")
        degenerate = np.nonzero(np.any((first == last) & (shape > 1), axis=1))[0]
        for r in degenerate[:5]:
            self.add("REGION_DEGENERATE", f"region {r} spans a single voxel on an axis where the grid has more", "/regions/bounds")
        n = header["regions"]["network_count"]
        used = net_index[net_index >= 0]
        if (np.any(net_index < -1) or used.size != n
                or not np.array_equal(np.sort(used), np.arange(n, dtype=np.int64))):
            self.add("REGION_NETWORK_INDEX_INVALID",
                     f"network_index must use each slot 0..{n - 1} exactly once and -1 for constant regions",
                     "/regions/network_index")
        if not np.all(np.isfinite(constants)):
            self.add("NUMERIC_NONFINITE", "NaN or infinite value in /regions/constant_value", "/regions/constant_value")
        grid = feature_grid_member(header)
        if grid is not None and len(bad) == 0:
            spans = (last - first)[net_index >= 0]
            if np.any(spans + grid["order"] + 1 > np.asarray(grid["node_shape"])):
                self.add("FEATURE_GRID_INVALID", f"node_shape {grid['node_shape']} is smaller than a region's extent "
                         f"+ {grid['order'] + 1} nodes", f"/header#/extensions/{FEATURE_GRID}/node_shape")
        if coverage and len(bad) == 0 and len(degenerate) == 0:
            gaps = coverage_gaps(bounds, shape)
            if len(gaps):
                self.add("REGION_COVERAGE_GAP",
                         f"{len(gaps)} test point(s) of the grid box lie in no region's support, e.g. index {gaps[0].tolist()}",
                         "/regions/bounds")

    def check_finite(self, path: str, values: np.ndarray) -> None:
        if not np.all(np.isfinite(values)):
            count = int(np.count_nonzero(~np.isfinite(values)))
            self.add("NUMERIC_NONFINITE", f"{count} NaN or infinite value(s) in {path}", path)

    def check_digests(self, header: dict[str, Any], datasets: dict[str, h5py.Dataset]) -> None:
        recorded = header["integrity"]["arrays"]
        for path in recorded:
            if path not in datasets:
                self.add("INTEGRITY_DIGEST_ORPHAN", f"integrity.arrays names {path}, which does not exist", path)
        for path, ds in sorted(datasets.items()):
            if path == "/header":
                continue
            if path not in recorded:
                self.add("INTEGRITY_DIGEST_MISSING", f"{path} has no digest in integrity.arrays", path)
                continue
            if h5py.check_string_dtype(ds.dtype) is not None or ds.dtype.kind not in "iufb" or path in self.unreadable:
                continue
            if dataset_digest(ds) != recorded[path]:
                self.add("INTEGRITY_DIGEST_MISMATCH", f"{path} does not match its SHA-256 digest (file corrupted or edited)", path)


def _shape_matches(got: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """Shapes agree; −1 in ``want`` stands for any length ≥ 2 (the shells of an FSC table)."""
    return len(got) == len(want) and all(g == w or (w == -1 and g >= 2) for g, w in zip(got, want))


# What h5py raises when the bytes of a file are damaged (libhdf5 errors surface as OSError, RuntimeError,
# KeyError or ValueError; damaged names and strings as UnicodeDecodeError; absurd nesting as RecursionError).
HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError, UnicodeDecodeError,
               RecursionError, OverflowError)


@contextlib.contextmanager
def plugins_disabled() -> Iterator[None]:
    """Empty libhdf5's plugin search path while nemap reads, so that no filter plugin is ever loaded
    (R-HDF-09: only built-in filters are allowed; a plugin is code from wherever HDF5_PLUGIN_PATH points)."""
    saved = [h5pl.get(i) for i in range(h5pl.size())]
    for _ in saved:
        h5pl.remove(0)
    try:
        yield
    finally:
        for entry in saved:
            h5pl.append(entry)


def hdf5_failure(exc: BaseException) -> str:
    """One line saying what libhdf5 could not read."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"the HDF5 library cannot read part of the file ({type(exc).__name__}: {text[:200]})"


def inspect(path: str | os.PathLike, *, strict: bool, values: bool, verify: bool) -> tuple[Inspector, h5py.File | None, dict[str, h5py.Dataset]]:
    """Run the checks in order. Returns the inspector, the open file (caller closes) and its datasets.

    values: also check region values and weight finiteness (reads every weight);
    verify: also check every SHA-256 digest. A file that libhdf5 fails to read anywhere is IO_NOT_HDF5.
    """
    ins = Inspector(Path(path), strict=strict)
    try:
        with plugins_disabled():
            ins.check_file()
            ins.file = ins.open_hdf5()
            try:
                _check_contents(ins, ins.file, values, verify)
            except HDF5_ERRORS as exc:
                ins.add("IO_NOT_HDF5", hdf5_failure(exc), "/", fatal=True)
    except _Stop:
        pass
    except FormatError:
        if ins.file is not None:
            ins.file.close()
        raise
    return ins, ins.file, ins.datasets


def _check_contents(ins: Inspector, f: h5py.File, values: bool, verify: bool) -> None:
    ins.check_identity(f)
    ins.datasets = ins.walk(f)
    header = ins.read_header(f, ins.datasets)
    ins.check_header(header)
    required = set(ins.expected_datasets(header))
    readable = ins.check_datasets(header, ins.datasets) and not (required & ins.unreadable)
    if readable:
        regions = [ins.datasets[p][()] for p in REGION_DATASETS]
        ins.check_regions(header, *regions, coverage=values)
    if values and readable:
        for i in range(len(header["network"]["layers"])):
            for p in layer_paths(i):
                ins.check_finite(p, ins.datasets[p][()])
        if FEATURE_GRID_PATH in required:
            ins.check_finite(FEATURE_GRID_PATH, ins.datasets[FEATURE_GRID_PATH][()])
        ins.check_evidence_values(header, ins.datasets)
    if verify:
        ins.check_digests(header, ins.datasets)


# ---------------------------------------------------------------------------------------------
# Writing


def build_header(content: NeuralMapContent, digests: dict[str, str]) -> dict[str, Any]:
    """The JSON header of ``content`` (spec §5), given the digests of its datasets."""
    g = content.geometry
    geometry: dict[str, Any] = {
        "grid_shape": list(g.grid_shape),
        "index_to_physical": g.index_to_physical.tolist(),
        "voxel_size": list(g.voxel_size),
        "origin": list(g.origin),
    }
    if g.source:
        geometry["source"] = g.source
    extensions = [FEATURE_GRID] if content.feature_grid is not None else []
    header: dict[str, Any] = {
        "nemap_version": file_version(content),
        "extensions_used": extensions,
        "extensions_required": extensions,
        "geometry": geometry,
    }
    if content.feature_grid is not None:
        channels, *nodes = content.feature_grid.shape[1:]
        header["extensions"] = {FEATURE_GRID: {"order": int(content.feature_grid_order), "channels": int(channels),
                                               "node_shape": [int(k) for k in nodes]}}
    if content.resolution is not None:
        header["resolution"] = content.resolution
    if content.contour_level is not None:
        header["contour_level"] = content.contour_level
    if content.evidence is not None and content.evidence.member():
        header["evidence"] = content.evidence.member()
    header["normalization"] = content.normalization.to_json()
    regions: dict[str, Any] = {
        "count": content.regions.count,
        "network_count": content.regions.network_count,
        "blend": {"method": "smoothstep-product", "ramp_width": float(content.regions.ramp_width)},
    }
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
    if content.feature_grid is not None:
        arrays[FEATURE_GRID_PATH] = np.ascontiguousarray(content.feature_grid, dtype="<f4")
    if content.evidence is not None:
        arrays.update(content.evidence.arrays())
    if content.source_mrc_header is not None:
        arrays["/source/mrc_header"] = np.frombuffer(content.source_mrc_header, dtype="u1")
    return arrays


def write(path: str | os.PathLike, content: NeuralMapContent, *, force: bool = False,
          compression: int | None = None) -> dict[str, Any]:
    """Write ``content`` as a .nemap file; returns the header written.

    The file is written to a temporary file beside the target, checked, and renamed into place
    (``nemap.format.files.atomic_output``), so the target appears only when complete.
    compression: deflate level 1–9 (with shuffle) or None.
    """
    if len(content.layers) != len(content.weights) or len(content.weights) != len(content.biases):
        raise ArgumentError("one weight and one bias array per layer", parameter="content")
    arrays = content_arrays(content)
    digests = {p: digest(a) for p, a in arrays.items()}
    header = build_header(content, digests)
    text = json.dumps(header, ensure_ascii=False, allow_nan=False)
    with atomic_output(path, force=force) as tmp:
        with h5py.File(tmp, "w", libver=("earliest", "v108")) as f:
            f.attrs["nemap_format"] = FORMAT_TAG
            f.attrs["nemap_version"] = header["nemap_version"]
            f.create_dataset("header", data=text, dtype=h5py.string_dtype("utf-8"))
            for p, a in arrays.items():
                opts: dict[str, Any] = {}
                if p.startswith(("/network/", FEATURE_GRID_PATH)) and a.shape[0] > 0:
                    opts["chunks"] = (1,) + a.shape[1:]
                    if compression:
                        opts.update(compression="gzip", compression_opts=int(compression), shuffle=True)
                f.create_dataset(p, data=a, **opts)
        ins, f2, _ = inspect(tmp, strict=True, values=True, verify=False)
        if f2 is not None:
            f2.close()
    return header


def file_version(content: NeuralMapContent) -> str:
    """The lowest version that describes ``content``: 0.2 when it uses NEMAP_feature_grid or carries
    resolution evidence, else 0.1."""
    newer = content.feature_grid is not None or (content.evidence is not None and bool(content.evidence.member()))
    return VERSION_STRING if newer else BASE_VERSION_STRING


def feature_grid_member(header: dict[str, Any]) -> dict[str, Any] | None:
    """The header's NEMAP_feature_grid member when the file uses the extension, else None."""
    if FEATURE_GRID not in (header.get("extensions_used") or []):
        return None
    return header["extensions"][FEATURE_GRID]


def _network_inputs(header: dict[str, Any]) -> int:
    """Inputs of the first layer: 3 (§8.2), or C − 1 + 6 with NEMAP_feature_grid (its README §3)."""
    grid = feature_grid_member(header)
    return 3 if grid is None else int(grid["channels"]) + 5


def content_from_header(header: dict[str, Any], bounds: np.ndarray, net_index: np.ndarray,
                        constants: np.ndarray) -> tuple[Geometry, Normalization, Regions, list[Layer]]:
    """Typed pieces of a checked header (the weights stay in the file until needed)."""
    geo = header["geometry"]
    geometry = Geometry.from_affine(geo["index_to_physical"], geo["grid_shape"], geo.get("source", {}))
    normalization = Normalization.from_json(header["normalization"])
    reg = header["regions"]
    regions = Regions(bounds, net_index, constants, float(reg["blend"]["ramp_width"]), reg.get("tiling", {}))
    layers = [Layer.from_json(d) for d in header["network"]["layers"]]
    return geometry, normalization, regions, layers


__all__ = [
    "FORMAT_VERSION", "VERSION_STRING", "Inspector", "Issue", "inspect", "write", "digest",
    "load_schema", "layer_paths", "content_from_header", "feature_grid_member", "FEATURE_GRID_PATH", "ERROR", "WARNING", "INFO",
]
