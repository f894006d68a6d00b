"""Spline regions: the registered extension NEMAP_feature_grid (spec/extensions/NEMAP_feature_grid/README.md).

Each region with a network is the B-spline (degree 3 or 5) of its stored coefficient grid, plus a correction
network gated to vanish at voxel centres. The reference converter's spline preset stores windows of the one
B-spline that interpolates the voxels, with the zero network.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import numpy as np

from nemap.format.content import NeuralMapContent
from nemap.format.header_json import load_schema
from nemap.format.kinds.base import RegionKind, _listed

EXTENSION = "NEMAP_feature_grid"
COEFFICIENTS = f"/extensions/{EXTENSION}/coefficients"


def feature_grid_member(header: dict[str, Any]) -> dict[str, Any] | None:
    """The header's NEMAP_feature_grid member when the file uses the extension, else None."""
    if EXTENSION not in _listed(header, "extensions_used"):
        return None
    return header["extensions"][EXTENSION]


class SplineKind(RegionKind):
    name = "spline"
    extension = EXTENSION
    min_version = (0, 2)
    slot_arrays = (COEFFICIENTS,)

    def holds(self, content: NeuralMapContent) -> bool:
        return content.feature_grid is not None

    def network_inputs(self, header: dict[str, Any]) -> int:
        """C − 1 + 6 (the extension's README §3)."""
        return int(header["extensions"][EXTENSION]["channels"]) + 5

    def check_member(self, ins: Any, header: dict[str, Any]) -> None:
        """R-FGR-01: listed in both lists, in a file of version 0.2 or later, with a valid member."""
        if EXTENSION not in _listed(header, "extensions_required") or (ins.file_version or (0, 0)) < self.min_version:
            ins.add("FEATURE_GRID_INVALID", f"{EXTENSION} must be listed in extensions_required of a file of "
                    "version 0.2 or later", "/header#/extensions_required")
        extensions = header.get("extensions")
        member = extensions.get(EXTENSION) if isinstance(extensions, dict) else None  # absent: a schema violation
        validator = jsonschema.Draft202012Validator(load_schema(EXTENSION))
        for err in validator.iter_errors(member):
            pointer = "/".join(str(p) for p in err.absolute_path)
            ins.add("SCHEMA_VIOLATION", f"header /extensions/{EXTENSION}/{pointer}: {err.message}",
                    f"/header#/extensions/{EXTENSION}/{pointer}", fatal=True)

    def expected_datasets(self, header: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
        grid = header["extensions"][EXTENSION]
        n = header["regions"]["network_count"]
        return {COEFFICIENTS: ((n, grid["channels"], *grid["node_shape"]), "<f4")}

    def check_values(self, ins: Any, header: dict[str, Any], bounds: np.ndarray, network_index: np.ndarray) -> None:
        """R-FGR-02: enough nodes for every region with a network."""
        grid = header["extensions"][EXTENSION]
        spans = (bounds[:, 1] - bounds[:, 0])[network_index >= 0]
        if np.any(spans + grid["order"] + 1 > np.asarray(grid["node_shape"])):
            ins.add("FEATURE_GRID_INVALID", f"node_shape {grid['node_shape']} is smaller than a region's extent "
                    f"+ {grid['order'] + 1} nodes", f"/header#/extensions/{EXTENSION}/node_shape")

    def check_arrays(self, ins: Any, header: dict[str, Any], read: Any, deep: bool = False) -> None:
        ins.check_finite(COEFFICIENTS, read(COEFFICIENTS))

    def member(self, content: NeuralMapContent) -> dict[str, Any] | None:
        channels, *nodes = content.feature_grid.shape[1:]
        return {"order": int(content.feature_grid_order), "channels": int(channels),
                "node_shape": [int(k) for k in nodes]}

    def arrays(self, content: NeuralMapContent) -> dict[str, np.ndarray]:
        return {COEFFICIENTS: np.ascontiguousarray(content.feature_grid, dtype="<f4")}

    def describe(self, header: dict[str, Any]) -> dict[str, Any]:
        grid = header["extensions"][EXTENSION]
        return {"order": int(grid["order"]), "channels": int(grid["channels"]),
                "node_shape": list(grid["node_shape"])}


KIND = SplineKind()
