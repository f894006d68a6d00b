"""Quantized regions in the engine (spec/extensions/NEMAP_quantized/README.md §4): the quintic B-spline that
interpolates the decoded voxels, in float64 NumPy.

Coefficients are computed where they are needed, one block of BLOCK³ voxels at a time, from the decoded voxels
within MARGIN voxels of the block (the README allows it: the coefficients differ from those of the whole grid by
less than |z₁|^MARGIN ≈ 1.6·10⁻⁹ of the voxels' scale), so a query or a sub-box reads only the tiles near it. On
the voxel centres of the map's own grid the map is the decoded voxels themselves.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from scipy import ndimage

from nemap.engine import bspline
from nemap.engine.kinds.base import RegionEvaluator
from nemap.format.kinds.quantized import decode_voxels

ORDER = 5
MARGIN = 24  # voxels of context beyond a block for its coefficients (the prefilter's pole is −0.4306)
BLOCK = 64  # voxels per axis of a block of coefficients
CACHED_BLOCKS = 27
WHOLE_GRID_VOXELS = 1 << 24  # up to this many voxels (256³) the coefficients of the whole grid are computed once
ON_VOXEL = 1e-9  # voxels: a sample this close to a voxel centre is that voxel (|∇| · 10⁻⁹ voxel is below float32)


class TileCache(OrderedDict):
    """Decoded tiles by index, the least recently stored forgotten beyond ``voxels`` voxels in all."""

    def __init__(self, voxels: int):
        super().__init__()
        self.limit, self.held = voxels, 0

    def __setitem__(self, key: int, value: np.ndarray) -> None:
        if key in self:
            self.held -= self[key].size
        super().__setitem__(key, value)
        self.held += value.size
        while self.held > self.limit and len(self) > 1:
            _, old = self.popitem(last=False)
            self.held -= old.size


class QuantizedEvaluator(RegionEvaluator):
    """The map of a quantized file (``content``: geometry, normalization and ``quantized`` voxels)."""

    def __init__(self, content: Any, device: Any = "cpu", dtype: Any = None):
        self.voxels = content.quantized
        self.shape = np.asarray(content.geometry.grid_shape, dtype=np.int64)
        self.normalization = content.normalization
        self._blocks: OrderedDict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._tiles = TileCache(WHOLE_GRID_VOXELS)  # decoded tiles: a grid sampled slab by slab decodes each once
        self.whole = int(np.prod(self.shape)) <= WHOLE_GRID_VOXELS  # one block of coefficients: the whole grid

    def normalized(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Decoded voxels of the box lo … hi − 1 in network output units y (spec §7, no clamp)."""
        y, n = decode_voxels(self.voxels, self.shape, lo, hi, self._tiles), self.normalization  # changed in place
        if n.clamp_negative:
            np.maximum(y, 0.0, out=y)
        y -= n.value_min
        y *= 2.0 / (n.value_max - n.value_min)
        y -= 1.0
        return y

    def coefficients(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients of the nodes lo − 2 … hi + 2 (voxel indices, x, y, z) and the index of the first node."""
        m = bspline.margin(ORDER)
        start, stop = np.maximum(lo - MARGIN, 0), np.minimum(hi + MARGIN, self.shape)
        c = ndimage.spline_filter(self.normalized(start, stop), order=ORDER, mode="mirror")
        pad = [(m if start[a] == 0 else 0, m + 1 if stop[a] == self.shape[a] else 0) for a in range(3)]
        for a in range(3):  # mirrored about the edge node; an axis of fewer than 4 voxels repeats it
            one = [(0, 0)] * 3
            one[a] = pad[a]
            c = np.pad(c, one, mode="reflect" if c.shape[a] > m + 1 else "edge")
        first = start - np.asarray([p[0] for p in pad])
        crop = tuple(slice(int(lo[a] - m - first[a]), int(hi[a] + m + 1 - first[a])) for a in range(3))
        return np.ascontiguousarray(c[crop]), lo - m

    def _block(self, index: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients of block ``index`` (x, y, z), or of the whole grid (None: exact), kept for later queries."""
        if index in self._blocks:
            self._blocks.move_to_end(index)
            return self._blocks[index]
        lo = np.zeros(3, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64) * BLOCK
        found = self.coefficients(lo, self.shape if index is None else np.minimum(lo + BLOCK, self.shape))
        self._blocks[index] = found
        if len(self._blocks) > CACHED_BLOCKS:
            self._blocks.popitem(last=False)
        return found

    def output(self, r: int, slot: int, q: np.ndarray, gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if self.whole:  # every point at once
            c, first = self._block(None)
            return bspline.evaluate(c, q - first, ORDER, gradient)
        counts = (self.shape - 1) // BLOCK + 1
        block = np.minimum(np.floor(q / BLOCK).astype(np.int64), counts - 1)
        keys, which = np.unique(np.ravel_multi_index(tuple(block.T), tuple(counts)), return_inverse=True)
        y = np.empty(q.shape[0])
        dy = np.empty_like(q) if gradient else None
        for i, key in enumerate(keys):
            pts = np.nonzero(which.reshape(-1) == i)[0]
            c, first = self._block(tuple(int(v) for v in np.unravel_index(key, tuple(counts))))
            y[pts], g = bspline.evaluate(c, q[pts] - first, ORDER, gradient)
            if dy is not None:
                dy[pts] = g
        return y, dy

    def block(self, r: int, slot: int, axes: list[np.ndarray]) -> np.ndarray:
        """On voxel centres (within ON_VOXEL of them: the rounding of origin + i·Δ) the decoded voxels; elsewhere
        the spline of the coefficients around the box."""
        lo = np.asarray([int(np.floor(a.min())) for a in axes], dtype=np.int64)
        hi = np.minimum(np.asarray([int(np.floor(a.max())) + 2 for a in axes], dtype=np.int64), self.shape)
        if all(np.abs(a - np.round(a)).max() <= ON_VOXEL for a in axes):
            index = [np.round(a).astype(np.int64) for a in axes]
            y = self.normalized(lo, hi)
            return y[np.ix_(*[i - lo[k] for k, i in enumerate(index)])]
        c, first = self.coefficients(lo, hi)
        return bspline.on_grid(c, [a - first[k] for k, a in enumerate(axes)], ORDER)
