"""An independent .nemap reader, written from spec/0.1/nemap.md, spec/0.2/nemap.md and
spec/extensions/NEMAP_feature_grid/README.md alone (NumPy + h5py, no torch, and nothing imported from
the ``nemap`` package).

It exists to prove that the spec is enough to implement a reader, and it is the second reader the
conformance harness runs. It is also a program that speaks the harness protocol
(spec/0.1/conformance.md §3), so it can be copied as a starting point for readers in other
languages:

    python -m nemap.conformance.numpy_reader [--float32]      # JSON lines on stdin → JSON lines on stdout

Library use::

    f = NemapFile("map.nemap")                 # refuses a bad file with ReaderError(code, message)
    density, gradient = f.evaluate(points)     # points [N, 3] in Å (x, y, z); gradient per Å

Spec sections are cited where each rule is implemented.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
import sys
from typing import Any

import h5py
import numpy as np

from nemap.conformance import numpy_evaluate, numpy_evidence, numpy_header, numpy_quantized  # siblings

IMPLEMENTS = (0, 3)
EXTENSIONS = {"NEMAP_feature_grid", "NEMAP_quantized"}  # spec/extensions/
QUANTIZED = "/extensions/NEMAP_quantized/"
FEATURE_GRID = "/extensions/NEMAP_feature_grid/coefficients"
SIGNATURE = b"\x89HDF\r\n\x1a\n"
VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
MAX_HEADER = 16 * 2**20       # §3.6
MAX_REGIONS = 1_000_000
MAX_LAYERS = 64
MAX_FEATURES = 4096
MAX_ELEMENTS = 2**30
MAX_TOTAL_ELEMENTS = 2**31
MAX_DEPTH = 64
ALLOWED_FILTERS = {1, 2, 3}   # deflate, shuffle, fletcher32 (§3.5)


class ReaderError(Exception):
    """The file is refused: ``code`` is the spec's validation code (§14)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def _fail(code: str, message: str) -> None:
    raise ReaderError(code, message)


def _scalar_string(obj: Any, what: str) -> str:
    """§3.4: a scalar string, variable or fixed length, UTF-8 or ASCII; trailing NULs ignored."""
    if obj.shape not in ((), None) or h5py.check_string_dtype(obj.dtype) is None:
        _fail("STRING_NOT_UTF8", f"{what} is not a scalar string")
    return obj


def _attr_string(f: h5py.File, name: str) -> str | None:
    if name not in f.attrs:
        return None
    _scalar_string(f.attrs.get_id(name), f"root attribute {name}")
    v = f.attrs[name]
    return (v.decode("utf-8") if isinstance(v, bytes) else str(v)).rstrip("\x00")


def _need(cond: bool, what: str) -> None:
    if not cond:
        _fail("SCHEMA_VIOLATION", what)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_list_of(x: Any, length: int, ok: Any) -> bool:
    """x is a list of ``length`` items that each satisfy ``ok``."""
    return isinstance(x, list) and len(x) == length and all(ok(v) for v in x)


def _need_geometry_members(shape: Any, vs: Any, org: Any, aff: Any) -> None:
    """§6: grid_shape, voxel_size, origin and index_to_physical of the right forms."""
    _need(_is_list_of(shape, 3, lambda n: _is_int(n) and 1 <= n <= 65536), "grid_shape")
    _need(_is_list_of(vs, 3, lambda v: _is_num(v) and v > 0), "voxel_size")
    _need(_is_list_of(org, 3, _is_num), "origin")
    _need(_is_list_of(aff, 3, lambda row: _is_list_of(row, 4, _is_num)), "index_to_physical")


class NemapFile:
    """One opened, checked .nemap file; all arrays are read into memory (small files are the aim)."""

    def __init__(self, path: str, verify: bool = False):
        self.path = path
        self._check_bytes()
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            _fail("IO_NOT_HDF5", str(exc).splitlines()[0])
        with f:
            self._identify(f)
            datasets = self._walk(f)
            self.header = self._read_header(f, datasets)
            self._interpret(self.header)
            self._load(datasets, verify)

    # §3.1, R-HDF-01/02: the bytes
    def _check_bytes(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(9)
        except OSError as exc:
            _fail("IO_CANNOT_OPEN", exc.strerror or str(exc))
        if head[:8] != SIGNATURE:
            with open(self.path, "rb") as fh:
                for off in (512, 1024, 2048, 4096):
                    fh.seek(off)
                    if fh.read(8) == SIGNATURE:
                        _fail("HDF5_USER_BLOCK", f"user block of {off} bytes")
            _fail("IO_NOT_HDF5", "no HDF5 signature at byte 0")
        if len(head) < 9 or head[8] > 2:
            _fail("HDF5_SUPERBLOCK_TOO_NEW", "superblock version above 2")

    # §4: identification and version
    def _identify(self, f: h5py.File) -> None:
        if _attr_string(f, "nemap_format") != "nemap":
            _fail("FORMAT_TAG_MISSING", "root attribute nemap_format is not 'nemap'")
        text = _attr_string(f, "nemap_version")
        if text is None:
            _fail("VERSION_MISSING", "no nemap_version attribute")
        m = VERSION_RE.match(text)
        if not m:
            _fail("VERSION_MALFORMED", f"nemap_version {text!r}")
        self.version = (int(m.group(1)), int(m.group(2)))
        if self.version[0] != IMPLEMENTS[0]:
            _fail("VERSION_MAJOR_UNSUPPORTED", f"format {text}")

    # §3.2–3.5: links, objects, attributes, filters
    def _walk(self, f: h5py.File) -> dict[str, h5py.Dataset]:
        if set(f.attrs) - {"nemap_format", "nemap_version"}:
            _fail("HDF5_FORBIDDEN_ATTRIBUTE", "extra root attribute")
        found: dict[str, h5py.Dataset] = {}
        todo = [("", f)]
        seen = {h5py.h5o.get_info(f.id).addr}  # R-HDF-03: one link per object (no alias, no cycle)
        while todo:
            prefix, group = todo.pop()
            for name in group:
                path = f"{prefix}/{name}"
                link = group.get(name, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    _fail("HDF5_FORBIDDEN_LINK", f"{path} is not a hard link")
                obj = group[name]
                address = h5py.h5o.get_info(obj.id).addr
                if address in seen:
                    _fail("HDF5_FORBIDDEN_LINK", f"{path} links an object that is already linked")
                seen.add(address)
                if len(obj.attrs):
                    _fail("HDF5_FORBIDDEN_ATTRIBUTE", f"attribute on {path}")
                if isinstance(obj, h5py.Group):
                    todo.append((path, obj))
                elif isinstance(obj, h5py.Dataset):
                    if obj.is_virtual or obj.external or h5py.check_ref_dtype(obj.dtype) is not None:
                        _fail("HDF5_FORBIDDEN_OBJECT", f"{path} is virtual, external or holds references")
                    plist = obj.id.get_create_plist()
                    for i in range(plist.get_nfilters()):
                        if plist.get_filter(i)[0] not in ALLOWED_FILTERS:
                            _fail("FILTER_NOT_ALLOWED", f"{path} uses filter {plist.get_filter(i)[0]}")
                    found[path] = obj
                else:
                    _fail("HDF5_FORBIDDEN_OBJECT", f"{path} is a named datatype")
        return found

    # §5, R-HDR-01, R-HDF-10: the header, size checked before reading
    def _read_header(self, f: h5py.File, datasets: dict[str, h5py.Dataset]) -> dict[str, Any]:
        ds = datasets.get("/header")
        if ds is None:
            _fail("HEADER_MISSING", "no /header")
        _scalar_string(ds, "/header")
        info = h5py.check_string_dtype(ds.dtype)
        if info.length is not None:
            size = info.length
        else:  # a variable-length element starts with its 4-byte little-endian length (§3.6)
            offset = ds.id.get_offset()
            size = os.path.getsize(self.path)  # compact storage: bounded by the file's size (§3.6)
            if offset is not None:
                with open(self.path, "rb") as fh:
                    fh.seek(offset)
                    size = struct.unpack("<I", fh.read(4))[0]
        if size > MAX_HEADER:
            _fail("HEADER_TOO_LARGE", f"{size} bytes")
        raw = ds[()]
        try:
            text = (raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)).rstrip("\x00")
            header = numpy_header.parse(text)
        except (ValueError, RecursionError) as exc:
            _fail("HEADER_NOT_JSON", f"{type(exc).__name__}: {str(exc)[:100]}")
        if not isinstance(header, dict):
            _fail("HEADER_NOT_JSON", "not an object")
        return header

    # §4–§8: the members this reader needs, checked as far as evaluation depends on them
    def _interpret(self, h: dict[str, Any]) -> None:
        self._interpret_versions(h)
        for key in ("geometry", "normalization", "regions", "network", "integrity"):
            _need(isinstance(h.get(key), dict), f"member {key}")
        self._interpret_geometry(h["geometry"])
        self._interpret_normalization(h["normalization"])
        self._interpret_regions(h["regions"])
        self._interpret_network(h["network"])
        arrays = h["integrity"].get("arrays")
        _need(isinstance(arrays, dict), "integrity.arrays")
        self.digests = arrays

    # §4
    def _interpret_versions(self, h: dict[str, Any]) -> None:
        if h.get("nemap_version") != f"{self.version[0]}.{self.version[1]}":
            _fail("VERSION_MISMATCH", "header and attribute versions differ")
        used, required = h.get("extensions_used", []), h.get("extensions_required", [])
        _need(isinstance(used, list) and isinstance(required, list), "extensions lists")
        for name in required:
            if name not in used:
                _fail("EXTENSION_UNDECLARED", f"{name} required but not used")
            if name not in EXTENSIONS:
                _fail("EXTENSION_REQUIRED_UNSUPPORTED", f"{name}")
        self.grid_channels = 0
        self.quantized = None
        if "NEMAP_feature_grid" in used:
            self._interpret_feature_grid(h, required)
        if "NEMAP_quantized" in used:
            self._interpret_quantized(h, required)

    # NEMAP_quantized §2, R-QNT-01: the header member
    def _interpret_quantized(self, h: dict[str, Any], required: list[Any]) -> None:
        if "NEMAP_quantized" not in required or self.version < (0, 3):
            _fail("QUANTIZED_INVALID", "NEMAP_quantized must be required, in a file of version 0.3 or later")
        member = (h.get("extensions") or {}).get("NEMAP_quantized") if isinstance(h.get("extensions"), dict) else None
        _need(isinstance(member, dict) and member.get("order") == 5, "extensions.NEMAP_quantized.order")
        _need(_is_list_of(member.get("tile_shape"), 3, lambda t: _is_int(t) and 1 <= t <= 128), "tile_shape")
        _need(_is_num(member.get("step")) and member["step"] > 0, "step")
        _need(_is_num(member.get("error_bound")) and member["error_bound"] > 0, "error_bound")
        base = member.get("base")
        _need(base is None or (isinstance(base, dict) and _is_num(base.get("step")) and base["step"] > 0 and
                               _is_list_of(base.get("spacing_tenths"), 3, lambda s: _is_int(s) and 10 <= s <= 640)),
              "base")
        if member["step"] > 2 * member["error_bound"] * (1 + 1e-9):
            _fail("QUANTIZED_INVALID", "step exceeds twice the error bound")
        self.quantized = member

    # NEMAP_feature_grid §2: the header member
    def _interpret_feature_grid(self, h: dict[str, Any], required: list[Any]) -> None:
        if "NEMAP_feature_grid" not in required or self.version < (0, 2):
            _fail("FEATURE_GRID_INVALID", "NEMAP_feature_grid must be required, in a file of version 0.2 or later")
        member = (h.get("extensions") or {}).get("NEMAP_feature_grid") if isinstance(h.get("extensions"),
                                                                                     dict) else None
        _need(isinstance(member, dict), "extensions.NEMAP_feature_grid")
        order, channels, nodes = member.get("order"), member.get("channels"), member.get("node_shape")
        _need(order in (3, 5) and _is_int(order), "NEMAP_feature_grid.order")
        _need(_is_int(channels) and 1 <= channels <= MAX_FEATURES, "NEMAP_feature_grid.channels")
        _need(_is_list_of(nodes, 3, lambda k: _is_int(k) and 4 <= k <= 65539), "NEMAP_feature_grid.node_shape")
        self.grid_order, self.grid_channels, self.grid_nodes = order, channels, tuple(nodes)

    # §6
    def _interpret_geometry(self, geo: dict[str, Any]) -> None:
        shape, vs = geo.get("grid_shape"), geo.get("voxel_size")
        org, aff = geo.get("origin"), geo.get("index_to_physical")
        _need_geometry_members(shape, vs, org, aff)
        # R-GEO-01: diagonal, equal to voxel_size and origin, exactly
        for i in range(3):
            for j in range(3):
                if aff[i][j] != (vs[i] if i == j else 0.0):
                    _fail("GEOMETRY_INCONSISTENT", "index_to_physical vs voxel_size")
            if aff[i][3] != org[i]:
                _fail("GEOMETRY_INCONSISTENT", "index_to_physical vs origin")
        if math.prod(shape) > 2**36:
            _fail("LIMIT_EXCEEDED", f"grid of {shape} voxels")
        self.shape = np.array(shape, dtype=np.int64)
        self.voxel = np.array(vs, dtype=np.float64)
        self.origin = np.array(org, dtype=np.float64)

    # §7
    def _interpret_normalization(self, nrm: dict[str, Any]) -> None:
        _need(nrm.get("method") == "minmax", "normalization.method")
        _need(_is_num(nrm.get("value_min")) and _is_num(nrm.get("value_max")), "normalization values")
        _need(isinstance(nrm.get("clamp_negative"), bool), "clamp_negative")
        if not nrm["value_max"] > nrm["value_min"]:
            _fail("NORMALIZATION_INVALID", "value_max <= value_min")
        self.vmin, self.vmax = float(nrm["value_min"]), float(nrm["value_max"])

    # §8.1, §9.2
    def _interpret_regions(self, reg: dict[str, Any]) -> None:
        blend = reg.get("blend")
        _need(isinstance(blend, dict) and blend.get("method") == "smoothstep-product", "blend.method")
        _need(_is_num(blend.get("ramp_width")) and blend["ramp_width"] > 0, "ramp_width")
        _need(_is_int(reg.get("count")) and 1 <= reg["count"] <= MAX_REGIONS, "regions.count")
        _need(_is_int(reg.get("network_count")) and 0 <= reg["network_count"] <= MAX_REGIONS, "regions.network_count")
        self.rho = float(blend["ramp_width"])
        self.count, self.nets = reg["count"], reg["network_count"]

    # §8.2
    def _interpret_network(self, net: dict[str, Any]) -> None:
        layers = net.get("layers")
        _need(isinstance(layers, list) and 1 <= len(layers) <= MAX_LAYERS, "network.layers")
        for layer in layers:
            _need(isinstance(layer, dict) and layer.get("activation") in ("sine", "identity"), "activation")
            _need(all(_is_int(layer.get(k)) and 1 <= layer[k] <= MAX_FEATURES for k in ("in_features", "out_features")),
                  "layer sizes")
            if layer["activation"] == "sine":
                _need(_is_num(layer.get("omega")) and layer["omega"] > 0, "omega")
        chain_in = [layer["in_features"] for layer in layers]
        chain_out = [layer["out_features"] for layer in layers]
        inputs = self.grid_channels + 5 if self.grid_channels else 3   # NEMAP_feature_grid §3: C − 1 + 6
        if chain_in != [inputs] + chain_out[:-1] or chain_out[-1] != 1:
            _fail("NETWORK_SHAPE_CHAIN_BROKEN", f"layer sizes do not chain {inputs} → … → 1")
        self.layers = layers

    def _dataset(self, datasets: dict[str, h5py.Dataset], path: str, shape: tuple[int, ...],
                 dtype: str) -> h5py.Dataset:
        ds = datasets.get(path)
        if ds is None:
            _fail("DATASET_MISSING", path)
        want = np.dtype(dtype)
        if (ds.dtype.kind != want.kind or ds.dtype.itemsize != want.itemsize
                or (want.itemsize > 1 and ds.dtype.byteorder == ">")):
            _fail("DTYPE_NOT_ALLOWED", f"{path} is {ds.dtype}")
        if tuple(ds.shape) != shape:
            _fail("DATASET_SHAPE_MISMATCH", f"{path} is {ds.shape}, expected {shape}")
        if ds.size > MAX_ELEMENTS:
            _fail("LIMIT_EXCEEDED", path)
        return ds

    # §8: arrays, region rules, finiteness; §10 when verifying
    def _load(self, datasets: dict[str, h5py.Dataset], verify: bool) -> None:
        if sum(ds.size for ds in datasets.values()) > MAX_TOTAL_ELEMENTS:  # §3.6, before reading any
            _fail("LIMIT_EXCEEDED", "more than 2^31 elements in all datasets together")
        R, N = self.count, self.nets
        specs = {"/regions/bounds": ((R, 2, 3), "<i8"), "/regions/network_index": ((R,), "<i8"),
                 "/regions/constant_value": ((R,), "<f4")}
        for i, layer in enumerate(self.layers):
            specs[f"/network/layer_{i:02d}/weight"] = ((N, layer["out_features"], layer["in_features"]), "<f4")
            specs[f"/network/layer_{i:02d}/bias"] = ((N, layer["out_features"]), "<f4")
        if self.grid_channels:
            specs[FEATURE_GRID] = ((N, self.grid_channels, *self.grid_nodes), "<f4")
        values = {p: self._dataset(datasets, p, s, d)[()] for p, (s, d) in specs.items()}
        self.bounds = values["/regions/bounds"].astype(np.int64)
        self.slot = values["/regions/network_index"].astype(np.int64)
        self.constant = values["/regions/constant_value"].astype(np.float64)
        self._check_regions(N)
        for p, v in values.items():
            if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                _fail("NUMERIC_NONFINITE", p)
        self.weights = [values[f"/network/layer_{i:02d}/weight"] for i in range(len(self.layers))]
        self.biases = [values[f"/network/layer_{i:02d}/bias"] for i in range(len(self.layers))]
        self.coefficients = values.get(FEATURE_GRID)
        if self.quantized is not None:
            self._load_quantized(datasets)
        if self.grid_channels:
            spans = (self.bounds[:, 1] - self.bounds[:, 0])[self.slot >= 0]
            if np.any(spans + self.grid_order + 1 > np.asarray(self.grid_nodes)):   # NEMAP_feature_grid §2
                _fail("FEATURE_GRID_INVALID", "node_shape is smaller than a region's extent + order + 1")
        if verify:
            self._verify(datasets)

    # NEMAP_quantized R-QNT-02/03, §3, §4: every voxel decoded, then the interpolating coefficients
    def _load_quantized(self, datasets: dict[str, h5py.Dataset]) -> None:
        top = self.shape - 1
        if self.count != 1 or self.nets != 0 or np.any(self.bounds[0, 0] != 0) or np.any(self.bounds[0, 1] != top):
            _fail("QUANTIZED_INVALID", "not one region over the whole grid without a network")
        tiles = int(np.prod([-(-n // t) for n, t in zip(self.shape, self.quantized["tile_shape"])]))

        def stream(name: str) -> tuple[np.ndarray, np.ndarray]:
            data = datasets.get(QUANTIZED + name + "streams")
            if data is None:
                _fail("DATASET_MISSING", name + "streams")
            if data.dtype != np.uint8 or data.ndim != 1:
                _fail("DTYPE_NOT_ALLOWED" if data.dtype != np.uint8 else "DATASET_SHAPE_MISMATCH", name + "streams")
            return data[()], self._dataset(datasets, QUANTIZED + name + "offsets", (tiles + 1,), "<i8")[()]
        base = stream("base_") if "base" in self.quantized else None
        try:
            d = numpy_quantized.decoded_densities(self.quantized, tuple(int(n) for n in self.shape), *stream(""), base)
        except numpy_quantized.QuantizedError as exc:
            _fail("QUANTIZED_INVALID", str(exc))
        y = 2.0 * (d - self.vmin) / (self.vmax - self.vmin) - 1.0            # §7 without a clamp
        self.quantized_coefficients = numpy_quantized.extended(numpy_quantized.prefilter(y))

    # §8.1
    def _check_regions(self, networks: int) -> None:
        first, last = self.bounds[:, 0], self.bounds[:, 1]
        if np.any(first < 0) or np.any(last > self.shape - 1) or np.any(first > last):
            _fail("REGION_OUT_OF_GRID", "region bounds outside the grid")
        if np.any((first == last) & (self.shape > 1)):
            _fail("REGION_DEGENERATE", "a region one voxel thick where the grid is not")
        used = np.sort(self.slot[self.slot != -1])
        if not np.array_equal(used, np.arange(networks)):
            _fail("REGION_NETWORK_INDEX_INVALID", "network_index is not a bijection onto 0..N-1")

    # §10: SHA-256 of the values, little-endian, C order
    def _verify(self, datasets: dict[str, h5py.Dataset]) -> None:
        for p, want in self.digests.items():
            if p == "/header":  # R-INT-01: never covered; an entry for it is ignored (§14)
                continue
            if p not in datasets:
                _fail("INTEGRITY_DIGEST_ORPHAN", p)
            v = np.asarray(datasets[p][()])
            canonical = np.ascontiguousarray(v, dtype=v.dtype.newbyteorder("<"))
            if "sha256:" + hashlib.sha256(canonical.tobytes()).hexdigest() != want:
                _fail("INTEGRITY_DIGEST_MISMATCH", p)

    # spec/0.2/nemap.md §5.1, R-EVD-03
    def local_resolution(self, points: Any) -> list[float | None]:
        """Å at each point [N, 3] (None where unknown, or everywhere when the file has no grid)."""
        return numpy_evidence.local_resolution(self, points)

    # §9: evaluation (numpy_evaluate, written from §9 and the extensions' READMEs)
    def evaluate(self, points: Any, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
        """Density [N] and gradient [N, 3] (density units per Å) at points [N, 3] (Å, x, y, z).
        Positions and blending are binary64; ``dtype`` is the precision of the networks."""
        return numpy_evaluate.evaluate(self, points, dtype)

    def _weight(self, r: int, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """w_r(q) and ∇_q w_r (§9.2)."""
        return numpy_evaluate._weight(self, r, q)

    def _region(self, r: int, q: np.ndarray, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        """y_r and ∂y_r/∂q at index points q [M, 3] (§8.3 and the extensions)."""
        return numpy_evaluate._region(self, r, q, dtype)


# ------------------------------------------------------------------------------------------
# The harness protocol (spec/0.1/conformance.md §3): one JSON object per line each way
# ------------------------------------------------------------------------------------------

def _json_floats(a: np.ndarray) -> Any:
    if a.ndim > 1:
        return [_json_floats(x) for x in a]
    return [float(v) if np.isfinite(v) else None for v in a]


def handle(request: dict[str, Any], dtype: Any = np.float64) -> dict[str, Any]:
    """Answer one protocol request."""
    op = request.get("op")
    if op == "hello":
        return {"name": "nemap numpy_reader (independent)", "version": "0.1", "spec_versions": ["0.1", "0.2", "0.3"],
                "ops": ["query", "local_resolution"]}
    if op == "query":
        try:
            f = NemapFile(request["file"])
            pts = np.array(request["points"], dtype=np.float64)  # null → NaN
            d, g = f.evaluate(pts.reshape(-1, 3), dtype)
        except ReaderError as exc:
            return {"error": {"code": exc.code, "message": exc.message}}
        except Exception as exc:  # anything else unreadable: refused, without a code
            return {"error": {"code": None, "message": f"{type(exc).__name__}: {exc}"}}
        return {"density": _json_floats(d), "gradient": _json_floats(g)}
    if op == "local_resolution":
        try:
            return {"local_resolution": NemapFile(request["file"]).local_resolution(request["points"])}
        except ReaderError as exc:
            return {"error": {"code": exc.code, "message": exc.message}}
    return {"error": {"code": "UNSUPPORTED_OP", "message": f"unknown op {op!r}"}}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    dtype = np.float32 if "--float32" in args else np.float64
    for line in sys.stdin:
        if line.strip():
            sys.stdout.write(json.dumps(handle(json.loads(line), dtype), allow_nan=False) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
