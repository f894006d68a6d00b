"""Stable validation codes of the .nemap format, with their severities.

A code never changes meaning once released; new checks get new codes. The spec's requirement
table (spec/0.1/nemap.md §14) maps each requirement to one of these codes.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Code:
    severity: str
    summary: str


CODES: dict[str, Code] = {
    # I/O and HDF5 container (spec §3)
    "IO_CANNOT_OPEN": Code(ERROR, "the file does not exist or cannot be read"),
    "IO_NOT_HDF5": Code(ERROR, "the file is not an HDF5 file, or libhdf5 cannot read part of it"),
    "HDF5_USER_BLOCK": Code(ERROR, "the file has an HDF5 user block"),
    "HDF5_SUPERBLOCK_TOO_NEW": Code(ERROR, "superblock version > 2 (not readable by HDF5 1.8)"),
    "HDF5_FORBIDDEN_LINK": Code(ERROR, "a soft or external link, or a second hard link to an object (alias or cycle)"),
    "HDF5_FORBIDDEN_OBJECT": Code(ERROR, "a virtual dataset, external storage, named datatype or reference"),
    "HDF5_FORBIDDEN_ATTRIBUTE": Code(ERROR, "an attribute other than the two root attributes"),
    "FILTER_NOT_ALLOWED": Code(ERROR, "a filter other than deflate, shuffle or fletcher32"),
    "DTYPE_NOT_ALLOWED": Code(ERROR, "a dataset of the wrong datatype or byte order"),
    "STRING_NOT_UTF8": Code(ERROR, "a string that is not a scalar UTF-8 (or ASCII) string"),
    "UNKNOWN_OBJECT": Code(WARNING, "an object this version does not define, outside /extras and /extensions"),
    # identification and versions (spec §4)
    "FORMAT_TAG_MISSING": Code(ERROR, "root attribute nemap_format is missing or not \"nemap\""),
    "VERSION_MISSING": Code(ERROR, "root attribute nemap_version is missing"),
    "VERSION_MALFORMED": Code(ERROR, "a version string is not MAJOR.MINOR"),
    "VERSION_MISMATCH": Code(ERROR, "root attribute and header disagree on the version"),
    "VERSION_MAJOR_UNSUPPORTED": Code(ERROR, "the major version is not implemented by this reader"),
    "VERSION_MINOR_NEWER": Code(INFO, "a newer minor version: unknown members are ignored"),
    "EXTENSION_UNDECLARED": Code(ERROR, "an extension is required but not listed in extensions_used"),
    # the NEMAP_feature_grid extension (spec/extensions/NEMAP_feature_grid/README.md)
    "FEATURE_GRID_INVALID": Code(ERROR, "NEMAP_feature_grid is not required, is in a file older than 0.2, or has "
                                        "fewer nodes than a region needs"),
    "QUANTIZED_INVALID": Code(ERROR, "NEMAP_quantized is not required or in a file older than 0.3, its step exceeds "
                                      "twice its error bound, its file is not one region over the grid, or its "
                                      "tiles do not decode (spec/extensions/NEMAP_quantized/README.md)"),
    "EVIDENCE_INVALID": Code(ERROR, "resolution evidence in a file older than 0.2, or evidence arrays whose values "
                                    "break spec/0.2/nemap.md §5.1 (FSC table, local-resolution grid, mask padding)"),
    "EXTENSION_UNLISTED": Code(WARNING, "an extension's header member or objects in a file that does not list it in "
                                        "extensions_used (ignored)"),
    "EXTENSION_REQUIRED_UNSUPPORTED": Code(ERROR, "a required extension is not implemented by this reader"),
    "EXTENSION_UNSUPPORTED": Code(INFO, "an optional extension is ignored by this reader"),
    # header (spec §5)
    "HEADER_MISSING": Code(ERROR, "dataset /header is missing"),
    "HEADER_TOO_LARGE": Code(ERROR, "the header exceeds 16 MiB"),
    "HEADER_NOT_JSON": Code(ERROR, "the header is not a JSON object (or has NaN, Infinity, duplicate keys)"),
    "SCHEMA_VIOLATION": Code(ERROR, "the header does not match the JSON Schema"),
    "LIMIT_EXCEEDED": Code(ERROR, "a count or size exceeds a limit of the spec"),
    # semantics (spec §6–§9)
    "GEOMETRY_INCONSISTENT": Code(ERROR, "index_to_physical is not diagonal or disagrees with voxel_size/origin"),
    "NORMALIZATION_INVALID": Code(ERROR, "value_max is not greater than value_min"),
    "NETWORK_SHAPE_CHAIN_BROKEN": Code(ERROR, "layer sizes do not chain from 3 inputs to 1 output"),
    "DATASET_MISSING": Code(ERROR, "a required dataset is missing"),
    "DATASET_SHAPE_MISMATCH": Code(ERROR, "a dataset's shape disagrees with the header"),
    "REGION_OUT_OF_GRID": Code(ERROR, "region bounds outside the grid or first > last"),
    "REGION_DEGENERATE": Code(ERROR, "a region spans one voxel on an axis where the grid has more"),
    "REGION_NETWORK_INDEX_INVALID": Code(ERROR, "network_index is not -1 or a slot used exactly once"),
    "REGION_COVERAGE_GAP": Code(ERROR, "part of the grid box is covered by no region's support"),
    "NUMERIC_NONFINITE": Code(ERROR, "a NaN or infinite weight, bias or constant"),
    # integrity (spec §10)
    "INTEGRITY_DIGEST_MISSING": Code(WARNING, "a dataset has no digest in integrity.arrays"),
    "INTEGRITY_DIGEST_ORPHAN": Code(ERROR, "integrity.arrays names a dataset that does not exist"),
    "INTEGRITY_DIGEST_MISMATCH": Code(ERROR, "a dataset's SHA-256 differs from integrity.arrays"),
}
