"""Resolution evidence for the independent reader: the local resolution at a point (spec/0.2/nemap.md R-EVD-03),
one point at a time in Python floats. NumPy + h5py only."""

from __future__ import annotations

import itertools
import math
from typing import Any

import h5py
import numpy as np


def local_resolution(reader: Any, points: Any) -> list[float | None]:
    """Å at each point [N, 3] (None where unknown, or everywhere when the file has no grid)."""
    member = (reader.header.get("evidence") or {}).get("local_resolution")
    if not isinstance(member, dict):
        return [None] * len(points)
    shape = tuple(int(n) for n in member["grid_shape"])
    with h5py.File(reader.path, "r") as f:
        grid = np.asarray(reader._dataset(f, "/evidence/local_resolution", shape, "<f4")[()], dtype=np.float64)
    a = member["index_to_physical"]
    out: list[float | None] = []
    for p in np.asarray(points, dtype=np.float64).reshape(-1, 3):
        if not all(math.isfinite(float(c)) for c in p):
            out.append(None)
            continue
        q = [min(max((float(p[k]) - a[k][3]) / a[k][k], 0.0), shape[k] - 1.0) for k in range(3)]
        base = [min(int(math.floor(q[k])), max(shape[k] - 2, 0)) for k in range(3)]
        num = den = 0.0
        for corner in itertools.product((0, 1), repeat=3):
            node = tuple(min(base[k] + corner[k], shape[k] - 1) for k in range(3))
            w = 1.0
            for k in range(3):
                t = q[k] - base[k]
                w *= t if corner[k] else 1.0 - t
            if grid[node] > 0:
                num += w * grid[node]
                den += w
        out.append(num / den if den > 0 else None)
    return out
