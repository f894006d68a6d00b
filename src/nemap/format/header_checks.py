"""The header's checks (spec/0.1/nemap.md §4–§8 and the amendments of later versions): read with its size
checked first, strict JSON, versions and extensions, the JSON Schema, the evidence member, then the rules
the schema cannot say (geometry, normalization, the network chain)."""

from __future__ import annotations

import os
import struct
from typing import Any

import h5py
import jsonschema
import numpy as np

from nemap.format.header_json import load_schema, parse_header_json
from nemap.format.inspector import Inspector, Stop
from nemap.format.kinds import extensions, kind_of
from nemap.format.limits import MAX_GRID_VOXELS, MAX_HEADER_BYTES, parse_version

EVIDENCE_SCHEMA = "evidence"  # schema/evidence/header.schema.json: the evidence member (spec/0.2/nemap.md §5.1)


def read_header(ins: Inspector, datasets: dict[str, h5py.Dataset]) -> dict[str, Any]:
    """The header as a JSON object (R-HDR-01), its size checked before it is read."""
    ds = datasets.get("/header")
    if ds is None:
        ins.add("HEADER_MISSING", "dataset /header is missing", "/header", fatal=True)
    info = h5py.check_string_dtype(ds.dtype)
    if info is None or ds.shape != ():
        ins.add("STRING_NOT_UTF8", "/header must be a scalar UTF-8 string dataset", "/header", fatal=True)
    size = _string_bytes(ins, ds, info)
    if size is not None and size > MAX_HEADER_BYTES:
        ins.add("HEADER_TOO_LARGE", f"header is {size} bytes (limit {MAX_HEADER_BYTES})", "/header", fatal=True)
    raw = ds[()]
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        header = parse_header_json(text.rstrip("\x00"))
    except (UnicodeDecodeError, ValueError) as exc:
        ins.add("HEADER_NOT_JSON", f"header is not valid JSON ({exc})", "/header", fatal=True)
    if not isinstance(header, dict):
        ins.add("HEADER_NOT_JSON", "header is not a JSON object", "/header", fatal=True)
    ins.header = header
    return header


def _string_bytes(ins: Inspector, ds: h5py.Dataset, info: Any) -> int | None:
    """Length in bytes of a scalar string dataset, found without reading the string."""
    if info.length is not None:
        return int(info.length)
    offset = ds.id.get_offset()
    if offset is None:  # compact or empty storage: bounded by the file size
        size = os.path.getsize(ins.path)
        return size if size > MAX_HEADER_BYTES else None
    with open(ins.path, "rb") as fh:
        fh.seek(offset)
        prefix = fh.read(4)
    return struct.unpack("<I", prefix)[0] if len(prefix) == 4 else None


def check_header(ins: Inspector, header: dict[str, Any]) -> None:
    """Versions, extensions, the kind's member, evidence, the schema, then the semantic rules."""
    version = parse_version(header.get("nemap_version"))
    if header.get("nemap_version") is not None and version != ins.file_version:
        ins.add("VERSION_MISMATCH",
                f"header nemap_version {header.get('nemap_version')!r} disagrees with the root attribute "
                f"{ins.file_version[0]}.{ins.file_version[1]}" if ins.file_version else "", "/header#/nemap_version")
    _check_extensions(ins, header)
    _check_evidence_member(ins, header)
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(header), key=lambda e: list(e.absolute_path))
    for err in errors:
        pointer = "/" + "/".join(str(p) for p in err.absolute_path)
        ins.add("SCHEMA_VIOLATION", f"header {pointer}: {err.message}", f"/header#{pointer}")
    if errors:
        raise Stop()
    _check_semantics(ins, header)


def _check_extensions(ins: Inspector, header: dict[str, Any]) -> None:
    """§4: required extensions must be declared and implemented; optional ones are ignored; the declared
    kind's own header rules."""
    used = header.get("extensions_used", []) or []
    required = header.get("extensions_required", []) or []
    if not (isinstance(used, list) and isinstance(required, list)):
        return  # the schema check reports it
    known = extensions()
    for name in required:
        if name not in used:
            ins.add("EXTENSION_UNDECLARED", f"extension {name!r} is required but not in extensions_used",
                    "/header#/extensions_required")
        if name not in known:
            ins.add("EXTENSION_REQUIRED_UNSUPPORTED", f"requires extension {name!r}, which this reader does not "
                    "implement", "/header#/extensions_required", fatal=True)
    for name in used:
        if name not in required and name not in known:
            ins.add("EXTENSION_UNSUPPORTED", f"ignoring optional extension {name!r}", "/header#/extensions_used")
    members = header.get("extensions")
    for name in sorted(members) if isinstance(members, dict) else []:
        if name not in used:
            ins.add("EXTENSION_UNLISTED", f"extensions.{name} is ignored: extensions_used does not list {name!r}",
                    f"/header#/extensions/{name}")
    kind_of(header).check_member(ins, header)


def _check_evidence_member(ins: Inspector, header: dict[str, Any]) -> None:
    """spec/0.2/nemap.md §5.1 (R-EVD-01): ``evidence`` only in a file of version 0.2 or later, valid against its
    schema."""
    if "evidence" not in header:
        return
    if (ins.file_version or (0, 0)) < (0, 2):
        ins.add("EVIDENCE_INVALID", "the evidence member needs a file of version 0.2 or later", "/header#/evidence")
    validator = jsonschema.Draft202012Validator(load_schema(EVIDENCE_SCHEMA))
    for err in validator.iter_errors(header["evidence"]):
        pointer = "/".join(str(p) for p in err.absolute_path)
        ins.add("SCHEMA_VIOLATION", f"header /evidence/{pointer}: {err.message}", f"/header#/evidence/{pointer}",
                fatal=True)


def _check_semantics(ins: Inspector, header: dict[str, Any]) -> None:
    _check_geometry(ins, header["geometry"])
    norm = header["normalization"]
    if not norm["value_max"] > norm["value_min"]:
        ins.add("NORMALIZATION_INVALID", "normalization value_max must be greater than value_min",
                "/header#/normalization")
    layers = header["network"]["layers"]
    inputs = kind_of(header).network_inputs(header)
    chain = [inputs] + [layer["out_features"] for layer in layers]
    if [layer["in_features"] for layer in layers] != chain[:-1] or chain[-1] != 1:
        ins.add("NETWORK_SHAPE_CHAIN_BROKEN",
                f"layer sizes {[(layer['in_features'], layer['out_features']) for layer in layers]} do not chain "
                f"{inputs} → … → 1", "/header#/network/layers")
    if header["regions"]["network_count"] > header["regions"]["count"]:
        ins.add("REGION_NETWORK_INDEX_INVALID", "regions.network_count exceeds regions.count", "/header#/regions")


def _check_geometry(ins: Inspector, geo: dict[str, Any]) -> None:
    shape = geo["grid_shape"]
    if int(np.prod(np.asarray(shape, dtype=np.float64))) > MAX_GRID_VOXELS:
        ins.add("LIMIT_EXCEEDED", f"grid of {shape} voxels exceeds the limit of 2^36", "/header#/geometry/grid_shape")
    a = np.asarray(geo["index_to_physical"], dtype=np.float64)
    lin = a[:, :3]
    if (np.any(lin[~np.eye(3, dtype=bool)] != 0) or np.any(np.diag(lin) <= 0)
            or not np.array_equal(np.diag(lin), np.asarray(geo["voxel_size"], dtype=np.float64))
            or not np.array_equal(a[:, 3], np.asarray(geo["origin"], dtype=np.float64))):
        ins.add("GEOMETRY_INCONSISTENT",
                "index_to_physical must be diagonal with voxel_size on the diagonal and origin as translation",
                "/header#/geometry/index_to_physical")
