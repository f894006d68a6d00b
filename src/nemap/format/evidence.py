"""Resolution evidence carried in a 0.2 file (spec/0.2/nemap.md §5.1): the half maps' FSC curve and hashes, a
coarse local-resolution grid with its own index→Å affine, and a bit-packed mask on the map's grid.

None of it affects evaluation. Arrays: ``/evidence/fsc`` <f8 [S, C] (C named columns), ``/evidence/
local_resolution`` <f4 [gx, gy, gz] Å (0 = not estimated), ``/evidence/mask`` u1 [⌈nx·ny·nz / 8⌉] (bit
(i·ny + j)·nz + k, most significant bit first, is voxel (i, j, k)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FSC_PATH = "/evidence/fsc"
LOCAL_RESOLUTION_PATH = "/evidence/local_resolution"
MASK_PATH = "/evidence/mask"
FSC_COLUMNS = ("frequency", "resolution", "fsc", "fsc_masked", "fsc_randomized", "fsc_corrected")


@dataclass
class Evidence:
    """What a file says about its map's resolution. ``fsc``, ``local_resolution`` and ``mask`` are the header
    members (spec/0.2/nemap.md §5.1) and ``fsc_table``, ``local_resolution_grid``, ``mask_bits`` their arrays."""

    half_maps: list[dict[str, Any]] = field(default_factory=list)
    fsc: dict[str, Any] | None = None
    fsc_table: np.ndarray | None = None
    local_resolution: dict[str, Any] | None = None
    local_resolution_grid: np.ndarray | None = None
    mask: dict[str, Any] | None = None
    mask_bits: np.ndarray | None = None

    def member(self) -> dict[str, Any]:
        """The header's ``evidence`` member."""
        out: dict[str, Any] = {}
        if self.half_maps:
            out["half_maps"] = self.half_maps
        for name in ("fsc", "local_resolution", "mask"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Dataset path → array in its declared dtype."""
        out: dict[str, np.ndarray] = {}
        if self.fsc_table is not None:
            out[FSC_PATH] = np.ascontiguousarray(self.fsc_table, dtype="<f8")
        if self.local_resolution_grid is not None:
            out[LOCAL_RESOLUTION_PATH] = np.ascontiguousarray(self.local_resolution_grid, dtype="<f4")
        if self.mask_bits is not None:
            out[MASK_PATH] = np.ascontiguousarray(self.mask_bits, dtype="u1")
        return out


def expected_datasets(member: dict[str, Any], grid_shape: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """Dataset path → (shape, dtype) that an ``evidence`` header member implies."""
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    if "fsc" in member:
        out[FSC_PATH] = ((-1, len(member["fsc"]["columns"])), "<f8")  # −1: any number of shells ≥ 2
    if "local_resolution" in member:
        out[LOCAL_RESOLUTION_PATH] = (tuple(int(n) for n in member["local_resolution"]["grid_shape"]), "<f4")
    if "mask" in member:
        out[MASK_PATH] = ((mask_bytes(grid_shape),), "u1")
    return out


def mask_bytes(grid_shape: Any) -> int:
    return -(-int(np.prod(np.asarray(grid_shape, dtype=np.int64))) // 8)


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """A boolean [nx, ny, nz] mask as bits in C order, most significant bit first."""
    return np.packbits(np.asarray(mask, dtype=bool).reshape(-1), bitorder="big")


def unpack_mask(bits: np.ndarray, grid_shape: Any) -> np.ndarray:
    """The boolean [nx, ny, nz] mask of :func:`pack_mask`'s bytes."""
    n = int(np.prod(grid_shape))
    return np.unpackbits(np.asarray(bits, dtype=np.uint8), count=n,
                         bitorder="big").astype(bool).reshape(tuple(grid_shape))


def problems(member: dict[str, Any], arrays: dict[str, np.ndarray], grid_shape: Any) -> list[tuple[str, str]]:
    """(path, message) of every value rule of spec/0.2/nemap.md §5.1 that the evidence's arrays break
    (R-EVD-02 to R-EVD-04)."""
    out = []
    if arrays.get(FSC_PATH) is not None:
        out += [(FSC_PATH, m) for m in _fsc_problems(list(member["fsc"]["columns"]), arrays[FSC_PATH])]
    if arrays.get(LOCAL_RESOLUTION_PATH) is not None:
        out += [(LOCAL_RESOLUTION_PATH, m) for m in _local_problems(member["local_resolution"],
                                                                     arrays[LOCAL_RESOLUTION_PATH])]
    bits = arrays.get(MASK_PATH)
    if bits is not None and bits.size:
        n = int(np.prod(np.asarray(grid_shape, dtype=np.int64)))
        if n % 8 and int(bits[-1]) & ((1 << (8 - n % 8)) - 1):
            out.append((MASK_PATH, "the mask's padding bits after the last voxel must be 0"))
    return out


def _fsc_problems(columns: list[str], table: np.ndarray) -> list[str]:
    if table.shape[0] < 2 or not np.isfinite(table).all():
        return ["the FSC table needs ≥ 2 shells of finite values"]
    out = []
    f = table[:, columns.index("frequency")]
    if f[0] < 0 or np.any(np.diff(f) <= 0):
        out.append("FSC frequencies must start ≥ 0 and increase")
    if np.any(np.abs(table[:, [i for i, c in enumerate(columns) if c.startswith("fsc")]]) > 1 + 1e-6):
        out.append("FSC values must lie in [−1, 1]")
    return out


def _local_problems(member: dict[str, Any], grid: np.ndarray) -> list[str]:
    out = []
    lin = np.asarray(member["index_to_physical"], dtype=np.float64)[:, :3]
    if np.any(lin[~np.eye(3, dtype=bool)] != 0) or np.any(np.diag(lin) <= 0):
        out.append("the local-resolution affine must be diagonal with positive steps")
    if not np.isfinite(grid).all() or np.any(grid < 0):
        out.append("local resolutions must be finite and ≥ 0 Å (0: not estimated)")
    return out


def local_resolution_at(grid: np.ndarray, affine: Any, xyz: np.ndarray) -> np.ndarray:
    """Local resolution (Å) at positions xyz [N, 3] (Å, x, y, z): trilinear over the 8 surrounding nodes of
    the grid (index q = A⁻¹(p) clamped onto the grid), nodes of value 0 left out and the weights of the others
    renormalized; NaN where no surrounding node is known or the position is not finite (spec R-EVD-03)."""
    a = np.asarray(affine, dtype=np.float64)
    p = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    shape = np.asarray(grid.shape)
    with np.errstate(invalid="ignore"):
        q = np.clip((p - a[:, 3]) / np.diag(a[:, :3]), 0, shape - 1)
    finite = np.all(np.isfinite(q), axis=1)
    q = np.where(finite[:, None], q, 0.0)
    base = np.minimum(np.floor(q).astype(np.int64), np.maximum(shape - 2, 0))
    frac = q - base
    total, weight = np.zeros(len(p)), np.zeros(len(p))
    for corner in np.ndindex(2, 2, 2):
        idx = np.minimum(base + corner, shape - 1)
        w = np.prod(np.where(np.asarray(corner) == 1, frac, 1 - frac), axis=1)
        v = grid[idx[:, 0], idx[:, 1], idx[:, 2]].astype(np.float64)
        known = v > 0
        total += np.where(known, w * v, 0.0)
        weight += np.where(known, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weight
    out[~finite | ~(weight > 0)] = np.nan
    return out
