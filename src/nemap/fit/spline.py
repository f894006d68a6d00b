"""The ``spline`` method: each region stores the B-spline (degree 3 or 5) that interpolates the
normalized voxels, as NEMAP_feature_grid regions (spec/extensions/NEMAP_feature_grid/README.md).

Nothing is trained: the coefficients come from one recursive prefilter over the whole map (scipy's
``spline_filter``, mirror boundary), and each region takes its window of them. The correction network
that the extension allows is written as the zero network (one identity layer, weights 0), so the map is
exactly the B-spline: equal to the voxels at voxel centres, C² (cubic) or C⁴ (quintic) between them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from nemap.engine.feature_grid import margin
from nemap.format.content import Layer

CHANNELS = 1  # the spline only; learned channels would follow it


def correction_layers() -> list[Layer]:
    """The zero correction network: C − 1 + 6 inputs → 1, identity (weights and bias written as 0)."""
    return [Layer(CHANNELS + 5, 1, "identity")]


def coefficient_grid(targets: np.ndarray, order: int) -> np.ndarray:
    """B-spline coefficients [1, x + 2m + 1, …] (float32) that interpolate ``targets`` [x, y, z] at voxel
    centres; node k at index k − m, with m + 1 nodes past the last voxel (the last one has weight 0 there).
    Beyond the grid the coefficients are mirrored about the edge node (c[−k] = c[k]), the rule under which
    scipy's ``mode="mirror"`` computes them."""
    m = margin(order)
    c = ndimage.spline_filter(np.asarray(targets, dtype=np.float64), order=order, mode="mirror").astype(np.float32)
    for axis, n in enumerate(c.shape):
        pad = [(0, 0)] * 3
        pad[axis] = (m, m + 1)
        c = np.pad(c, pad, mode="reflect" if n > m + 1 else "edge")
    return c[None]


def region_windows(coefficients: np.ndarray, bounds: np.ndarray, regions: list[int], order: int) -> np.ndarray:
    """Each listed region's window [len(regions), C, K…] of the map's coefficients: K = largest extent
    + p + 1 nodes per axis, node k at index first − m + k."""
    nodes = (bounds[:, 1] - bounds[:, 0]).max(axis=0) + order + 1
    short = np.maximum(bounds[:, 0].max(axis=0) + nodes - np.asarray(coefficients.shape[1:]), 0)
    if np.any(short):  # regions of unequal size: a small region's window reaches past the grid's nodes
        coefficients = np.pad(coefficients, [(0, 0)] + [(0, int(k)) for k in short], mode="edge")
    windows = np.empty((len(regions), coefficients.shape[0], *nodes), dtype=np.float32)
    for s, r in enumerate(regions):
        x, y, z = (int(v) for v in bounds[r, 0])
        windows[s] = coefficients[:, x:x + nodes[0], y:y + nodes[1], z:z + nodes[2]]
    return windows
