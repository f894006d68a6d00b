"""Test helper: write small MRC files with mrcfile directly, in any axis order.

Independent of nemap's reader: the file's array D[s, r, c] is built as
``V.transpose(maps-1, mapr-1, mapc-1)`` from a known array V[x, y, z].
"""

from __future__ import annotations

import os
from typing import Sequence

import mrcfile
import numpy as np


def write_raw_mrc(
    path: str | os.PathLike,
    values_xyz: np.ndarray,
    *,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    axis_order: Sequence[int] = (1, 2, 3),
    nstart_xyz: Sequence[int] = (0, 0, 0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    mxyz: Sequence[int] | None = None,
    cellb: Sequence[float] = (90.0, 90.0, 90.0),
    ispg: int = 1,
) -> None:
    """Write ``values_xyz`` (indexed [x, y, z]; its dtype picks the mode) with the given header.

    voxel_size, nstart_xyz, origin and mxyz are in x, y, z order; the file gets
    NSTART in column/row/section order and CELLA = voxel_size · M.
    """
    v = np.asarray(values_xyz)
    mapc, mapr, maps = (int(a) for a in axis_order)
    data = np.ascontiguousarray(v.transpose(maps - 1, mapr - 1, mapc - 1))  # (s, r, c)
    m = tuple(int(n) for n in (mxyz if mxyz is not None else v.shape))
    crs_to_xyz = (mapc - 1, mapr - 1, maps - 1)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        h = mrc.header
        h.mapc, h.mapr, h.maps = mapc, mapr, maps
        h.mx, h.my, h.mz = m
        h.cella.x, h.cella.y, h.cella.z = (float(d) * n for d, n in zip(voxel_size, m))
        h.cellb.alpha, h.cellb.beta, h.cellb.gamma = (float(a) for a in cellb)
        h.nxstart, h.nystart, h.nzstart = (int(nstart_xyz[a]) for a in crs_to_xyz)
        h.origin.x, h.origin.y, h.origin.z = (float(o) for o in origin)
        h.ispg = ispg


def patch_int32(path: str | os.PathLike, word: int, value: int) -> None:
    """Overwrite header word ``word`` (1-based, as in the MRC2014 table) with a little-endian int32."""
    with open(path, "r+b") as f:
        f.seek(4 * (word - 1))
        f.write(np.int32(value).astype("<i4").tobytes())
