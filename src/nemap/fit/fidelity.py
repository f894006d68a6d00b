"""How closely a fitted map reproduces its source at the voxel centres (source density units)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from nemap.fit.normalization import slabs
from nemap.format.geometry import Grid
from nemap.resolution.fsc import MIN_VOXELS, fsc


def agreement(pairs: Any) -> dict[str, float]:
    """RMSE, max |error| and correlation of (source, decoded) chunk pairs, accumulated in float64
    about a pivot (the first source value) so that a large mean does not cancel the variance."""
    n = 0
    sa = sb = saa = sbb = sab = sdd = 0.0
    worst = biggest = 0.0
    pivot = None
    for a, b in pairs:
        a = a.astype(np.float64).ravel()
        b = b.astype(np.float64).ravel()
        if not a.size:
            continue
        d = b - a
        biggest = max(biggest, float(np.max(np.abs(a))))
        worst = max(worst, float(np.max(np.abs(d))))
        pivot = float(a[0]) if pivot is None else pivot
        a -= pivot
        b -= pivot
        n += a.size
        sa, sb = sa + a.sum(), sb + b.sum()
        saa, sbb, sab, sdd = saa + a @ a, sbb + b @ b, sab + a @ b, sdd + d @ d
    va, vb = saa / n - (sa / n) ** 2, sbb / n - (sb / n) ** 2
    if va > 1e-20 * saa / n and vb > 1e-20 * sbb / n and va > 0 and vb > 0:
        corr = float(np.clip((sab / n - (sa / n) * (sb / n)) / math.sqrt(va * vb), -1.0, 1.0))
    else:  # a constant side: agreement is all there is to say
        corr = 1.0 if worst <= 1e-8 + 1e-5 * biggest else 0.0
    return {"rmse": math.sqrt(sdd / n), "max_abs_error": worst, "correlation": corr}


def fidelity(grid: Grid, decoded: np.ndarray, bounds: np.ndarray) -> dict[str, Any]:
    """RMSE, max |error| and correlation at voxel centres, overall and per region (source units).
    Streams over slabs and region boxes: no whole-grid float64 copy."""
    values = grid.values
    overall = agreement((values[s], decoded[s]) for s in slabs(values.shape))
    span = float(values.max() - values.min())
    overall["max_abs_error_fraction_of_range"] = overall["max_abs_error"] / span if span > 0 else 0.0
    per_region = []
    for first, last in bounds:
        sl = tuple(slice(int(a), int(b) + 1) for a, b in zip(first, last))
        per_region.append(agreement([(values[sl], decoded[sl])]))
    return {"where": "voxel centres", "units": "source density units", "overall": overall, "regions": per_region}


def fsc_fidelity(grid: Grid, decoded: np.ndarray) -> dict[str, Any] | None:
    """Up to which resolution the neural map is faithful to its source: the FSC of the decoded map against
    the source voxels, read at 0.5 and 0.143 (Å; ``crossed_05`` false: ≥ 0.5 at every shell up to Nyquist,
    ``nyquist`` Å). None for a constant source or a grid under 4 voxels along an axis."""
    g = grid.geometry
    if min(g.grid_shape) < MIN_VOXELS or float(grid.values.max() - grid.values.min()) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a neural map equal to its source is the best case, not a mistake
        curve = fsc(Grid(np.asarray(decoded, dtype=np.float32), g), grid, names=("the neural map", "its source"))
    out: dict[str, Any] = {"nyquist": 2 * max(g.voxel_size)}
    for t, key in ((0.5, "05"), (0.143, "0143")):
        out[f"resolution_{key}"], out[f"crossed_{key}"] = curve.resolution(t)
    return out
