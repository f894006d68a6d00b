"""Grid geometry: the mapping between voxel index space and physical space.

Index space: a point (i, j, k) along (x, y, z); voxel centres sit at integers
0 .. n-1 on each axis. Physical space: Å, right-handed (x, y, z), the frame of PDB/mmCIF
models. In .nemap 0.1 the index→Å map is ``p = origin + index * voxel_size`` per axis (a
diagonal affine); no I/O happens in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Index-space slack of the grid box (spec §9.4): a point within this many voxels outside the box
# counts as inside and is clamped onto it, so that positions computed as origin + i·Δ in
# floating point (e.g. the last voxel centre) are never lost to rounding.
DOMAIN_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Geometry:
    """Where a voxel grid sits in space.

    grid_shape: (nx, ny, nz) voxels, x first.
    voxel_size: (Δx, Δy, Δz) in Å, each > 0.
    origin: (x, y, z) in Å of the centre of voxel index (0, 0, 0).
    source: how the geometry was derived from a source file (MRC header fields, the origin
        convention used); informational, never used for placement.
    """

    grid_shape: tuple[int, int, int]
    voxel_size: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.grid_shape)
        size = tuple(float(v) for v in self.voxel_size)
        origin = tuple(float(v) for v in self.origin)
        if len(shape) != 3 or len(size) != 3 or len(origin) != 3:
            raise ValueError("grid_shape, voxel_size and origin must each have 3 entries (x, y, z)")
        if min(shape) < 1:
            raise ValueError(f"grid_shape must be positive, got {shape}")
        if not all(np.isfinite(size)) or min(size) <= 0:
            raise ValueError(f"voxel_size must be finite and > 0 Å, got {size}")
        if not all(np.isfinite(origin)):
            raise ValueError(f"origin must be finite, got {origin}")
        object.__setattr__(self, "grid_shape", shape)
        object.__setattr__(self, "voxel_size", size)
        object.__setattr__(self, "origin", origin)

    @property
    def index_to_physical(self) -> np.ndarray:
        """The 3×4 float64 affine A with ``p = A[:, :3] @ index + A[:, 3]`` (Å)."""
        a = np.zeros((3, 4), dtype=np.float64)
        a[:, :3] = np.diag(self.voxel_size)
        a[:, 3] = self.origin
        return a

    @classmethod
    def from_affine(cls, affine: Any, grid_shape: Any, source: dict[str, Any] | None = None) -> Geometry:
        """Build from a 3×4 index→Å affine; its linear part must be diagonal (format 0.1)."""
        a = np.asarray(affine, dtype=np.float64)
        if a.shape != (3, 4):
            raise ValueError(f"index_to_physical must be 3×4, got shape {a.shape}")
        lin = a[:, :3]
        if np.any(lin[~np.eye(3, dtype=bool)] != 0):
            raise ValueError("index_to_physical must be diagonal (axis-aligned, orthogonal cell)")
        return cls(tuple(grid_shape), tuple(np.diag(lin)), tuple(a[:, 3]), source or {})

    def to_physical(self, index_xyz: Any) -> np.ndarray:
        """Index coordinates (..., 3) in x, y, z order → Å (..., 3), float64."""
        idx = np.asarray(index_xyz, dtype=np.float64)
        return np.asarray(self.origin) + idx * np.asarray(self.voxel_size)

    def to_index(self, xyz: Any) -> np.ndarray:
        """Å positions (..., 3) in x, y, z order → continuous index coordinates (..., 3), float64."""
        p = np.asarray(xyz, dtype=np.float64)
        return (p - np.asarray(self.origin)) / np.asarray(self.voxel_size)

    def contains(self, xyz: Any) -> np.ndarray:
        """True where an Å position lies in the closed box spanned by the voxel centres
        (within DOMAIN_TOLERANCE voxels)."""
        return self.contains_index(self.to_index(xyz))

    def contains_index(self, q: Any) -> np.ndarray:
        """:meth:`contains` for index coordinates (..., 3) already computed (NaN: outside)."""
        hi = np.asarray(self.grid_shape, dtype=np.float64) - 1.0
        with np.errstate(invalid="ignore"):
            return np.all((q >= -DOMAIN_TOLERANCE) & (q <= hi + DOMAIN_TOLERANCE), axis=-1)

    def clamp_index(self, q: Any) -> np.ndarray:
        """Index coordinates clamped onto the grid box [0, n − 1] per axis."""
        hi = np.asarray(self.grid_shape, dtype=np.float64) - 1.0
        return np.clip(np.asarray(q, dtype=np.float64), 0.0, hi)

    @property
    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) Å corners of the box of voxel centres."""
        lo = np.asarray(self.origin, dtype=np.float64)
        hi = self.to_physical(np.asarray(self.grid_shape, dtype=np.float64) - 1.0)
        return lo, hi


def grid_over_box(lo: Any, hi: Any, voxel_size: Any, source: dict[str, Any] | None = None) -> Geometry:
    """The regular grid with spacing ``voxel_size`` (Å, one value or x, y, z) whose first sample sits at
    ``lo`` and whose samples cover the box [lo, hi] (Å, x, y, z): n = ⌊(hi − lo)/Δ⌋ + 1 per axis."""
    step = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    lo_, hi_ = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    shape = tuple(int(n) for n in np.floor((hi_ - lo_) / step + 1e-9).astype(np.int64) + 1)
    return Geometry(shape, tuple(step.tolist()), tuple(lo_.tolist()), source or {})


def grid_points(geometry: Geometry, x_planes: slice) -> np.ndarray:
    """Å positions [n, 3] (x, y, z) of the samples of ``geometry`` on the x planes ``x_planes``, exactly
    origin + index·Δ, in C order of (i, j, k)."""
    nx, ny, nz = geometry.grid_shape
    o, d = geometry.origin, geometry.voxel_size
    xs = o[0] + np.arange(*x_planes.indices(nx)) * d[0]
    ys = o[1] + np.arange(ny) * d[1]
    zs = o[2] + np.arange(nz) * d[2]
    return np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), axis=-1).reshape(-1, 3)


@dataclass(frozen=True)
class Grid:
    """Voxel values with their geometry.

    values: float32 array indexed ``values[i, j, k]`` = voxel at index (i, j, k) along (x, y, z)
        (the transpose of mrcfile's ``data[z, y, x]``; may be a non-contiguous view).
    geometry: where the voxels sit; ``geometry.grid_shape == values.shape``.
    """

    values: np.ndarray
    geometry: Geometry

    def __post_init__(self) -> None:
        if self.values.ndim != 3 or tuple(self.values.shape) != self.geometry.grid_shape:
            raise ValueError(
                f"values shape {self.values.shape} does not match grid_shape {self.geometry.grid_shape}"
            )
