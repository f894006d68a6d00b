"""The format's identification and limits (spec/0.1/nemap.md §3.6, §4): checked before anything of that size
is allocated or read."""

from __future__ import annotations

FORMAT_TAG = "nemap"
FORMAT_VERSION = (0, 3)  # the newest version this package reads and writes
VERSION_STRING = f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}"
BASE_VERSION_STRING = "0.1"  # what a file without extensions is written as (spec/0.2/nemap.md, R-VER-05)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ALLOWED_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32"}

MAX_HEADER_BYTES = 16 * 2**20
MAX_REGIONS = 1_000_000
MAX_LAYERS = 64
MAX_WIDTH = 4096
MAX_GRID_VOXELS = 2**36
MAX_DATASET_ELEMENTS = 2**30
MAX_TOTAL_ELEMENTS = 2**31
MAX_HEADER_DEPTH = 64
MAX_MRC_HEADER_BYTES = 16 * 2**20
MAX_ROOT_STRING_BYTES = 64  # a root attribute longer than this holds no valid value; it is not read

REGION_DATASETS = ("/regions/bounds", "/regions/network_index", "/regions/constant_value")
SOURCE_DATASETS = ("/source/mrc_header", "/source/mrc_extended_header")
FREE_GROUPS = ("/extras", "/extensions")


def layer_paths(index: int) -> tuple[str, str]:
    """HDF5 paths of layer ``index``'s weight and bias datasets."""
    return f"/network/layer_{index:02d}/weight", f"/network/layer_{index:02d}/bias"


def parse_version(text: object) -> tuple[int, int] | None:
    """"MAJOR.MINOR" → (major, minor); None if malformed."""
    if not isinstance(text, str):
        return None
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts):
        return None
    return int(parts[0]), int(parts[1])
