"""What a map file holds, as a JSON-serialisable summary: ``describe(path)`` for .nemap and MRC files."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nemap.io.mrc import is_mrc, mrc_info
from nemap.map.neuralmap import open as open_nemap


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
            "representation": representation(m),
            **({"error_bound": m.error_bound, "noise": m.noise, "certificate": m.quantized.member.get("certificate")}
               if m.quantized is not None else {}),
            **(networks(m) if m.representation.name == "siren" else {}),
            "blend": m.header["regions"]["blend"],
            "extensions_used": m.header.get("extensions_used", []),
            "generator": m.provenance.get("generator"),
            "source": m.provenance.get("source", {}).get("filename"),
            "fidelity": m.provenance.get("fidelity", {}).get("overall"),
            "faithful_to": m.provenance.get("fidelity", {}).get("fsc"),
            **({"evidence": evidence_summary(m)} if m.header.get("evidence") else {}),
            "notices": [i.message for i in m.notices],
            "digests": f"checked when opened: {m.verified['bytes']} bytes in {m.verified['seconds']:.3g} s",
            "size": size_words(path, m.header),
            **({"provenance": m.provenance} if with_provenance else {}),
        }


def representation(m: Any) -> dict[str, Any]:
    """The file's region kinds: ``kind`` (of the regions that are not constants), ``regions`` (count per kind,
    e.g. {"spline": 7, "constant": 1}) and what the kind says of itself (a spline's degree and nodes)."""
    out = {"kind": m.representation.name, "regions": m.region_kinds(), **m.representation.describe(m.header)}
    if m.quantized is not None:
        out["in_words"] = certificate_words(m.quantized.member)
    return out


def networks(m: Any) -> dict[str, Any]:
    """SIREN files: the networks' layers and their parameter count."""
    params = sum(layer.out_features * (layer.in_features + 1) for layer in m.layers)
    return {"networks": m.regions.network_count, "layers": [layer.to_json() for layer in m.layers],
            "parameters_per_network": params}


def certificate_words(member: dict[str, Any]) -> str:
    """A quantized file's bound and certificate in words: "within 0.012 = 0.05 noise SD of the source at every
    voxel (noise SD 0.24, from the solvent); FSC ≥ 0.9995 up to 2.9 Å"."""
    bound, noise = float(member["error_bound"]), member.get("noise") or {}
    sd = float(noise.get("sd", 0.0))
    relative = f" = {bound / sd:.3g} noise SD" if sd > 0 else ""
    text = f"within {bound:.3g}{relative} of the source at every voxel"
    if noise:
        text += f" (noise SD {sd:.3g}, {noise['method']})"
    cert = member.get("certificate")
    if cert:
        text += f"; FSC ≥ {cert['fsc_floor']:.5f} up to {cert['resolution']:.3g} Å"
        if cert.get("fsc_floor_powered", cert["fsc_floor"]) > cert["fsc_floor"]:
            text += f" ({cert['fsc_floor_powered']:.5f} over shells with ≥ {cert['power_fraction']:g} of the power)"
    return text


def size_words(path: str | os.PathLike, header: dict[str, Any]) -> str:
    """"1.9 MiB, 1/7.9 of the float32 MRC (15.1 MiB)" for a file of ``header``."""
    size = os.path.getsize(path)
    shape = header["geometry"]["grid_shape"]
    mrc = 4 * int(np.prod(shape)) + 1024
    return (f"{size / 2**20:.3g} MiB, 1/{mrc / size:.3g} of the float32 MRC ({mrc / 2**20:.3g} MiB) of "
            f"{shape[0]}×{shape[1]}×{shape[2]} voxels")


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
