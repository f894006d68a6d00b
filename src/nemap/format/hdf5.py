"""HDF5 helpers shared by reading, validating and writing: digests of datasets, the object address that
finds aliases, short reads of root attributes, and libhdf5 kept from loading filter plugins."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np
from h5py import h5pl, h5t

from nemap.format.limits import MAX_ROOT_STRING_BYTES

# What h5py raises when the bytes of a file are damaged (libhdf5 errors surface as OSError, RuntimeError,
# KeyError or ValueError; damaged names and strings as UnicodeDecodeError; absurd nesting as RecursionError).
HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError, UnicodeDecodeError,
               RecursionError, OverflowError)

DIGEST_CHUNK_BYTES = 1 << 26  # 64 MiB: digests are computed one slab of the first axis at a time


def canonical_bytes(array: Any) -> bytes:
    """The canonical value stream of values (R-INT-01): little-endian, C order, in their own dtype."""
    a = np.asarray(array)
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()


def digest(array: np.ndarray) -> str:
    """'sha256:<hex>' of the canonical value stream: little-endian, C order, declared dtype."""
    return "sha256:" + hashlib.sha256(canonical_bytes(array)).hexdigest()


def dataset_digest(ds: h5py.Dataset) -> str:
    """``digest`` of a dataset, read one slab of its first axis at a time (bounded memory)."""
    if ds.ndim == 0 or ds.size == 0:
        return digest(ds[()])
    row = max(1, ds.size // ds.shape[0]) * ds.dtype.itemsize
    step = max(1, DIGEST_CHUNK_BYTES // row)
    h = hashlib.sha256()
    for start in range(0, ds.shape[0], step):
        h.update(canonical_bytes(ds[start:start + step]))
    return "sha256:" + h.hexdigest()


def read_short_vlen_string(attr: Any) -> str:
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


def address(obj: Any) -> tuple[Any, ...]:
    """Where an HDF5 object lives: (file number, object address), the same for every link to it."""
    info = h5py.h5o.get_info(obj.id)
    return (obj.id.fileno, info.addr)


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
