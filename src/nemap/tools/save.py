"""``nemap.write``: a fitted map as it is, or a grid of voxels stored as the default conversion stores an MRC."""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any

from nemap._version import __version__
from nemap.errors import ArgumentError, check_number
from nemap.format.content import NeuralMapContent
from nemap.format.geometry import Grid
from nemap.format.writer import write as write_content

GRID_ONLY = ("tolerance", "fsc_floor", "lossless", "resolution", "noise")


def write(path: str | os.PathLike, data: NeuralMapContent | Grid, *, tolerance: float | None = None,
          fsc_floor: float | None = None, lossless: bool = False, resolution: float | None = None,
          noise: Any = None, force: bool = False, compression: int | None = None) -> dict[str, Any]:
    """Write a .nemap file atomically (never over an existing file without ``force``); returns its header.

    ``data``: a ``NeuralMapContent``, written as it is, or a ``Grid`` (values [x, y, z] in density units,
    geometry in Å), stored as the quintic B-spline of its voxels exactly as ``nemap convert`` stores an MRC:
    quantized, by default invisibly (every voxel within 1/20 of the noise SD, FSC ≥ 0.999 up to the
    resolution); ``tolerance`` (noise SDs) and ``fsc_floor`` trade that for size, ``lossless`` stores float32
    coefficients (format 0.2). ``resolution`` (Å): the map's resolution, the certificate's last shell (default:
    Nyquist). ``noise``: a ``nemap.resolution.noise.NoiseEstimate`` (e.g. ``from_half_maps``; default:
    estimated from the map's solvent or outer shell). ``compression``: deflate level for float datasets.
    """
    if isinstance(data, NeuralMapContent):
        given = [n for n, v in zip(GRID_ONLY, (tolerance, fsc_floor, lossless, resolution, noise)) if v]
        if given:
            raise ArgumentError(f"'{given[0]}' applies when a Grid is written; a NeuralMapContent is written as it "
                                "is", parameter=given[0])
        return write_content(path, data, force=force, compression=compression)
    if not isinstance(data, Grid):
        raise ArgumentError(f"data is a {type(data).__name__}; write takes a NeuralMapContent or a Grid",
                            parameter="data")
    if resolution is not None:
        check_number("resolution", resolution, above=0, unit="Å")
    from nemap.fit.fit_map import fit_map
    from nemap.fit.options import options_for

    options = options_for("spline", tolerance=tolerance, fsc_floor=fsc_floor, lossless=lossless or None)
    content = fit_map(data, options, resolution=resolution, noise=noise)
    if resolution is not None:
        content.resolution = {"value": float(resolution), "source": "user"}
    stamp_provenance(content, "write")
    return write_content(path, content, force=force, compression=compression)


def stamp_provenance(content: NeuralMapContent, step: str, command: Any = None,
                     source: dict[str, Any] | None = None) -> None:
    """Open ``content.provenance`` with when and by what it was made (and from which ``source``), keep what the
    fit recorded, and end with the step that made the file and its command line."""
    content.provenance = {
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": {"name": "nemap", "version": __version__},
        **({"source": source} if source else {}),
        **content.provenance,
        "history": [{"step": step, "command": list(command) if command else None}],
    }
