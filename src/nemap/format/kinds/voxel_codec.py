"""The tile code of NEMAP_quantized (spec/extensions/NEMAP_quantized/README.md §3): a tile of integer voxel codes k
(the voxel's value divided by the step, rounded), exactly decodable in any language with integer arithmetic and
zlib.

Codes are predicted level by level, coarse to fine (stride s = 2^L … 2, then along x, y, z at each level) by
integer interpolation of codes already decoded along one axis, and only the residuals are stored, split into a
few classes by how much the two nearest neighbours differ. Each class is stored in the mode that makes it
smallest: nothing (every residual 0), a bitmap of the non-zero residuals and their magnitudes, or one byte per
residual — each part its own zlib stream, compressed with whichever zlib strategy suits it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

ORDERS = (1, 3, 5)  # interpolation orders a pass may use: linear, cubic, quintic
MAX_CLASSES = 4
MAX_CODE = 2**31 - 1  # |k| of every voxel
ESCAPE = 255


class CodecError(ValueError):
    """A tile stream that does not decode (its message says where)."""


@dataclass(frozen=True)
class Pass:
    """One pass of the prediction: level stride ``s`` (targets at s/2 mod s along ``axis``)."""

    stride: int
    axis: int

    @property
    def half(self) -> int:
        return self.stride // 2

    def targets(self) -> tuple[slice, slice, slice]:
        """The pass's targets: axes before ``axis`` already refined (step s/2), ``axis`` at s/2 mod s, later
        axes at the level's lattice (step s)."""
        h, s = self.half, self.stride
        return tuple(slice(0, None, h) if b < self.axis else slice(h, None, s) if b == self.axis
                     else slice(0, None, s) for b in range(3))  # type: ignore[return-value]

    def known(self) -> tuple[slice, slice, slice]:
        """The decoded codes the pass predicts from (the targets' lattice with every step of ``axis``)."""
        h, s = self.half, self.stride
        return tuple(slice(0, None, h) if b < self.axis else slice(None) if b == self.axis
                     else slice(0, None, s) for b in range(3))  # type: ignore[return-value]


def levels(shape: tuple[int, ...]) -> int:
    """L: the number of levels, ⌈log₂(max extent)⌉ (0 for a tile of one voxel)."""
    return max(0, int(max(shape) - 1).bit_length())


def passes(shape: tuple[int, ...]) -> list[Pass]:
    """The 3·L passes of a tile, coarse to fine: strides 2^L … 2, axes x, y, z at each."""
    out = []
    for level in range(levels(shape), 0, -1):
        out += [Pass(1 << level, axis) for axis in range(3)]
    return out


PAD = 5  # neighbours as far as t ± 5h are read


def _neighbours(known: np.ndarray, p: Pass, order: int) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Codes at t + j·h along the pass axis for the j = ±1, ±3, ±5 an ``order`` reads (any value where t + j·h is
    outside the tile) and whether each exists, as 1-D masks along the axis. Strided views of one padded copy."""
    n, h, s = known.shape[p.axis], p.half, p.stride
    t = np.arange(h, n, s)
    width = [(0, 0)] * 3
    width[p.axis] = (PAD * h, PAD * h)
    padded = np.pad(known, width)
    codes, exists = {}, {}
    for j in (-1, 1, -3, 3, -5, 5)[:order + 1]:
        start = PAD * h + h + j * h
        index: list[slice] = [slice(None)] * 3
        index[p.axis] = slice(start, start + s * (t.size - 1) + 1, s)
        codes[j] = padded[tuple(index)]
        exists[j] = (t + j * h >= 0) & (t + j * h < n)
    return codes, exists


def predict(known: np.ndarray, p: Pass, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer predictions of the pass's targets and the class measure |k(t + h) − k(t − h)| (0 where t + h is
    past the tile). ``known``: the decoded codes on the pass's lattice (``Pass.known``)."""
    codes, exists = _neighbours(known, p, order)
    shape = [1, 1, 1]
    shape[p.axis] = -1

    def has(*js: int) -> np.ndarray:
        return np.logical_and.reduce([exists[j] for j in js]).reshape(shape)

    b, c = codes[-1], codes[1]
    prediction = np.where(has(1), (b + c) >> 1, b)
    if order >= 3:
        prediction = np.where(has(1, -3, 3), (9 * (b + c) - (codes[-3] + codes[3]) + 8) >> 4, prediction)
    if order >= 5:
        quintic = (150 * (b + c) - 25 * (codes[-3] + codes[3]) + 3 * (codes[-5] + codes[5]) + 128) >> 8
        prediction = np.where(has(1, -3, 3, -5, 5), quintic, prediction)
    activity = np.where(has(1), np.abs(c - b), 0)
    return prediction, activity


def classes_of(activity: np.ndarray, count: int) -> np.ndarray:
    """Class of each target: the number of j in 1 … count − 1 with activity ≥ 2^j − 1."""
    out = np.zeros(activity.shape, dtype=np.int64)
    for j in range(1, count):
        out += activity >= (1 << j) - 1
    return out


def _zigzag(r: np.ndarray) -> np.ndarray:
    return np.where(r >= 0, 2 * r, -2 * r - 1).astype(np.uint64)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.int64)
    return np.where(z % 2 == 0, z // 2, -(z + 1) // 2)


EMPTY, SPLIT, JOINT = 0, 1, 2  # how a class is stored (README §3.3)
STRATEGIES = {"bitmap": (zlib.Z_RLE, zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY),
              "bytes": (zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY)}


def _bytes_with_escapes(values: np.ndarray) -> bytes:
    """One byte per value, min(value, 255), then the 8-byte little-endian value of each that is ≥ 255."""
    small = np.minimum(values, ESCAPE).astype(np.uint8)
    return small.tobytes() + values[values >= ESCAPE].astype("<u8").tobytes()


def _deflate(data: bytes, kind: str) -> bytes:
    """The smallest zlib stream of ``data`` over the strategies that suit its kind (level 9)."""
    best = b""
    for strategy in STRATEGIES[kind]:
        packer = zlib.compressobj(9, zlib.DEFLATED, 15, 9, strategy)
        out = packer.compress(data) + packer.flush()
        if not best or len(out) < len(best):
            best = out
    return best


def _class_bytes(residuals: np.ndarray) -> bytes:
    """A class's mode byte and streams: EMPTY; SPLIT (bitmap of non-zero residuals, then magnitudes z − 1 with
    escapes); JOINT (every zigzag value z with escapes) — whichever is smallest."""
    z = _zigzag(residuals)
    nonzero = z != 0
    if not nonzero.any():
        return bytes([EMPTY])
    split = (bytes([SPLIT]) + _deflate(np.packbits(nonzero).tobytes(), "bitmap")
             + _deflate(_bytes_with_escapes(z[nonzero] - 1), "bytes"))
    joint = bytes([JOINT]) + _deflate(_bytes_with_escapes(z), "bytes")
    return split if len(split) <= len(joint) else joint


def _estimate_bits(residuals: np.ndarray) -> float:
    """A cheap size estimate of a class: order-0 entropy of the bitmap and of the magnitude bytes."""
    n = residuals.size
    if n == 0:
        return 0.0
    z = _zigzag(residuals)
    nonzero = int(np.count_nonzero(z))
    bits = 0.0
    if 0 < nonzero < n:
        p = nonzero / n
        bits += -n * (p * np.log2(p) + (1 - p) * np.log2(1 - p))
    if nonzero:
        counts = np.bincount(np.minimum(z[z != 0] - 1, ESCAPE).astype(np.int64))
        counts = counts[counts > 0]
        bits += float(-(counts * np.log2(counts / nonzero)).sum()) + 8 * 8 * int(np.count_nonzero(z > ESCAPE))
    return bits + 64.0 * 8  # a block header's worth per class


def _choose(known: np.ndarray, targets: np.ndarray, p: Pass) -> tuple[int, int, np.ndarray, np.ndarray]:
    """The order and class count that make the pass smallest (by estimate): (order, classes, residuals, class)."""
    best = None
    for order in ORDERS:
        prediction, activity = predict(known, p, order)
        residuals = targets - prediction
        for count in (1, MAX_CLASSES):
            cls = classes_of(activity, count)
            bits = sum(_estimate_bits(residuals[cls == c]) for c in range(count))
            if best is None or bits < best[0]:
                best = (bits, order, count, residuals, cls)
    assert best is not None
    return best[1], best[2], best[3], best[4]


def encode_tile(k: np.ndarray) -> bytes:
    """The bytes of a tile of integer codes k [x, y, z] (every |k| ≤ MAX_CODE)."""
    k = np.asarray(k, dtype=np.int64)
    if k.ndim != 3 or k.size == 0 or np.abs(k).max() > MAX_CODE:
        raise ValueError("a tile is a non-empty 3-D array of codes with |k| ≤ 2^31 − 1")
    table, body = bytearray([levels(k.shape)]), []
    for p in passes(k.shape):
        targets = k[p.targets()]
        if targets.size == 0:
            table.append(1)
            continue
        order, count, residuals, cls = _choose(k[p.known()], targets, p)
        table.append(16 * (count - 1) + order)
        body += [_class_bytes(residuals[cls == c]) for c in range(count)]
    return bytes(table) + int(k[0, 0, 0]).to_bytes(8, "little", signed=True) + b"".join(body)


def max_stream_bytes(shape: tuple[int, ...]) -> int:
    """The most bytes the zlib streams of a tile of ``shape`` can inflate to, together (the decoder inflates no
    more: each stream's length is known before it is inflated, up to its escapes)."""
    voxels = int(np.prod(shape))
    return voxels // 8 + 3 * levels(shape) * MAX_CLASSES + voxels * (1 + 8)


class _Reader:
    """Sequential reads of a tile's bytes, and of the zlib streams in them; running past the end, a stream that
    does not inflate to exactly its expected length, or more inflated bytes than the tile can hold, is a
    CodecError."""

    def __init__(self, data: bytes, shape: tuple[int, ...]):
        self.data, self.at = data, 0
        self.limit = self.budget = max_stream_bytes(shape)

    def take(self, count: int) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise CodecError(f"the tile ends early (needs {count} bytes at byte {self.at} of {len(self.data)})")
        part = self.data[self.at:self.at + count]
        self.at += count
        return part

    def inflate(self, count: int, escaped: bool = False) -> bytes:
        """One zlib stream inflating to exactly ``count`` bytes — plus, when they are ``escaped`` values, 8 bytes
        for each of them that is 255. The stream must end there."""
        inflater = zlib.decompressobj()
        pending = self.data[self.at:]
        out, pending = self._inflate(inflater, pending, count)
        if escaped:
            more, pending = self._inflate(inflater, pending, 8 * out.count(ESCAPE))
            out += more
        try:
            extra = b"" if inflater.eof else inflater.decompress(pending, 1)  # after its end, zlib keeps the rest
        except zlib.error as exc:
            raise CodecError(f"not a zlib stream ({exc})") from None
        if extra:
            raise CodecError("a zlib stream inflates to more than its class needs")
        if not inflater.eof:
            raise CodecError("a zlib stream is cut short")
        self.at = len(self.data) - len(inflater.unused_data)
        return out

    def _inflate(self, inflater: Any, pending: bytes, count: int) -> tuple[bytes, bytes]:
        """``count`` more bytes of a stream (never more, and never more than the tile's budget) and the input left."""
        if count > self.budget:
            raise CodecError(f"inflates to more than the {self.limit} bytes a tile of its shape can hold")
        if count == 0 or inflater.eof:
            if count:
                raise CodecError(f"a zlib stream ends early (0 of {count} bytes)")
            return b"", pending
        try:
            out = inflater.decompress(pending, count)
        except zlib.error as exc:
            raise CodecError(f"not a zlib stream ({exc})") from None
        if len(out) != count:
            raise CodecError(f"a zlib stream ends early ({len(out)} of {count} bytes)")
        self.budget -= count
        return out, inflater.unconsumed_tail


def _read_table(reader: _Reader, shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """(order, classes) of every pass, checked."""
    if reader.take(1)[0] != levels(shape):
        raise CodecError(f"the tile's level count does not match a tile of {list(shape)} voxels")
    table = []
    for byte in reader.take(3 * levels(shape)):
        order, count = byte % 16, byte // 16 + 1
        if order not in ORDERS or count > MAX_CLASSES:
            raise CodecError(f"pass byte {byte} names no order (1, 3, 5) or more than {MAX_CLASSES} classes")
        table.append((order, count))
    return table


def decode_tile(stream: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """The integer codes int64 [x, y, z] of a tile of ``shape`` voxels from its bytes; CodecError for bytes that
    do not decode to exactly that tile."""
    reader = _Reader(stream, shape)
    table = _read_table(reader, shape)
    k = np.zeros(shape, dtype=np.int64)
    k[0, 0, 0] = int.from_bytes(reader.take(8), "little", signed=True)
    for p, (order, count) in zip(passes(shape), table):
        target = p.targets()
        if k[target].size == 0:
            continue
        prediction, activity = predict(k[p.known()], p, order)
        if count == 1:
            prediction += _read_class(reader, prediction.size).reshape(prediction.shape)
        else:
            cls = classes_of(activity, count)
            for c in range(count):
                members = cls == c
                prediction[members] += _read_class(reader, int(np.count_nonzero(members)))
        if prediction.max() > MAX_CODE or prediction.min() < -MAX_CODE:
            raise CodecError("a decoded code exceeds 2^31 − 1")
        k[target] = prediction
    _check_end(reader, k)
    return k


def _wide(values: np.ndarray, raw: bytes) -> np.ndarray:
    """Bytes with their escapes: each byte of 255 replaced, in order, by the next 8-byte value of ``raw``."""
    out = values.astype(np.uint64)
    escaped = out == ESCAPE
    if escaped.any():
        wide = np.frombuffer(raw, dtype="<u8")
        if np.any(wide < ESCAPE) or np.any(wide >= 2**40):
            raise CodecError("an escaped value below 255 or beyond 2^40")
        out[escaped] = wide
    return out


def _read_class(reader: _Reader, n: int) -> np.ndarray:
    """The residuals of a class of n targets (README §3.3)."""
    mode = reader.take(1)[0]
    if mode == EMPTY:
        return np.zeros(n, dtype=np.int64)
    if mode == JOINT:
        data = reader.inflate(n, escaped=True)
        return _unzigzag(_wide(np.frombuffer(data[:n], dtype=np.uint8), data[n:]))
    if mode != SPLIT:
        raise CodecError(f"class mode {mode} is not 0, 1 or 2")
    packed = np.frombuffer(reader.inflate(-(-n // 8)), dtype=np.uint8)
    bits = np.unpackbits(packed, count=n).astype(bool)
    if n % 8 and int(packed[-1]) & ((1 << (8 - n % 8)) - 1):
        raise CodecError("a bitmap's padding bits are not 0")
    count = int(np.count_nonzero(bits))
    data = reader.inflate(count, escaped=True)
    z = np.zeros(n, dtype=np.uint64)
    z[bits] = _wide(np.frombuffer(data[:count], dtype=np.uint8), data[count:]) + 1
    return _unzigzag(z)


def _check_end(reader: _Reader, k: np.ndarray) -> None:
    if reader.at != len(reader.data):
        raise CodecError(f"{len(reader.data) - reader.at} bytes left over after the last pass")
    if abs(int(k[0, 0, 0])) > MAX_CODE:
        raise CodecError("a decoded code exceeds 2^31 − 1")
