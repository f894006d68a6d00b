"""Simulated maps from atomic models, exactly as Chimera/ChimeraX ``molmap`` makes them.

The model (notes/ecosystem.md §2): every atom is a Gaussian weighted by its atomic number Z,
σ = sigma_factor · R Å (default 1/(π√2) ≈ 0.225), summed over a **cube** of ±5σ around each atom
(in voxel index units, clamped to the grid), on a grid of spacing R/3 Å whose first voxel sits at
the atoms' minimum minus 3R of padding; then scaled by (2π)^−3/2 σ^−3 so that each atom integrates
to Z. Positions are in Å, (x, y, z); arrays are indexed [x, y, z].

Atoms are taken as the model gives them (hydrogens, waters and ligands included, as molmap does);
of several models only the first is used, and of alternative conformations only the first
(ChimeraX also shows one conformation per atom).
"""

from __future__ import annotations

import math
import os

import numpy as np

from nemap.errors import ArgumentError, NemapError, check_number
from nemap.format.geometry import Geometry, Grid
from nemap.io.models import read_atoms

SIGMA_FACTOR = 1.0 / (math.pi * math.sqrt(2.0))  # molmap's default: the transform falls to 1/e at 1/R
CUTOFF_SIGMAS = 5.0

__all__ = ["SIGMA_FACTOR", "read_atoms", "molmap_geometry", "gaussian_sum", "simulate"]


def _check(resolution: float, voxel_size: float | None, sigma_factor: float = SIGMA_FACTOR) -> None:
    """Finite, positive arguments, refused before any work."""
    for name, value in (("resolution", resolution), ("voxel_size", voxel_size), ("sigma_factor", sigma_factor)):
        if value is not None:
            check_number(name, value, above=0)


def molmap_geometry(xyz: np.ndarray, resolution: float, voxel_size: float | None = None,
                    padding: float | None = None) -> Geometry:
    """molmap's grid: spacing R/3 Å (or ``voxel_size``), first voxel at min(xyz) − 3R (or
    ``padding``) Å, ceil((max − min + 2·padding)/spacing) voxels per axis (x, y, z)."""
    step = resolution / 3.0 if voxel_size is None else float(voxel_size)
    pad = 3.0 * resolution if padding is None else float(padding)
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    shape = tuple(max(1, int(math.ceil((h - a + 2 * pad) / step))) for a, h in zip(lo, hi))
    return Geometry(shape, (step,) * 3, tuple(float(v) for v in lo - pad))


def gaussian_sum(geometry: Geometry, xyz: np.ndarray, weights: np.ndarray, sigma: float,
                 cutoff_sigmas: float = CUTOFF_SIGMAS) -> np.ndarray:
    """Σ_atoms w · exp(−|p − p_atom|²/2σ²) · (2π)^−3/2 σ^−3 at the voxel centres of ``geometry``
    (float32 [x, y, z]), each atom summed over the voxels of the cube c ± cutoff·σ/Δ, c its
    fractional voxel index (molmap's box: ceil(c − 5 sd) … floor(c + 5 sd), clamped)."""
    shape = np.asarray(geometry.grid_shape)
    step = np.asarray(geometry.voxel_size, dtype=np.float64)
    sd = sigma / step  # σ in voxels, per axis
    c = (np.asarray(xyz, dtype=np.float64) - np.asarray(geometry.origin)) / step
    lo_raw = np.ceil(c - cutoff_sigmas * sd).astype(np.int64)
    hi_raw = np.floor(c + cutoff_sigmas * sd).astype(np.int64)
    misses = np.any((hi_raw < 0) | (lo_raw > shape - 1) | (hi_raw < lo_raw), axis=1)  # cube off the grid
    lo, hi = np.clip(lo_raw, 0, shape - 1), np.clip(hi_raw, 0, shape - 1)
    values = np.zeros(geometry.grid_shape, dtype=np.float64)
    for a in np.nonzero(~misses)[0]:
        f = [np.exp(-0.5 * ((np.arange(lo[a, k], hi[a, k] + 1) - c[a, k]) / sd[k]) ** 2) for k in range(3)]
        values[lo[a, 0]:hi[a, 0] + 1, lo[a, 1]:hi[a, 1] + 1, lo[a, 2]:hi[a, 2] + 1] += (
            weights[a] * f[0][:, None, None] * f[1][None, :, None] * f[2][None, None, :])
    values *= (2.0 * math.pi) ** -1.5 * sigma ** -3
    return values.astype(np.float32)


def simulate(xyz: np.ndarray, atomic_numbers: np.ndarray, resolution: float, *, voxel_size: float | None = None,
             padding: float | None = None, sigma_factor: float = SIGMA_FACTOR,
             geometry: Geometry | None = None) -> Grid:
    """A molmap map of atoms at ``xyz`` (Å) weighted by ``atomic_numbers``, at ``resolution`` Å.
    ``geometry`` (any grid) replaces molmap's own bounding grid."""
    _check(resolution, voxel_size, sigma_factor)
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(xyz)):
        raise ArgumentError(f"{int(np.count_nonzero(~np.isfinite(xyz).all(axis=1)))} atom(s) have NaN or infinite "
                            "coordinates", parameter="xyz")
    if geometry is None:
        geometry = molmap_geometry(xyz, resolution, voxel_size, padding)
    return Grid(gaussian_sum(geometry, xyz, np.asarray(atomic_numbers, dtype=np.float64), sigma_factor * resolution),
                geometry)


def simulate_file(model: str | os.PathLike, out: str | os.PathLike, resolution: float, *,
                  voxel_size: float | None = None, sigma_factor: float = SIGMA_FACTOR,
                  force: bool = False) -> Grid:
    """Read ``model`` (PDB/mmCIF), simulate it and write ``out`` (MRC, mode 2, offset as R-MRC-06)."""
    from nemap.io.mrc import write_mrc

    _check(resolution, voxel_size, sigma_factor)
    xyz, z = read_atoms(model)
    if not np.all(np.isfinite(xyz)):
        raise NemapError("atoms with NaN or infinite coordinates", path=os.fspath(model), code="BAD_MODEL")
    geometry = molmap_geometry(xyz, resolution, voxel_size)
    n = geometry.grid_shape
    if int(np.prod(n)) > 2**30:  # 4 GiB of float32: checked before allocating
        raise NemapError(f"the simulated grid would be {n[0]}×{n[1]}×{n[2]} voxels; use a larger 'voxel_size'",
                         path=os.fspath(model), code="BAD_ARGUMENT")
    grid = simulate(xyz, z, resolution, sigma_factor=sigma_factor, geometry=geometry)
    label = f"nemap simulate {os.path.basename(os.fspath(model))} R={resolution:g} A molmap sf={sigma_factor:.4g}"
    write_mrc(out, grid.values, grid.geometry, label=label, force=force)
    return grid
