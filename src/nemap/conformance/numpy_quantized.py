"""NEMAP_quantized for the independent reader, written from spec/extensions/NEMAP_quantized/README.md alone
(NumPy and zlib; nothing imported from the ``nemap`` package): decoding tiles (§3), the base (§3.4), the quintic
interpolating coefficients with a mirror boundary (§4) and the spline's value and gradient."""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

POLES = (-0.430575347099973, -0.0430962882032647)  # §4: the quintic B-spline's prefilter


class QuantizedError(Exception):
    """A quantized file that breaks the README (code QUANTIZED_INVALID)."""


def levels(extent: tuple[int, ...]) -> int:
    """L = ⌈log₂(max extent)⌉ (§3.1)."""
    return max(0, (max(extent) - 1).bit_length())


def max_inflated(extent: tuple[int, ...]) -> int:
    """§3.1: M, the most bytes a tile's streams may inflate to together."""
    v = int(np.prod(extent))
    return v // 8 + 12 * levels(extent) + 9 * v


class Stream:
    """The tile's bytes, read in order; ``inflate`` reads one zlib stream of a stated length (§3.1)."""

    def __init__(self, data: bytes, extent: tuple[int, ...]):
        self.data, self.at, self.budget = data, 0, max_inflated(extent)

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise QuantizedError("the tile ends early")
        self.at += n
        return self.data[self.at - n:self.at]

    def inflate(self, n: int, escaped: bool) -> tuple[bytes, bytes]:
        """n bytes of one zlib stream, then (``escaped``) 8 more for each of them that is 255; nothing beyond."""
        d = zlib.decompressobj()
        rest = self.data[self.at:]
        head, rest = self._read(d, rest, n)
        tail, rest = self._read(d, rest, 8 * head.count(255) if escaped else 0)
        try:
            if not d.eof and d.decompress(rest, 1):
                raise QuantizedError("a stream inflates further than stated")
        except zlib.error as exc:
            raise QuantizedError(f"not zlib: {exc}") from None
        if not d.eof:
            raise QuantizedError("a stream is cut short")
        self.at = len(self.data) - len(d.unused_data)
        return head, tail

    def _read(self, d: Any, rest: bytes, n: int) -> tuple[bytes, bytes]:
        self.budget -= n
        if self.budget < 0:
            raise QuantizedError("the tile's streams inflate beyond M")
        if n == 0:
            return b"", rest
        try:
            out = d.decompress(rest, n) if not d.eof else b""
        except zlib.error as exc:
            raise QuantizedError(f"not zlib: {exc}") from None
        if len(out) != n:
            raise QuantizedError("a stream ends early")
        return out, d.unconsumed_tail


def targets(extent: tuple[int, ...], s: int, a: int) -> list[np.ndarray]:
    """§3.2: the index arrays of a pass's targets along x, y, z."""
    h = s // 2
    out = []
    for b in range(3):
        step, first = (h, 0) if b < a else ((s, h) if b == a else (s, 0))
        out.append(np.arange(first, extent[b], step))
    return out


def widened(head: bytes, tail: bytes) -> np.ndarray:
    """Bytes, each 255 replaced by the next 8-byte little-endian value of ``tail`` (§3.3)."""
    values = np.frombuffer(head, dtype=np.uint8).astype(np.int64)
    for j, i in enumerate(np.nonzero(values == 255)[0]):
        value = int.from_bytes(tail[8 * j:8 * j + 8], "little")
        if not 255 <= value < 2**40:
            raise QuantizedError("an escaped value out of range")
        values[i] = value
    return values


def residuals(stream: Stream, n: int) -> np.ndarray:
    """§3.3: a mode byte, then nothing (0), bitmap and magnitudes (1), or one byte per target (2)."""
    mode = stream.take(1)[0]
    z = np.zeros(n, dtype=np.int64)
    if mode == 1:
        packed, _ = stream.inflate((n + 7) // 8, False)
        bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8))
        if bits[n:].any():
            raise QuantizedError("bitmap padding is not zero")
        bits = bits[:n].astype(bool)
        z[bits] = widened(*stream.inflate(int(bits.sum()), True)) + 1
    elif mode == 2:
        z = widened(*stream.inflate(n, True))
    elif mode != 0:
        raise QuantizedError(f"class mode {mode}")
    return np.where(z % 2 == 0, z // 2, -(z + 1) // 2)


def decode_tile(raw: bytes, extent: tuple[int, int, int]) -> np.ndarray:
    """The integer codes of one tile (§3.1–§3.3)."""
    stream = Stream(raw, extent)
    L = levels(extent)
    if stream.take(1)[0] != L:
        raise QuantizedError("wrong level count")
    table = [(b % 16, b // 16 + 1) for b in stream.take(3 * L)]
    if any(o not in (1, 3, 5) or c > 4 for o, c in table):
        raise QuantizedError("a pass byte out of range")
    k = np.zeros(extent, dtype=np.int64)
    k[0, 0, 0] = int.from_bytes(stream.take(8), "little", signed=True)
    passes = [(1 << lv, a) for lv in range(L, 0, -1) for a in range(3)]
    for (s, a), (order, classes) in zip(passes, table):
        idx = targets(extent, s, a)
        if min(len(i) for i in idx) == 0:
            continue
        p, cls = predict(k, idx, s // 2, a, order, classes, extent[a])
        r = np.zeros(p.shape, dtype=np.int64)
        for c in range(classes):
            r[cls == c] = residuals(stream, int((cls == c).sum()))
        k[np.ix_(*idx)] = p + r
    if stream.at != len(stream.data) or np.abs(k).max() > 2**31 - 1:
        raise QuantizedError("bytes left over, or a code beyond 2^31 − 1")
    return k


def predict(k: np.ndarray, idx: list[np.ndarray], h: int, a: int, order: int, classes: int,
            n: int) -> tuple[np.ndarray, np.ndarray]:
    """§3.2's table, row by row; and each target's class."""
    def at(j: int) -> tuple[np.ndarray, np.ndarray]:
        pos = idx[a] + j * h
        exists = (pos >= 0) & (pos < n)
        sel = list(idx)
        sel[a] = np.clip(pos, 0, n - 1)
        shape = [1, 1, 1]
        shape[a] = -1
        return k[np.ix_(*sel)], exists.reshape(shape)
    (b, _), (c, hc) = at(-1), at(1)
    (a3, h3m), (d3, h3p), (e5, h5m), (f5, h5p) = at(-3), at(3), at(-5), at(5)
    p = np.where(hc, (b + c) >> 1, b)
    if order >= 3:
        p = np.where(hc & h3m & h3p, (9 * (b + c) - (a3 + d3) + 8) >> 4, p)
    if order == 5:
        p = np.where(hc & h3m & h3p & h5m & h5p, (150 * (b + c) - 25 * (a3 + d3) + 3 * (e5 + f5) + 128) >> 8, p)
    spread = np.where(hc, np.abs(c - b), 0)
    cls = sum((spread >= (1 << j) - 1).astype(np.int64) for j in range(1, classes)) if classes > 1 else 0 * spread
    return p, cls


def base_values(codes: np.ndarray, extent: tuple[int, ...], tenths: list[int], step: float) -> np.ndarray:
    """§3.4: Δb · Σ K β(10x/s − p + 1) β(…) β(…)."""
    def beta(u: np.ndarray) -> np.ndarray:
        u = np.abs(u)
        return np.where(u < 1, 2 / 3 - u * u + u ** 3 / 2, np.where(u < 2, (2 - u) ** 3 / 6, 0.0))
    out = codes.astype(np.float64) * step
    for ax in range(3):
        m = -(-10 * (extent[ax] - 1) // tenths[ax]) + 3
        if codes.shape[ax] != m:
            raise QuantizedError("the base's extent does not match")
        matrix = beta(10.0 * np.arange(extent[ax])[:, None] / tenths[ax] - np.arange(m)[None, :] + 1.0)
        out = np.moveaxis(np.tensordot(matrix, out, axes=([1], [ax])), 0, ax)
    return out


def decoded_densities(member: dict[str, Any], shape: tuple[int, int, int], streams: np.ndarray, offsets: np.ndarray,
                      base: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Every voxel's decoded density (§3.4), tile by tile."""
    tile = member["tile_shape"]
    counts = [-(-n // t) for n, t in zip(shape, tile)]
    for data, cuts in ((streams, offsets), base or (streams, offsets)):
        if (cuts.shape != (int(np.prod(counts)) + 1,) or cuts[0] != 0 or np.any(np.diff(cuts) < 0)
                or cuts[-1] != data.size):
            raise QuantizedError("offsets do not cut the streams into the tiles")
    out = np.empty(shape, dtype=np.float64)
    t = 0
    for i in range(counts[0]):
        for j in range(counts[1]):
            for k in range(counts[2]):
                box = tuple(slice(c * w, min((c + 1) * w, n)) for c, w, n in zip((i, j, k), tile, shape))
                extent = tuple(b.stop - b.start for b in box)
                values = member["step"] * decode_tile(streams[offsets[t]:offsets[t + 1]].tobytes(), extent)
                if base is not None:
                    tenths = member["base"]["spacing_tenths"]
                    nodes = tuple(-(-10 * (e - 1) // s) + 3 for e, s in zip(extent, tenths))
                    codes = decode_tile(base[0][base[1][t]:base[1][t + 1]].tobytes(), nodes)
                    values = values + base_values(codes, extent, tenths, member["base"]["step"])
                out[box] = values
                t += 1
    return out


def prefilter(y: np.ndarray) -> np.ndarray:
    """§4: the quintic interpolating coefficients with a mirror boundary, along x, y, z (recursive filter)."""
    c = np.asarray(y, dtype=np.float64)
    for axis in range(3):
        c = np.moveaxis(_prefilter_axis(np.moveaxis(c, axis, 0)), 0, axis)
    return c


def _prefilter_axis(y: np.ndarray) -> np.ndarray:
    n = y.shape[0]
    gain = math.prod((1 - z) * (1 - 1 / z) for z in POLES)
    c = y * gain
    if n == 1:
        return y.copy()
    for z in POLES:
        k = np.arange(1, n - 1).reshape((-1,) + (1,) * (y.ndim - 1))
        first = (c[0] + z ** (n - 1) * c[n - 1] + np.sum((z ** k + z ** (2 * n - 2 - k)) * c[1:n - 1], axis=0)) \
            / (1 - z ** (2 * n - 2))
        causal = np.empty_like(c)
        causal[0] = first
        for i in range(1, n):
            causal[i] = c[i] + z * causal[i - 1]
        anti = np.empty_like(c)
        anti[n - 1] = (z / (z * z - 1)) * (causal[n - 1] + z * causal[n - 2])
        for i in range(n - 2, -1, -1):
            anti[i] = z * (anti[i + 1] - causal[i])
        c = anti
    return c


def extended(c: np.ndarray) -> np.ndarray:
    """Coefficients with 2 mirrored nodes before each axis and 3 after (node k ↔ voxel k − 2); an axis of fewer
    than 4 voxels repeats its edge node instead."""
    for axis, n in enumerate(c.shape):
        before, after = ([2, 1], [n - 2, n - 3, n - 4]) if n >= 4 else ([0, 0], [n - 1] * 3)
        c = np.take(c, before + list(range(n)) + after, axis=axis)
    return c
