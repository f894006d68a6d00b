"""Region layout and blending weights, in index space (x, y, z; voxel centres at integers).

This module is pure NumPy and mirrors spec/0.1/nemap.md §8.1 (regions) and §9.2 (blending).
"""

from __future__ import annotations

import math

import numpy as np


def paper_axis_starts(n_voxels: int, max_size: int = 64, min_overlap: int = 4) -> tuple[list[int], int]:
    """Region starts along one axis by the paper's Eq. 3, and the region length (voxels).

    Integer arithmetic: start_n = floor(n (n_v - v_r) / (n_r - 1)) for n = 0 .. n_r - 1, so the
    last region ends exactly at the last voxel (the published float stride can fall one short).
    """
    if n_voxels < 1:
        raise ValueError("an axis needs at least one voxel")
    size = n_voxels if n_voxels < max_size else max_size
    if size == n_voxels:
        return [0], size
    count = math.ceil((n_voxels - size) / (size - min_overlap)) + 1
    span = n_voxels - size
    return [(n * span) // (count - 1) for n in range(count)], size


def paper_tiling(grid_shape: tuple[int, int, int], max_size: int = 64, min_overlap: int = 4) -> np.ndarray:
    """int64 [R, 2, 3] inclusive (first, last) voxel bounds of the Eq. 3 tiling, x slowest."""
    return tiling(grid_shape, max_size, min_overlap, "paper-eq3")


def balanced_axis_starts(n_voxels: int, max_size: int = 64, min_overlap: int = 4) -> tuple[list[int], int]:
    """The fewest regions of equal length ≤ max_size that cover an axis with neighbours sharing at least
    min_overlap voxel centres, spread evenly: (starts, length). Unlike Eq. 3 the length shrinks to fit, so
    an axis of 70 voxels gets two regions of 37, not two of 64."""
    if n_voxels < 1:
        raise ValueError("an axis needs at least one voxel")
    if n_voxels <= max_size:
        return [0], n_voxels
    count = math.ceil((n_voxels - min_overlap) / (max_size - min_overlap))
    size = math.ceil((n_voxels + (count - 1) * min_overlap) / count)
    span = n_voxels - size
    return [(k * span) // (count - 1) for k in range(count)], size


def tiling(grid_shape: tuple[int, int, int], max_size: int = 64, min_overlap: int = 4,
           method: str = "paper-eq3") -> np.ndarray:
    """int64 [R, 2, 3] inclusive (first, last) voxel bounds, x slowest: the paper's Eq. 3 ("paper-eq3"), equal
    regions no longer than needed ("balanced"), or one region over the whole grid ("whole-grid")."""
    if method == "whole-grid":
        return np.asarray([[[0, 0, 0], [int(n) - 1 for n in grid_shape]]], dtype=np.int64)
    starts = paper_axis_starts if method == "paper-eq3" else balanced_axis_starts
    per_axis = [starts(n, max_size, min_overlap) for n in grid_shape]
    boxes = []
    for sx in per_axis[0][0]:
        for sy in per_axis[1][0]:
            for sz in per_axis[2][0]:
                first = (sx, sy, sz)
                last = tuple(s + per_axis[a][1] - 1 for a, s in enumerate(first))
                boxes.append((first, last))
    return np.asarray(boxes, dtype=np.int64).reshape(-1, 2, 3)


def smoothstep(t: np.ndarray) -> np.ndarray:
    """s(t) = 3t² − 2t³ on [0, 1], clamped outside: C¹, s(0) = 0, s(1) = 1, s'(0) = s'(1) = 0."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def smoothstep_derivative(t: np.ndarray) -> np.ndarray:
    """ds/dt = 6t(1 − t) on [0, 1], 0 outside."""
    inside = (t > 0.0) & (t < 1.0)
    return np.where(inside, 6.0 * t * (1.0 - t), 0.0)


def axis_factors(q: np.ndarray, first: np.ndarray, last: np.ndarray, top: np.ndarray,
                 ramp_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis blending factors f = L·U and their derivatives df/dq at index coordinates q (arrays that
    broadcast together; ``top`` = n − 1 of each axis): L = s((q − first)/ρ) unless first = 0 (then 1), U =
    s((last − q)/ρ) unless last = top (then 1). A region's weight is the product of its three factors."""
    lo_open = first > 0
    hi_open = last < top
    tl = (q - first) / ramp_width
    tu = (last - q) / ramp_width
    lo = np.where(lo_open, smoothstep(tl), 1.0)
    hi = np.where(hi_open, smoothstep(tu), 1.0)
    dlo = np.where(lo_open, smoothstep_derivative(tl) / ramp_width, 0.0)
    dhi = np.where(hi_open, -smoothstep_derivative(tu) / ramp_width, 0.0)
    return lo * hi, dlo * hi + lo * dhi


def blend_weights(q: np.ndarray, bounds: np.ndarray, grid_shape, ramp_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalized weights w [N, R] and their index-space gradients [N, R, 3] at points q [N, 3].

    w_r(q) = Π_a L_ra(q_a) · U_ra(q_a) (:func:`axis_factors`): a region fades out only at faces that lie
    inside the grid.
    """
    q = np.asarray(q, dtype=np.float64)[:, None, :]
    first = bounds[None, :, 0, :].astype(np.float64)
    last = bounds[None, :, 1, :].astype(np.float64)
    top = (np.asarray(grid_shape, dtype=np.float64) - 1.0)[None, None, :]
    f, df = axis_factors(q, first, last, top, ramp_width)  # per-axis factor [N, R, 3]
    w = np.prod(f, axis=2)
    grad = np.empty_like(f)
    for a in range(3):
        others = [b for b in range(3) if b != a]
        grad[..., a] = df[..., a] * f[..., others[0]] * f[..., others[1]]
    return w, grad


def coverage_gaps(bounds: np.ndarray, grid_shape) -> np.ndarray:
    """Index-space points [K, 3] of the grid box where every region's weight is 0 (empty: covered).

    Region r's weight is > 0 exactly on the product of per-axis intervals that are open at a face
    inside the grid and closed at a face on the grid boundary. Coverage is constant between
    consecutive face coordinates, so testing every face coordinate and every midpoint is exact.
    """
    bounds = np.asarray(bounds, dtype=np.int64)
    shape = [int(n) for n in grid_shape]
    tests, member = [], []
    for a in range(3):
        top = shape[a] - 1
        faces = np.unique(np.concatenate([[0, top], bounds[:, 0, a], bounds[:, 1, a]]))
        faces = faces[(faces >= 0) & (faces <= top)].astype(np.float64)
        pts = np.concatenate([faces, (faces[:-1] + faces[1:]) / 2.0])
        f, last = bounds[:, 0, a][None, :], bounds[:, 1, a][None, :]
        p = pts[:, None]
        above = np.where(f == 0, p >= f, p > f)
        below = np.where(last == top, p <= last, p < last)
        tests.append(pts)
        member.append(above & below)  # [T_a, R]
    gaps = []
    for i, x in enumerate(tests[0]):
        mxy = member[0][i][None, :] & member[1]  # [T_y, R]
        covered = (mxy[:, None, :] & member[2][None, :, :]).any(axis=2)  # [T_y, T_z]
        for j, k in zip(*np.nonzero(~covered)):
            gaps.append((x, tests[1][j], tests[2][k]))
    return np.asarray(gaps, dtype=np.float64).reshape(-1, 3)
