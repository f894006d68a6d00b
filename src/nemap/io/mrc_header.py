"""What an MRC/CCP4 header says about a map's geometry (ecosystem conventions in the nemap.io.mrc docstring): the
MAPC/MAPR/MAPS permutation, the voxel size CELLA / (MX, MY, MZ), the cell angles, and the origin from ORIGIN or
NSTART·Δ by the chosen convention, with the warnings a user needs when the two disagree."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from nemap.errors import FormatError, warn
from nemap.format.geometry import Geometry

log = logging.getLogger("nemap")


def _warn(fmt: str, *args: object) -> None:
    """A NemapWarning (and a log record) of ``fmt % args``."""
    warn(fmt % args)

ORIGIN_CONVENTIONS = ("auto", "origin", "nstart", "sum", "zero")
SUPPORTED_MODES = (0, 1, 2, 6, 12)
_MODE_NAMES = {
    0: "int8",
    1: "int16",
    2: "float32",
    3: "complex int16",
    4: "complex",
    6: "uint16",
    12: "float16",
    101: "4-bit packed",
}
MRC_SUFFIXES = (".mrc", ".map", ".ccp4", ".mrcs", ".rec")
_CCP4_SUFFIXES = (".map", ".ccp4")
_COMPRESSION_SUFFIXES = (".gz", ".bz2")
_ANGLE_TOL_DEG = 1e-3
_WHOLE_VOXEL_TOL = 1e-6  # voxels, plus float32 precision (2⁻²² |q|): rounding to NSTART moves nothing real


# --------------------------------------------------------------------------------------------
# Header interpretation (shared by read_mrc, read_mrc_header and mrc_info)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    """The MRC header fields nemap uses, as plain Python values, plus the derived geometry."""

    geometry: Geometry
    inv: tuple[int, int, int]  # inv[a] = file axis (0=c, 1=r, 2=s) holding spatial axis a
    shape_crs: tuple[int, int, int]
    mode: int
    stats: dict[str, float]


def _fmt(v: Any) -> str:
    return "(" + ", ".join(f"{float(x):.6g}" for x in v) + ")"


def _suffix(path: str) -> str:
    name = os.path.basename(path).lower()
    for comp in _COMPRESSION_SUFFIXES:
        if name.endswith(comp):
            name = name[: -len(comp)]
    return os.path.splitext(name)[1]


def _labels(header: Any) -> list[str]:
    raw = [bytes(lbl) for lbl in header.label]
    nlabl = int(header.nlabl)
    if 1 <= nlabl <= len(raw):
        raw = raw[:nlabl]
    out = []
    for b in raw:
        text = b.decode("ascii", errors="replace").rstrip(" \x00")
        if text:
            out.append(text)
    return out


def _valid_origin(origin: np.ndarray, step: np.ndarray) -> bool:
    """ChimeraX ``valid_origin``: finite, and not so large that x + Δ == x."""
    if not np.all(np.isfinite(origin)):
        return False
    return not any(s > 0 and x + s == x for x, s in zip(origin.tolist(), step.tolist()))


def _json_floats(values: list[float]) -> list[float | None]:
    """Header numbers as JSON can hold them: a NaN or infinite field (unusable, and so ignored) is None."""
    return [float(v) if math.isfinite(v) else None for v in values]


def _fail(path: str, msg: str, code: str = "MRC_BAD_HEADER") -> FormatError:
    return FormatError(msg, path=path, code=code)


def _axis_permutation(header: Any, path: str) -> tuple[int, int, int, int]:
    """Mode, ISPG and MAPC/MAPR/MAPS checked; returns (mode, inv) with inv[a] = the file axis (0=c,
    1=r, 2=s) holding spatial axis a (x, y, z)."""
    mode = int(header.mode)
    if mode not in SUPPORTED_MODES:
        raise _fail(path, f"unsupported MRC mode {mode} ({_MODE_NAMES.get(mode, 'unknown')}); nemap reads modes 0, "
                          "1, 2, 6 and 12", "MRC_UNSUPPORTED_MODE")
    shape_crs = (int(header.nx), int(header.ny), int(header.nz))
    if min(shape_crs) < 1:
        raise _fail(path, f"bad grid size NC, NR, NS = {shape_crs}; each must be >= 1")
    ispg = int(header.ispg)
    if 401 <= ispg <= 630:
        raise _fail(path, f"ISPG {ispg} marks a volume stack; nemap reads single volumes only")
    axes = (int(header.mapc), int(header.mapr), int(header.maps))
    if sorted(axes) != [1, 2, 3]:
        raise _fail(path, f"invalid axis order MAPC, MAPR, MAPS = {axes}; must be a permutation of 1, 2, 3")
    inv = [0, 0, 0]
    for f, a in enumerate(axes):
        inv[a - 1] = f
    return mode, inv[0], inv[1], inv[2]


def _voxel_size(header: Any, path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Δ = CELLA / (MX, MY, MZ) in Å, MX/MY/MZ, CELLA), x, y, z; refuses an unknown voxel size."""
    mxyz = np.array([int(header.mx), int(header.my), int(header.mz)], dtype=np.int64)
    cella = np.array([float(header.cella.x), float(header.cella.y), float(header.cella.z)], dtype=np.float64)
    for axis, m, c in zip("XYZ", mxyz, cella):
        if m <= 0 or not np.isfinite(c) or c <= 0:
            raise _fail(path, f"voxel size unknown: CELLA/M{axis} is {c:g}/{int(m)} (CELLA = {_fmt(cella)} Å, "
                              f"MX, MY, MZ = {tuple(int(x) for x in mxyz)})", "MRC_NO_VOXEL_SIZE")
    return cella / mxyz, mxyz, cella


def _cell_angles(header: Any, path: str, ignore_cell_angles: bool) -> tuple[list[float], bool]:
    """CELLB (α, β, γ in degrees) and whether non-90° angles were ignored; refuses a skewed cell."""
    cellb = [float(header.cellb.alpha), float(header.cellb.beta), float(header.cellb.gamma)]
    if all(a == 0.0 for a in cellb):
        _warn("%s: cell angles are 0, 0, 0 (unset); assuming 90°", path)
        return cellb, False
    if not any(not math.isfinite(a) or abs(a - 90.0) > _ANGLE_TOL_DEG for a in cellb):
        return cellb, False
    if not ignore_cell_angles:
        raise _fail(path, f"non-orthogonal cell (angles {_fmt(cellb)}°) is unsupported; nemap needs 90° cells "
                    "('ignore_cell_angles' reads it as if they were 90°)",
                    "MRC_NONORTHOGONAL")
    _warn("%s: cell angles %s° treated as 90° (ignore_cell_angles): positions are approximate", path, _fmt(cellb))
    return cellb, True


@dataclass(frozen=True)
class _Offsets:
    """The two offset fields of a header in x, y, z (Å), and what they are worth."""

    nstart_crs: list[int]
    from_nstart: np.ndarray  # NSTART·Δ, zero when NSTART is garbage
    nstart_garbage: bool
    limit: int
    header_origin: np.ndarray
    origin_ok: bool

    @property
    def origin_nonzero(self) -> bool:
        return bool(np.any(self.header_origin != 0.0))

    @property
    def nstart_nonzero(self) -> bool:
        return bool(np.any(self.from_nstart != 0.0))


def _offsets(header: Any, inv: tuple[int, int, int], step: np.ndarray, mxyz: np.ndarray,
             shape_xyz: tuple[int, int, int]) -> _Offsets:
    nstart_crs = [int(header.nxstart), int(header.nystart), int(header.nzstart)]
    nstart_xyz = np.array([nstart_crs[inv[a]] for a in range(3)], dtype=np.float64)
    limit = 10 * max(int(mxyz.max()), max(shape_xyz))
    garbage = bool(np.any(np.abs(nstart_xyz) > limit))
    if garbage:
        nstart_xyz = np.zeros(3)
    origin = np.array([float(header.origin.x), float(header.origin.y), float(header.origin.z)], dtype=np.float64)
    return _Offsets(nstart_crs, nstart_xyz * step, garbage, limit, origin, _valid_origin(origin, step))


def _convention_used(off: _Offsets, origin_convention: str, path: str) -> str:
    """The convention applied: 'auto' resolved by ChimeraX's .mrc rule, the others checked."""
    if origin_convention == "auto":
        if off.origin_nonzero and not off.origin_ok:
            _warn("%s: header ORIGIN %s is not usable (NaN/Inf or uninitialised); ignored", path,
                  _fmt(off.header_origin))
        return "origin" if (off.origin_nonzero and off.origin_ok) else "nstart"
    if origin_convention in ("origin", "sum") and not off.origin_ok:
        raise _fail(path, f"header ORIGIN {_fmt(off.header_origin)} is not usable (NaN/Inf or uninitialised); "
                          f"use origin convention 'nstart' or 'zero'", "MRC_BAD_ORIGIN")
    return origin_convention


def _placed_origin(off: _Offsets, used: str) -> tuple[np.ndarray, str]:
    """The origin (Å) under convention ``used``, and the rule in words."""
    if used == "origin":
        return off.header_origin, "header ORIGIN; NSTART ignored"
    if used == "nstart":
        if not off.origin_nonzero:
            return off.from_nstart, "NSTART·Δ (ORIGIN is zero)"
        return off.from_nstart, "NSTART·Δ (ORIGIN unusable)" if not off.origin_ok else "NSTART·Δ; ORIGIN ignored"
    if used == "sum":
        return off.header_origin + off.from_nstart, "ORIGIN + NSTART·Δ (CryoREAD style)"
    return np.zeros(3), "zero; ORIGIN and NSTART ignored"


_OTHER_TOOLS = {
    "origin": "gemmi/Coot/servalcat would use NSTART·Δ, CryoREAD the sum",
    "nstart": "ChimeraX (.mrc) would use ORIGIN, CryoREAD the sum",
    "sum": "ChimeraX (.mrc) would use ORIGIN, gemmi/Coot NSTART·Δ",
    "zero": "ChimeraX (.mrc) would use ORIGIN, gemmi/Coot NSTART·Δ",
}


def _warn_on_disagreement(off: _Offsets, used: str, step: np.ndarray, path: str) -> None:
    """Warn where other programs would place the map elsewhere."""
    if off.nstart_garbage and used in ("nstart", "sum"):
        _warn("%s: NSTART %s exceeds 10·max(M, N) = %d; treated as uninitialised (0), as ChimeraX does", path,
              off.nstart_crs, off.limit)
    if (off.origin_nonzero and off.origin_ok and off.nstart_nonzero
            and not np.allclose(off.header_origin, off.from_nstart, rtol=0.0, atol=1e-3 * float(step.min()))):
        _warn("%s: header ORIGIN %s Å and NSTART·Δ %s Å are both set and disagree; using %s; %s", path,
              _fmt(off.header_origin), _fmt(off.from_nstart), used, _OTHER_TOOLS[used])
    if off.origin_nonzero and _suffix(path) in _CCP4_SUFFIXES:
        _warn("%s: a %s file with non-zero ORIGIN %s Å: CCP4 tools (gemmi, Coot, servalcat, ChimeraX "
              "for .map/.ccp4) ignore ORIGIN, so they may place this map differently", path, _suffix(path),
              _fmt(off.header_origin))


def _interpret_header(header: Any, path: str, origin_convention: str, ignore_cell_angles: bool) -> _Header:
    """Validate an mrcfile header and derive the geometry (no data access)."""
    mode, *inv_list = _axis_permutation(header, path)
    inv = (inv_list[0], inv_list[1], inv_list[2])
    shape_crs = (int(header.nx), int(header.ny), int(header.nz))
    step, mxyz, cella = _voxel_size(header, path)
    cellb, cell_angles_ignored = _cell_angles(header, path, ignore_cell_angles)
    shape_xyz = (shape_crs[inv[0]], shape_crs[inv[1]], shape_crs[inv[2]])
    off = _offsets(header, inv, step, mxyz, shape_xyz)
    used = _convention_used(off, origin_convention, path)
    origin, rule = _placed_origin(off, used)
    how = " (ChimeraX .mrc rule)" if origin_convention == "auto" else " (requested)"
    log.info("%s: origin %s Å from %s%s", path, _fmt(origin), rule, how)
    _warn_on_disagreement(off, used, step, path)
    source: dict[str, Any] = {
        "format": "mrc", "filename": os.path.basename(path), "mode": mode,
        "axis_order": [int(header.mapc), int(header.mapr), int(header.maps)],
        "grid_shape_crs": list(shape_crs), "nstart_crs": off.nstart_crs, "mxyz": [int(m) for m in mxyz],
        "cella": cella.tolist(), "cellb": _json_floats(cellb),
        "header_origin": _json_floats(off.header_origin.tolist()),
        "ispg": int(header.ispg),
        "origin_convention": used, "origin_convention_requested": origin_convention, "labels": _labels(header),
    }
    if cell_angles_ignored:
        source["cell_angles_ignored"] = True
    try:
        geometry = Geometry(shape_xyz, tuple(step.tolist()), tuple(origin.tolist()), source)
    except ValueError as exc:  # e.g. an ORIGIN + NSTART sum that overflows
        raise _fail(path, f"bad geometry: {exc}") from exc
    stats = {"dmin": float(header.dmin), "dmax": float(header.dmax), "dmean": float(header.dmean),
             "rms": float(header.rms)}
    return _Header(geometry, inv, shape_crs, mode, stats)


# --------------------------------------------------------------------------------------------
# Opening files, turning mrcfile's exceptions into FormatError
# --------------------------------------------------------------------------------------------


