"""The checks of a file's bytes and HDF5 objects (spec/0.1/nemap.md §3–§4), and the record of findings they
share with the header and dataset checks (``header_checks``, ``dataset_checks``).

An :class:`Inspector` runs on one file. strict=True (the reader): the first error raises FormatError naming
the file, the problem and the code. strict=False (the validator): every finding is kept in ``issues``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nemap.errors import FormatError
from nemap.format.codes import CODES, ERROR
from nemap.format.hdf5 import address, read_short_vlen_string
from nemap.format.limits import (
    ALLOWED_FILTERS,
    FORMAT_TAG,
    FORMAT_VERSION,
    HDF5_SIGNATURE,
    MAX_ROOT_STRING_BYTES,
    VERSION_STRING,
    parse_version,
)
from nemap.format.raw_attributes import vlen_lengths


@dataclass
class Issue:
    """One finding: a stable code, its severity, a message, and where (HDF5 path or JSON pointer)."""

    code: str
    severity: str
    message: str
    location: str = ""

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "location": self.location}


class Stop(Exception):
    """Raised inside the checks when nothing further can be checked."""


@dataclass
class Inspector:
    """One file under inspection: what was found so far and what later checks need (header, version, datasets,
    the datasets whose values must not be read)."""

    path: Path
    strict: bool = True
    issues: list[Issue] = field(default_factory=list)
    header: dict[str, Any] | None = None
    file_version: tuple[int, int] | None = None
    unreadable: set[str] = field(default_factory=set)
    file: h5py.File | None = None
    datasets: dict[str, h5py.Dataset] = field(default_factory=dict)
    _root_lengths: dict[str, int] | None = None

    def add(self, code: str, message: str, location: str = "", fatal: bool = False) -> None:
        """Record a finding; raise FormatError for an error when strict, Stop when nothing more can be checked."""
        severity = CODES[code].severity
        self.issues.append(Issue(code, severity, message, location))
        if severity == ERROR and self.strict:
            raise FormatError(message, path=self.path, code=code)
        if fatal:
            raise Stop()

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == ERROR]

    def check_finite(self, path: str, values: np.ndarray) -> None:
        if not np.all(np.isfinite(values)):
            count = int(np.count_nonzero(~np.isfinite(values)))
            self.add("NUMERIC_NONFINITE", f"{count} NaN or infinite value(s) in {path}", path)

    # -- stage 1: bytes on disk ------------------------------------------------------------
    def check_file(self) -> None:
        try:
            if not stat.S_ISREG(os.stat(self.path).st_mode):  # a FIFO or device would block or never end
                self.add("IO_CANNOT_OPEN", "not a regular file", "", fatal=True)
            with open(self.path, "rb") as fh:
                head = fh.read(9)
                if head[:8] != HDF5_SIGNATURE:
                    self._user_block(fh)
                    self.add("IO_NOT_HDF5", "not an HDF5 file (no HDF5 signature at byte 0)", "/", fatal=True)
                if len(head) > 8 and head[8] > 2:
                    self.add("HDF5_SUPERBLOCK_TOO_NEW",
                             f"HDF5 superblock version {head[8]} (must be <= 2 to be readable by HDF5 1.8)", "/")
        except OSError as exc:
            self.add("IO_CANNOT_OPEN", f"cannot read: {exc.strerror or exc}", "", fatal=True)

    def _user_block(self, fh: Any) -> None:
        for off in (512, 1024, 2048, 4096):
            fh.seek(off)
            if fh.read(8) == HDF5_SIGNATURE:
                self.add("HDF5_USER_BLOCK", f"HDF5 user block of {off} bytes (not allowed)", "/", fatal=True)

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
        return read_short_vlen_string(attr)

    def _vlen_lengths(self, f: h5py.File) -> dict[str, int]:
        """Byte lengths of the root group's variable-length string attributes, from the raw object header
        (``nemap.format.raw_attributes``; {} where it cannot tell, e.g. dense attribute storage)."""
        if self._root_lengths is None:
            offset_size, length_size = f.id.get_create_plist().get_sizes()
            with open(self.path, "rb") as fh:
                found = vlen_lengths(fh, address(f)[1], offset_size, length_size)
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
        """Check every link and object; return the datasets by absolute path. Links are visited in the order
        of their names (byte order of UTF-8), depth first, so that of two hard links to one object the one
        that comes later in that order is the one reported (R-HDF-03)."""
        datasets: dict[str, h5py.Dataset] = {}
        plist = f.id.get_create_plist()
        if plist.get_userblock() != 0:
            self.add("HDF5_USER_BLOCK", f"HDF5 user block of {plist.get_userblock()} bytes (not allowed)", "/")
        for name in f.attrs:
            if name not in ("nemap_format", "nemap_version"):
                self.add("HDF5_FORBIDDEN_ATTRIBUTE", f"attribute {name!r} on / (only nemap_format and "
                         "nemap_version are allowed)", f"/@{name}")
        seen = {address(f)}
        self._walk_group(f, "", seen, datasets)
        return datasets

    def _walk_group(self, group: h5py.Group, prefix: str, seen: set[tuple[Any, ...]],
                    datasets: dict[str, h5py.Dataset]) -> None:
        """Depth first, names in byte order: every link is checked in the byte order of its full path."""
        stack: list[tuple[str, h5py.Group, list[str]]] = [(prefix, group, _sorted_names(group))]
        while stack:
            prefix, group, names = stack[-1]
            if not names:
                stack.pop()
                continue
            name = names.pop(0)
            obj = self._follow(group, name, f"{prefix}/{name}", seen)
            if isinstance(obj, h5py.Group):
                stack.append((f"{prefix}/{name}", obj, _sorted_names(obj)))
            elif isinstance(obj, h5py.Dataset):
                datasets[f"{prefix}/{name}"] = obj

    def _follow(self, group: h5py.Group, name: str, path: str, seen: set[tuple[Any, ...]]) -> Any:
        """The object a link leads to, checked (R-HDF-03 … -05); None for a link not to follow."""
        link = group.get(name, getlink=True)
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            kind = "soft" if isinstance(link, h5py.SoftLink) else "external"
            self.add("HDF5_FORBIDDEN_LINK", f"{kind} link at {path} (not allowed)", path)
            return None
        obj = group.get(name)
        where = address(obj)
        if where in seen:  # a second hard link: an alias, or a cycle that would never end
            self.add("HDF5_FORBIDDEN_LINK", f"{path} links an object that is already linked elsewhere "
                     "(one hard link per object)", path)
            return None
        seen.add(where)
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
                         f"{path} uses HDF5 filter {fid} ({label}); only deflate, shuffle and fletcher32 are allowed",
                         path)


def _sorted_names(group: h5py.Group) -> list[str]:
    return sorted(group, key=lambda n: n.encode("utf-8"))
