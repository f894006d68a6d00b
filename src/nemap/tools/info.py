"""What a map file holds, as a JSON-serialisable summary: ``describe(path)`` for .nemap and MRC files."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nemap.map.neuralmap import open as open_nemap
from nemap.io.mrc import is_mrc, mrc_info


def describe(path: str | os.PathLike, *, with_provenance: bool = False, origin_convention: str = "auto"
             ) -> dict[str, Any]:
    """The summary of an MRC map (header only) or a .nemap file (geometry, networks, fidelity)."""
    p = os.fspath(path)
    if is_mrc(p):
        info = mrc_info(p, origin_convention=origin_convention)
        info.setdefault("path", p)
        return info
    return describe_nemap(p, with_provenance=with_provenance)


def describe_nemap(path: str, with_provenance: bool = False) -> dict[str, Any]:
    """A JSON-serialisable summary of a .nemap file (geometry in Å, x, y, z; regions, networks,
    normalization, fidelity); with_provenance adds the whole provenance (per-region fit and fidelity)."""

    with open_nemap(path) as m:
        g = m.geometry
        params = sum(layer.out_features * (layer.in_features + 1) for layer in m.layers)
        return {
            "format": "nemap",
            "path": path,
            "nemap_version": m.version,
            "grid_shape": list(g.grid_shape),
            "voxel_size": list(g.voxel_size),
            "origin": list(g.origin),
            "axis_order": list(g.source.get("axis_order", [1, 2, 3])),
            "origin_convention": g.source.get("origin_convention"),
            "resolution": m.header.get("resolution"),
            "contour_level": m.header.get("contour_level"),
            "normalization": m.header["normalization"],
            "regions": m.regions.count,
            "networks": m.regions.network_count,
            "constant_regions": m.regions.count - m.regions.network_count,
            "layers": [layer.to_json() for layer in m.layers],
            "parameters_per_network": params,
            "blend": m.header["regions"]["blend"],
            "extensions_used": m.header.get("extensions_used", []),
            "generator": m.provenance.get("generator"),
            "source": m.provenance.get("source", {}).get("filename"),
            "fidelity": m.provenance.get("fidelity", {}).get("overall"),
            "faithful_to": m.provenance.get("fidelity", {}).get("fsc"),
            **({"evidence": evidence_summary(m)} if m.header.get("evidence") else {}),
            "notices": [i.message for i in m.notices],
            "digests": "not checked (weights are read unverified; nemap validate checks every SHA-256)",
            **({"provenance": m.provenance} if with_provenance else {}),
        }


def evidence_summary(m: Any) -> dict[str, Any]:
    """The file's resolution evidence in brief: FSC resolutions and half maps, local-resolution range, mask."""
    ev = m.evidence
    out: dict[str, Any] = {}
    if ev.fsc is not None:
        out["fsc"] = {k: v for k, v in ev.fsc.items() if k != "columns"}
        out["fsc"]["shells"] = int(ev.fsc_table.shape[0])
        out["half_maps"] = [h.get("filename", h["sha256"][:12]) for h in ev.half_maps]
    if ev.local_resolution_grid is not None:
        known = ev.local_resolution_grid[ev.local_resolution_grid > 0]
        out["local_resolution"] = {"grid_shape": ev.local_resolution["grid_shape"],
                                   "window": ev.local_resolution.get("window"),
                                   "min": float(known.min()) if known.size else None,
                                   "median": float(np.median(known)) if known.size else None,
                                   "max": float(known.max()) if known.size else None}
    if ev.mask_bits is not None:
        out["mask"] = {"voxels_inside": int(m.mask().sum()), "filename": ev.mask.get("filename")}
    return out
