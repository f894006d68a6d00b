"""Quantized regions: the registered extension NEMAP_quantized (spec/extensions/NEMAP_quantized/README.md).

The map is the quintic B-spline that interpolates its decoded voxels, and the voxels are stored as integer codes
k (decoded value = step · k, density units) in tiles, each tile coded by ``voxel_codec``. The file
declares a bound: every decoded voxel lies within ``error_bound`` of the source voxel; it records the noise
estimate the bound came from and a certificate (the FSC of the decoded map against its source, per shell).
A reader decodes only the tiles it needs.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import numpy as np

from nemap.errors import FormatError
from nemap.format.content import NeuralMapContent
from nemap.format.header_json import load_schema
from nemap.format.kinds import voxel_codec
from nemap.format.kinds.base import RegionKind, _listed
from nemap.machine import map_on_cores

EXTENSION = "NEMAP_quantized"
STREAMS = f"/extensions/{EXTENSION}/streams"
OFFSETS = f"/extensions/{EXTENSION}/offsets"
BASE_STREAMS = f"/extensions/{EXTENSION}/base_streams"
BASE_OFFSETS = f"/extensions/{EXTENSION}/base_offsets"
CERTIFICATE = f"/extensions/{EXTENSION}/certificate"
CERTIFICATE_COLUMNS = ("frequency", "fsc", "power")  # Å⁻¹; FSC(decoded, source); the shell's share of the power
STEP_SLACK = 1e-9  # step ≤ 2 · error_bound · (1 + STEP_SLACK): the bound the rounding of a code keeps


@dataclass
class QuantizedVoxels:
    """What a quantized file stores: the header member and the arrays (tile streams concatenated, tile t is
    ``streams[offsets[t]:offsets[t + 1]]``, tiles in C order of the tile grid, x slowest)."""

    member: dict[str, Any]
    streams: np.ndarray
    offsets: np.ndarray
    certificate: np.ndarray | None = None
    base_streams: np.ndarray | None = None
    base_offsets: np.ndarray | None = None
    _read: Callable[[str, int, int], bytes] | None = field(default=None, repr=False)
    path: Any = None  # the file, named in errors

    @property
    def step(self) -> float:
        return float(self.member["step"])

    @property
    def tile_shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.member["tile_shape"])  # type: ignore[return-value]

    def tile_bytes(self, t: int, base: bool = False) -> bytes:
        """Tile t's bytes of voxel codes, or of base coefficient codes (read from the file when the voxels came
        from one: only those bytes)."""
        offsets, streams = (self.base_offsets, self.base_streams) if base else (self.offsets, self.streams)
        start, stop = int(offsets[t]), int(offsets[t + 1])
        if self._read is not None:
            return self._read(BASE_STREAMS if base else STREAMS, start, stop)
        return bytes(np.asarray(streams[start:stop], dtype=np.uint8).tobytes())

    @property
    def base(self) -> dict[str, Any] | None:
        """The member's ``base`` (spacing_tenths, step), or None."""
        return self.member.get("base")


def base_nodes(extent: int, tenths: int) -> int:
    """Coefficients of a tile's base along an axis of ``extent`` voxels at a spacing of tenths/10 voxels:
    ⌈10·(extent − 1)/tenths⌉ + 3 (integer arithmetic)."""
    return -(-10 * (extent - 1) // tenths) + 3


def base_matrix(extent: int, tenths: int) -> np.ndarray:
    """Weights [extent, nodes] of a tile's base along one axis: voxel i, node p: β₃(10·i/tenths − p + 1), with the
    cubic B-spline β₃(a) = 2/3 − a² + |a|³/2 for |a| < 1, (2 − |a|)³/6 for 1 ≤ |a| < 2, else 0 (binary64)."""
    a = np.abs(10.0 * np.arange(extent)[:, None] / tenths - np.arange(base_nodes(extent, tenths))[None, :] + 1.0)
    return np.where(a < 1, 2.0 / 3.0 - a * a + a * a * a / 2.0, np.where(a < 2, (2.0 - a) ** 3 / 6.0, 0.0))


def evaluate_base(codes: np.ndarray, extent: tuple[int, ...], tenths: Any, step: float) -> np.ndarray:
    """The base of a tile, float64 [extent]: step · the base codes [nodes] contracted with the axis matrices."""
    out = np.asarray(codes, dtype=np.float64) * step
    for a in range(3):
        out = np.moveaxis(np.tensordot(base_matrix(int(extent[a]), int(tenths[a])), out, axes=([1], [a])), 0, a)
    return out


def tile_data(q: QuantizedVoxels, t: int) -> tuple[bytes, bytes | None]:
    """Tile t's bytes of voxel codes and of base codes (None without a base), read from the file."""
    return q.tile_bytes(t), (q.tile_bytes(t, base=True) if q.base is not None else None)


def decode_tile(q: QuantizedVoxels, t: int, grid_shape: Any,
                data: tuple[bytes, bytes | None] | None = None) -> np.ndarray:
    """Tile t's decoded densities, float64 [its voxels of the grid]: step · k, plus the base when the file has one
    (``data``: the tile's bytes, when already read). A tile that does not decode is a FormatError
    (QUANTIZED_INVALID) naming the file and the tile."""
    extent = tuple(s.stop - s.start for s in tile_box(t, grid_shape, q.tile_shape))
    codes_bytes, base_bytes = data if data is not None else tile_data(q, t)
    try:
        values = q.step * voxel_codec.decode_tile(codes_bytes, extent)
        base = q.base
        if base is not None and base_bytes is not None:
            nodes = tuple(base_nodes(n, s) for n, s in zip(extent, base["spacing_tenths"]))
            codes = voxel_codec.decode_tile(base_bytes, nodes)
            values += evaluate_base(codes, extent, base["spacing_tenths"], float(base["step"]))
    except voxel_codec.CodecError as exc:
        raise FormatError(f"tile {t} does not decode: {exc}", path=q.path, code="QUANTIZED_INVALID") from None
    return values


def tile_grid(grid_shape: Any, tile_shape: Any) -> tuple[int, int, int]:
    """Tiles per axis: ⌈n_a / tile_a⌉."""
    return tuple(-(-int(n) // int(t)) for n, t in zip(grid_shape, tile_shape))  # type: ignore[return-value]


def tile_box(index: int, grid_shape: Any, tile_shape: Any) -> tuple[slice, slice, slice]:
    """The voxels of tile ``index`` (C order of the tile grid) as slices of the map's grid (x, y, z)."""
    counts = tile_grid(grid_shape, tile_shape)
    ijk = np.unravel_index(index, counts)
    return tuple(slice(int(i) * int(t), min((int(i) + 1) * int(t), int(n)))
                 for i, t, n in zip(ijk, tile_shape, grid_shape))  # type: ignore[return-value]


def tile_boxes(grid_shape: Any, tile_shape: Any) -> list[tuple[slice, slice, slice]]:
    """Every tile's voxels (``tile_box``), in C order of the tile grid."""
    return [tile_box(t, grid_shape, tile_shape) for t in range(int(np.prod(tile_grid(grid_shape, tile_shape))))]


def tiles_touching(lo: Any, hi: Any, grid_shape: Any, tile_shape: Any) -> list[int]:
    """Tiles holding any voxel of the index box lo … hi − 1 (per axis, clipped to the grid)."""
    counts = tile_grid(grid_shape, tile_shape)
    ranges = [range(max(0, int(a) // int(t)), min(c, -(-int(b) // int(t))))
              for a, b, t, c in zip(lo, hi, tile_shape, counts)]
    return [int(np.ravel_multi_index((i, j, k), counts)) for i in ranges[0] for j in ranges[1] for k in ranges[2]]


def decode_voxels(q: QuantizedVoxels, grid_shape: Any, lo: Any, hi: Any,
                  cache: MutableMapping[int, np.ndarray] | None = None) -> np.ndarray:
    """Decoded densities float64 [hi − lo] of the voxel box lo … hi − 1 (x, y, z), from the tiles it touches;
    ``cache``: decoded tiles by index, used and filled (it may forget tiles as it likes)."""
    lo, hi = np.maximum(np.asarray(lo, dtype=np.int64), 0), np.minimum(np.asarray(hi, dtype=np.int64), grid_shape)
    tiles = tiles_touching(lo, hi, grid_shape, q.tile_shape)
    found = {t: cache[t] for t in tiles if cache is not None and t in cache}
    missing = [t for t in tiles if t not in found]
    data = {t: tile_data(q, t) for t in missing}  # read here, one after the other: HDF5 is not thread-safe

    decoded = map_on_cores(lambda t: decode_tile(q, t, grid_shape, data.pop(t)), missing)
    for t, values in zip(missing, decoded):
        found[t] = values
        if cache is not None:
            cache[t] = values
    out = np.empty(tuple(int(v) for v in hi - lo), dtype=np.float64)
    for t, values in found.items():
        box = tile_box(t, grid_shape, q.tile_shape)
        a = [max(s.start, int(lo[k])) for k, s in enumerate(box)]
        b = [min(s.stop, int(hi[k])) for k, s in enumerate(box)]
        src = tuple(slice(a[k] - box[k].start, b[k] - box[k].start) for k in range(3))
        dst = tuple(slice(a[k] - int(lo[k]), b[k] - int(lo[k])) for k in range(3))
        out[dst] = values[src]
    return out


class QuantizedKind(RegionKind):
    name = "quantized"
    extension = EXTENSION
    min_version = (0, 3)

    def holds(self, content: NeuralMapContent) -> bool:
        return content.quantized is not None

    def check_member(self, ins: Any, header: dict[str, Any]) -> None:
        """R-QNT-01: listed in both lists, in a file of version 0.3 or later, with a valid member."""
        if EXTENSION not in _listed(header, "extensions_required") or (ins.file_version or (0, 0)) < self.min_version:
            ins.add("QUANTIZED_INVALID", f"{EXTENSION} must be listed in extensions_required of a file of version 0.3 "
                    "or later", "/header#/extensions_required")
        extensions = header.get("extensions")
        member = extensions.get(EXTENSION) if isinstance(extensions, dict) else None
        for err in jsonschema.Draft202012Validator(load_schema(EXTENSION)).iter_errors(member):
            pointer = "/".join(str(p) for p in err.absolute_path)
            ins.add("SCHEMA_VIOLATION", f"header /extensions/{EXTENSION}/{pointer}: {err.message}",
                    f"/header#/extensions/{EXTENSION}/{pointer}", fatal=True)
        if member["step"] > 2 * member["error_bound"] * (1 + STEP_SLACK):
            ins.add("QUANTIZED_INVALID", f"step {member['step']:g} exceeds twice the declared error_bound "
                    f"{member['error_bound']:g}: rounding to codes could not keep the bound",
                    f"/header#/extensions/{EXTENSION}/step")

    def expected_datasets(self, header: dict[str, Any]) -> dict[str, tuple[tuple[int, ...] | None, str]]:
        member = header["extensions"][EXTENSION]
        tiles = int(np.prod(tile_grid(header["geometry"]["grid_shape"], member["tile_shape"])))
        out: dict[str, tuple[Any, str]] = {STREAMS: (None, "u1"), OFFSETS: ((tiles + 1,), "<i8")}
        if "certificate" in member:
            out[CERTIFICATE] = ((-1, len(CERTIFICATE_COLUMNS)), "<f8")
        if "base" in member:
            out[BASE_STREAMS] = (None, "u1")
            out[BASE_OFFSETS] = ((tiles + 1,), "<i8")
        return out

    def check_values(self, ins: Any, header: dict[str, Any], bounds: np.ndarray, network_index: np.ndarray) -> None:
        """R-QNT-02: one region over the whole grid, without a network."""
        top = np.asarray(header["geometry"]["grid_shape"]) - 1
        whole = bounds.shape[0] == 1 and np.all(bounds[0, 0] == 0) and np.all(bounds[0, 1] == top)
        if not whole or header["regions"]["network_count"] != 0:
            ins.add("QUANTIZED_INVALID", "a quantized file has exactly one region, over the whole grid, and no "
                    "network", "/regions/bounds")

    def check_arrays(self, ins: Any, header: dict[str, Any], read: Any, deep: bool = False) -> None:
        """R-QNT-03: offsets that cut the streams into tiles, (deep) every tile decoding to its voxels; the
        certificate's values."""
        member = header["extensions"][EXTENSION]
        streams, offsets = read(STREAMS), read(OFFSETS)
        base = (read(BASE_STREAMS), read(BASE_OFFSETS)) if "base" in member else (None, None)
        for path, (data, cuts) in ((OFFSETS, (streams, offsets)), (BASE_OFFSETS, base)):
            if cuts is not None and (cuts[0] != 0 or np.any(np.diff(cuts) < 0) or cuts[-1] != data.size):
                ins.add("QUANTIZED_INVALID", "offsets must start at 0, never decrease and end at the streams' "
                        "length", path)
                return
        q = QuantizedVoxels(member, streams, offsets, base_streams=base[0], base_offsets=base[1])
        shape = header["geometry"]["grid_shape"]
        for t in range(offsets.size - 1 if deep else 0):
            try:
                decode_tile(q, t, shape)
            except FormatError as exc:
                ins.add("QUANTIZED_INVALID", exc.message, STREAMS)
                return
        if "certificate" in member:
            table = read(CERTIFICATE)
            if not np.all(np.isfinite(table)) or np.any(np.abs(table[:, 1]) > 1 + 1e-9):
                ins.add("QUANTIZED_INVALID", "the certificate holds non-finite values or an FSC outside [−1, 1]",
                        CERTIFICATE)

    def member(self, content: NeuralMapContent) -> dict[str, Any] | None:
        return content.quantized.member

    def arrays(self, content: NeuralMapContent) -> dict[str, np.ndarray]:
        q = content.quantized
        out = {STREAMS: np.ascontiguousarray(q.streams, dtype="u1"),
               OFFSETS: np.ascontiguousarray(q.offsets, dtype="<i8")}
        if q.certificate is not None:
            out[CERTIFICATE] = np.ascontiguousarray(q.certificate, dtype="<f8")
        if q.base_streams is not None:
            out[BASE_STREAMS] = np.ascontiguousarray(q.base_streams, dtype="u1")
            out[BASE_OFFSETS] = np.ascontiguousarray(q.base_offsets, dtype="<i8")
        return out

    def region_kinds(self, header: dict[str, Any], network_index: np.ndarray) -> np.ndarray:
        return np.full(np.asarray(network_index).shape, self.name, dtype=object)

    def describe(self, header: dict[str, Any]) -> dict[str, Any]:
        member = header["extensions"][EXTENSION]
        keep = ("order", "tile_shape", "step", "error_bound", "base", "noise", "certificate")
        return {k: member[k] for k in keep if k in member}


KIND = QuantizedKind()
