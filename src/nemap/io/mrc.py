"""MRC/CCP4 map reading and writing, with explicit geometry.

Conventions (spec/0.1/nemap.md §13):

* Positions are in Å, in (x, y, z) order, in the frame of the PDB/mmCIF model.
* ``Grid.values[i, j, k]`` is the voxel at index (i, j, k) along (x, y, z), after the
  MAPC/MAPR/MAPS axis permutation has been applied (mrcfile never applies it).
* Voxel size Δ = CELLA / (MX, MY, MZ) (not CELLA / N).
* The position of index (0, 0, 0) ("origin") comes from ORIGIN or NSTART·Δ according to
  ``origin_convention``; ``"auto"`` is ChimeraX's rule for ``.mrc`` files, for every suffix.

Every failure to read a file is a :class:`~nemap.errors.FormatError` (one line, naming the
file); failures to write are :class:`~nemap.errors.NemapError`.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import os
import re
import stat
import warnings
from typing import Any

import mrcfile
import numpy as np

from nemap.errors import FormatError, NemapError, NemapWarning
from nemap.files import atomic_output, check_output_path
from nemap.format.geometry import Geometry, Grid
from nemap.io.mrc_header import (
    _CCP4_SUFFIXES,
    _COMPRESSION_SUFFIXES,
    _MODE_NAMES,
    _WHOLE_VOXEL_TOL,
    MRC_SUFFIXES,
    ORIGIN_CONVENTIONS,
    SUPPORTED_MODES,
    _fmt,
    _Header,
    _interpret_header,
    _suffix,
    _warn,
)

__all__ = [
    "ORIGIN_CONVENTIONS",
    "SUPPORTED_MODES",
    "read_mrc",
    "read_mrc_header",
    "mrc_info",
    "write_mrc",
]

log = logging.getLogger("nemap")


def _translate_mrcfile_error(path: str, exc: Exception) -> FormatError:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return FormatError("no such file", path=path, code="FILE_NOT_FOUND")
    if isinstance(exc, PermissionError):
        return FormatError("permission denied", path=path, code="FILE_UNREADABLE")
    if "enough bytes for MRC header" in msg:
        try:
            size = os.path.getsize(path)
            detail = f" ({size} bytes; an MRC header is 1024)"
        except OSError:
            detail = ""
        return FormatError(f"not an MRC map: too short for an MRC header{detail}", path=path, code="NOT_MRC")
    if "Map ID string not found" in msg:
        return FormatError(
            "not an MRC map: no 'MAP ' identifier in header word 53 (not MRC/CCP4, or corrupt)",
            path=path,
            code="NOT_MRC",
        )
    m = re.search(r"Expected (\d+) bytes in (data block|extended header) but (?:limit is|could only read) (\d+)", msg)
    if m:
        return FormatError(
            f"truncated MRC file: the {m.group(2)} needs {m.group(1)} bytes but only {m.group(3)} are present",
            path=path,
            code="MRC_TRUNCATED",
        )
    m = re.search(r"Unrecognised mode '?(-?\d+)", msg)
    if m:
        mode = int(m.group(1))
        return FormatError(
            f"unsupported MRC mode {mode} ({_MODE_NAMES.get(mode, 'unknown')}); "
            "nemap reads modes 0, 1, 2, 6 and 12",
            path=path,
            code="MRC_UNSUPPORTED_MODE",
        )
    if isinstance(exc, (EOFError,)) or "compressed file ended" in msg.lower():
        return FormatError(f"truncated compressed MRC file: {msg}", path=path, code="MRC_TRUNCATED")
    return FormatError(f"cannot read MRC file: {msg}", path=path, code="MRC_UNREADABLE")


def _check_path(path: str) -> None:
    if not os.path.exists(path):
        raise FormatError("no such file", path=path, code="FILE_NOT_FOUND")
    if os.path.isdir(path):
        raise FormatError("is a directory, not an MRC file", path=path, code="NOT_MRC")
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
        raise FormatError("not a regular file", path=path, code="FILE_UNREADABLE")


def compression(path: str | os.PathLike) -> str | None:
    """'gzip', 'bzip2' or None, from the file's first bytes (as mrcfile decides), never from its name."""
    with open(path, "rb") as fh:
        start = fh.read(212)
    if start[208:212] == b"MAP ":
        return None
    return {b"\x1f\x8b": "gzip", b"BZ": "bzip2"}.get(start[:2])


def raw_header(path: str | os.PathLike) -> bytes | None:
    """The first 1024 bytes of an MRC map, decompressed when the file is gzip or bzip2 (by its bytes)."""
    return _first_kib(path, compression(path))


def _first_kib(path: str | os.PathLike, packed: str | None) -> bytes | None:
    opener = {"gzip": gzip.open, "bzip2": bz2.open, None: open}[packed]
    with opener(path, "rb") as fh:  # type: ignore[operator]
        data = fh.read(1024)
    return data if len(data) == 1024 else None


MAX_EXTENDED_HEADER = 2**30  # bytes: larger extended headers of compressed files are refused unread


def _byte_order(head: bytes) -> tuple[str, bool]:
    """('<' or '>', whether MACHST disagrees): the order in which MODE is a supported mode and the grid size
    positive (as mrcfile's permissive reader decides), else the order MACHST states."""
    stamped = ">" if head[212] == 0x11 else "<"  # MACHST: 0x44 0x44 / 0x44 0x41 little-endian, 0x11 0x11 big
    for order in (stamped, "<" if stamped == ">" else ">"):
        words = np.frombuffer(head[:16], dtype=f"{order}i4")
        if int(words[3]) in SUPPORTED_MODES and min(int(w) for w in words[:3]) > 0:
            return order, order != stamped
    return stamped, False


def _precheck(path: str) -> bool:
    """Check the raw header before mrcfile reads the file: refuse an extended header (NSYMBT) longer than
    the file (mrcfile would allocate it); returns True when MACHST disagrees with the data's byte order."""
    try:
        packed = compression(path)
        head = _first_kib(path, packed)
    except (OSError, EOFError, ValueError):
        return False  # mrcfile reports what is wrong
    if head is None or head[208:212] != b"MAP ":
        return False  # not an MRC header: mrcfile says so
    order, swapped = _byte_order(head)
    if swapped:
        _warn("%s: MACHST says %s-endian but the header reads as %s-endian; read as %s-endian (as mrcfile's "
              "permissive mode does)", path, "little" if order == ">" else "big",
              "little" if order == "<" else "big", "little" if order == "<" else "big")
    nsymbt = int(np.frombuffer(head[92:96], dtype=f"{order}i4")[0])
    limit = os.path.getsize(path) - 1024 if packed is None else MAX_EXTENDED_HEADER
    if nsymbt < 0 or nsymbt > limit:
        raise FormatError(f"the extended header (NSYMBT) claims {nsymbt} bytes; the file cannot hold them",
                          path=path, code="MRC_TRUNCATED")
    return swapped


def _open_mrc(path: str, swapped: bool, header_only: bool) -> Any:
    """mrcfile.open, strict; permissive only to read a file whose MACHST disagrees with its byte order
    (mrcfile then takes the order from the data; its warning is replaced by ours)."""
    if not swapped:
        return mrcfile.open(path, mode="r", permissive=False, header_only=header_only)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return mrcfile.open(path, mode="r", permissive=True, header_only=header_only)


def _read(
    path: str | os.PathLike,
    origin_convention: str,
    ignore_cell_angles: bool,
    with_data: bool,
) -> tuple[_Header, np.ndarray | None]:
    p = os.fspath(path)
    if origin_convention not in ORIGIN_CONVENTIONS:
        raise ValueError(f"origin_convention must be one of {ORIGIN_CONVENTIONS}, got {origin_convention!r}")
    _check_path(p)
    swapped = _precheck(p)
    # Header first (never reads the data block), so that unsupported modes etc. are rejected
    # before any data is read.
    try:
        with _open_mrc(p, swapped, header_only=True) as mrc:
            hdr = _interpret_header(mrc.header, p, origin_convention, ignore_cell_angles)
    except (NemapError, NemapWarning):  # a NemapWarning raises when a script turned warnings into errors
        raise
    except Exception as exc:  # mrcfile/numpy/gzip errors: one clean line, never a traceback
        raise _translate_mrcfile_error(p, exc) from exc
    if not with_data:
        return hdr, None

    try:
        with _open_mrc(p, swapped, header_only=False) as mrc:
            data = mrc.data
    except Exception as exc:
        raise _translate_mrcfile_error(p, exc) from exc
    if data is None:
        raise FormatError("truncated MRC file: no data block", path=p, code="MRC_TRUNCATED")
    nc, nr, ns = hdr.shape_crs
    if data.size != nc * nr * ns:
        raise FormatError(
            f"data block has {data.size} values, header says {nc}×{nr}×{ns}", path=p, code="MRC_TRUNCATED"
        )
    data = data.reshape(ns, nr, nc)  # axes (s, r, c); 2-D images come back from mrcfile as (r, c)
    # data axis (2 - f) holds file axis f (0=c, 1=r, 2=s); spatial axis a is file axis inv[a].
    values = data.transpose([2 - hdr.inv[a] for a in range(3)])
    if values.dtype != np.float32:  # other modes, or big-endian float32
        values = values.astype(np.float32)
    return hdr, values


def _uncompressed_name(path: str | os.PathLike) -> str:
    name = os.path.basename(os.fspath(path))
    for comp in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(comp):
            name = name[: -len(comp)]
    return name


def is_mrc(path: str | os.PathLike) -> bool:
    """True for the names of MRC/CCP4 maps: .mrc .map .ccp4 .mrcs .rec, optionally .gz or .bz2."""
    return _uncompressed_name(path).lower().endswith(MRC_SUFFIXES)


def map_stem(path: str | os.PathLike) -> str:
    """The file name without its compression and MRC suffixes (emd_1234.map.gz → emd_1234)."""
    name = _uncompressed_name(path)
    suffix = next((s for s in MRC_SUFFIXES if name.lower().endswith(s)), "")
    return name[: len(name) - len(suffix)]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def read_mrc(
    path: str | os.PathLike,
    origin_convention: str = "auto",
    *,
    ignore_cell_angles: bool = False,
) -> Grid:
    """Read an MRC/CCP4 map (modes 0, 1, 2, 6, 12) as a float32 :class:`Grid`.

    ``grid.values[i, j, k]`` is the voxel at index (i, j, k) along x, y, z (a transposed,
    possibly read-only view of mrcfile's ``data[s, r, c]``). Voxel size (Å, x, y, z) is
    CELLA / (MX, MY, MZ); origin (Å, x, y, z, the position of index (0, 0, 0)) follows
    ``origin_convention``:

    * ``"auto"``: ChimeraX's ``.mrc`` rule: header ORIGIN if it is valid and non-zero
      (NSTART ignored), else NSTART·Δ (NSTART permuted to x, y, z).
    * ``"origin"``: ORIGIN only; ``"nstart"``: NSTART·Δ only; ``"sum"``: ORIGIN + NSTART·Δ
      (CryoREAD); ``"zero"``: (0, 0, 0).

    ``ignore_cell_angles=True`` reads a non-orthogonal cell as if its angles were 90°
    (approximate positions, logged); by default such files raise :class:`FormatError`.
    NaN/Inf voxels are not rejected here. Raises :class:`FormatError` (naming the file) for
    anything that cannot be read.
    """
    hdr, values = _read(path, origin_convention, ignore_cell_angles, with_data=True)
    assert values is not None
    return Grid(values, hdr.geometry)


def read_mrc_header(
    path: str | os.PathLike,
    origin_convention: str = "auto",
    *,
    ignore_cell_angles: bool = False,
    quiet: bool = False,
) -> Geometry:
    """The :class:`Geometry` that :func:`read_mrc` would give (Å, x, y, z), reading only the header. ``quiet``:
    log nothing (a check before the full read, which logs the geometry)."""
    previous = log.level
    if quiet:
        log.setLevel(logging.ERROR)
    try:
        hdr, _ = _read(path, origin_convention, ignore_cell_angles, with_data=False)
    finally:
        log.setLevel(previous)
    return hdr.geometry


def mrc_info(
    path: str | os.PathLike,
    origin_convention: str = "auto",
    *,
    ignore_cell_angles: bool = True,
) -> dict[str, Any]:
    """A JSON-serialisable summary of an MRC header (no data read).

    Describes non-orthogonal cells too (with a warning; ``cellb`` shows the angles) unless
    ``ignore_cell_angles=False``.

    Keys: format, filename, grid_shape [nx, ny, nz], voxel_size [3] Å, origin [3] Å (position
    of index (0, 0, 0)), axis_order [mapc, mapr, maps], mode, dtype, origin_convention (the rule
    used), origin_convention_requested, nstart_crs, header_origin, mxyz, cella, cellb, ispg,
    labels, and the header statistics dmin, dmax, dmean, rms (as stored, not recomputed).
    """
    hdr, _ = _read(path, origin_convention, ignore_cell_angles, with_data=False)
    g = hdr.geometry
    src = g.source
    info: dict[str, Any] = {
        "format": "mrc",
        "filename": src["filename"],
        "grid_shape": list(g.grid_shape),
        "voxel_size": list(g.voxel_size),
        "origin": list(g.origin),
        "axis_order": src["axis_order"],
        "mode": hdr.mode,
        "dtype": _MODE_NAMES[hdr.mode],
        "origin_convention": src["origin_convention"],
        "origin_convention_requested": src["origin_convention_requested"],
        "nstart_crs": src["nstart_crs"],
        "header_origin": src["header_origin"],
        "grid_shape_crs": src["grid_shape_crs"],
        "mxyz": src["mxyz"],
        "cella": src["cella"],
        "cellb": src["cellb"],
        "ispg": src["ispg"],
        "labels": src["labels"],
    }
    info.update(hdr.stats)
    return info


def _sanitise_label(label: str) -> str:
    text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(label).replace("\n", " ").replace("\t", " "))
    return text[:80]


def _offset_fields(origin: np.ndarray, step: np.ndarray, shape: tuple[int, int, int]) -> tuple[list[int], list[float]]:
    """(NSTART x,y,z, ORIGIN x,y,z) for a map whose index (0,0,0) sits at ``origin`` Å.

    Exactly one of them is non-zero: NSTART when origin/Δ is a whole number of voxels on all
    axes (and small enough that ChimeraX does not take it for uninitialised), else ORIGIN.
    """
    q = origin / step
    r = np.round(q)
    limit = 10 * max(shape)  # MX = NX when we write
    if np.all(np.abs(q - r) <= _WHOLE_VOXEL_TOL + np.abs(q) * 2.0 ** -22) and np.all(np.abs(r) <= limit):
        return [int(v) for v in r], [0.0, 0.0, 0.0]
    return [0, 0, 0], [float(v) for v in origin]


def write_mrc(
    path: str | os.PathLike,
    values_xyz: np.ndarray,
    geometry: Geometry,
    *,
    label: str | None = None,
    force: bool = False,
) -> None:
    """Write ``values_xyz`` (indexed [x, y, z]) as a mode-2 (float32) MRC map.

    Header: MAPC/MAPR/MAPS = 1, 2, 3; MX, MY, MZ = NX, NY, NZ; CELLA = N·Δ (Å); angles 90°;
    ISPG 1; NVERSION 20141; DMIN/DMAX/DMEAN/RMS from the data; ``label`` (sanitised to ≤ 80
    printable ASCII characters) if given. The offset goes in exactly one field: NSTART =
    round(origin/Δ) with ORIGIN = 0 when origin/Δ is within 1e-6 + 2⁻²²·|origin/Δ| of whole numbers on all axes,
    else ORIGIN = origin (Å) with NSTART = 0. The file is written to a temporary name in the
    same directory and renamed into place when complete. Refuses to overwrite an existing file
    unless ``force`` (:class:`NemapError`).
    """
    p = os.fspath(path)
    values = np.asarray(values_xyz)
    if values.ndim != 3 or tuple(values.shape) != geometry.grid_shape:
        raise ValueError(f"values shape {values.shape} does not match grid_shape {geometry.grid_shape}")
    check_output_path(p, force)
    step = np.asarray(geometry.voxel_size, dtype=np.float64)
    origin = np.asarray(geometry.origin, dtype=np.float64)
    nstart, header_origin = _offset_fields(origin, step, geometry.grid_shape)
    if any(header_origin) and _suffix(p) in _CCP4_SUFFIXES:
        _warn(
            "%s: origin %s Å is not a whole number of voxels, so it is written to ORIGIN; CCP4 tools "
            "(gemmi, Coot, ChimeraX for .map/.ccp4) ignore ORIGIN: prefer a .mrc name",
            p,
            _fmt(origin),
        )
    data = np.ascontiguousarray(values.astype(np.float32, copy=False).transpose(2, 1, 0))

    with atomic_output(p, force=force) as tmp:
        with mrcfile.new(tmp, overwrite=False) as mrc:
            mrc.set_data(data)
            h = mrc.header
            h.mapc, h.mapr, h.maps = 1, 2, 3
            h.mx, h.my, h.mz = data.shape[2], data.shape[1], data.shape[0]
            mrc.voxel_size = tuple(step.tolist())  # CELLA = MX·Δ
            h.cellb.alpha = h.cellb.beta = h.cellb.gamma = 90.0
            h.ispg = 1
            h.nversion = 20141
            h.nxstart, h.nystart, h.nzstart = nstart  # MAPC..MAPS = 1,2,3: c,r,s == x,y,z
            h.origin.x, h.origin.y, h.origin.z = header_origin
            if label is not None:
                text = _sanitise_label(label)
                if text:
                    h.nlabl = 0
                    h.label[:] = b""
                    mrc.add_label(text)
            mrc.update_header_stats()
    log.info(
        "%s: wrote %s voxels @ %s Å, offset in %s",
        p,
        "×".join(str(n) for n in geometry.grid_shape),
        _fmt(step),
        "ORIGIN" if any(header_origin) else "NSTART",
    )
