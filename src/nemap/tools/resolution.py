"""Resolution from files: FSC of two maps (MRC or .nemap), a neural map against its source, local resolution
written as an MRC map, and the evidence a conversion stores (spec/0.2/nemap.md §5.1)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from nemap.errors import NemapError, require
from nemap.files import file_sha256, is_nemap
from nemap.format.evidence import Evidence, pack_mask
from nemap.format.geometry import Geometry, Grid
from nemap.io.mrc import read_mrc, write_mrc
from nemap.map.neuralmap import open as open_nemap
from nemap.resolution.fsc import FscCurve, fsc
from nemap.resolution.locres import LocalResolution, local_resolution

log = logging.getLogger("nemap")


def load_map(path: str | os.PathLike, ignore_cell_angles: bool = False) -> Grid:
    """An MRC map, or a .nemap file sampled on its own grid. ``ignore_cell_angles``: read an MRC map's
    non-orthogonal (crystallographic) cell as if its angles were 90° (``read_mrc``)."""
    if is_nemap(path):
        with open_nemap(path) as m:
            grid = m.sample()
        return Grid(np.nan_to_num(grid.values), grid.geometry)
    return read_mrc(path, ignore_cell_angles=ignore_cell_angles)


def load_maps(paths: list[Any], ignore_cell_angles: bool = False) -> list[Grid | None]:
    return [None if p is None else _named(load_map, p, ignore_cell_angles=ignore_cell_angles) for p in paths]


def _named(load: Any, path: Any, **options: Any) -> Any:
    try:
        return load(path, **options)
    except NemapError as exc:
        raise exc.with_path(path) from exc


def fsc_files(half1: Any, half2: Any, mask: Any = None, randomize_below: float = 0.143,
              ignore_cell_angles: bool = False) -> FscCurve:
    """The FSC of two map files (and the masked, corrected curves with a mask file)."""
    a, b, m = load_maps([half1, half2, mask], ignore_cell_angles)
    return fsc(a, b, m, randomize_below=randomize_below, names=(str(half1), str(half2)), mask_name=str(mask))


def fsc_against(neural: Any, source: Any, ignore_cell_angles: bool = False) -> FscCurve:
    """The FSC of a neural map, sampled on its source map's grid, against that source."""
    src = _named(read_mrc, source, ignore_cell_angles=ignore_cell_angles)
    with open_nemap(neural) as m:
        sampled = m.sample(voxel_size=src.geometry.voxel_size, origin=src.geometry.origin,
                           shape=src.geometry.grid_shape)
    if np.isnan(sampled.values).any():
        raise NemapError(f"{source}'s grid reaches outside the neural map {neural}: compare a map with its own source",
                         code="GRIDS_DIFFER")
    return fsc(sampled, src, names=(str(neural), str(source)))


def locres_files(half1: Any, half2: Any, out: Any, mask: Any = None, *, window: float | None = None,
                 step: int | None = None, threshold: float = 0.143, force: bool = False,
                 progress: Any = None, ignore_cell_angles: bool = False) -> LocalResolution:
    """Local resolution of two half-map files, written to ``out`` (MRC, Å on the half maps' grid)."""
    from nemap.files import check_output_path

    check_output_path(out, force)
    a, b, m = load_maps([half1, half2, mask], ignore_cell_angles)
    result = local_resolution(a, b, m, window=window, step=step, threshold=threshold,
                              names=(str(half1), str(half2)), progress=progress, mask_name=str(mask))
    write_mrc(out, result.grid.values, result.grid.geometry, label="nemap locres (Å)", force=force)
    return result


def histogram(values: np.ndarray, bins: int = 10) -> list[str]:
    """Lines of a text histogram of the estimated (> 0) local resolutions."""
    v = values[values > 0]
    if v.size == 0:
        return ["no voxel estimated"]
    counts, edges = np.histogram(v, bins=bins)
    top = counts.max()
    return [f"{lo:6.2f}–{hi:6.2f} Å {c:9d} {'#' * int(round(40 * c / top))}"
            for lo, hi, c in zip(edges[:-1], edges[1:], counts)]


def half_map_evidence(half1: Any, half2: Any, like: Geometry, mask: Any = None, *, locres: bool = True,
                      progress: Any = None) -> Evidence:
    """The evidence a conversion stores: FSC of the half maps (with the mask), their hashes, the coarse local
    resolution and the mask. The half maps must lie on the map's grid (``like``)."""
    a, b, m = load_maps([half1, half2, mask])
    for name, g in ((half1, a), (half2, b)):
        if g.geometry.grid_shape != like.grid_shape or not np.allclose(
                g.geometry.voxel_size + g.geometry.origin, like.voxel_size + like.origin, rtol=1e-5, atol=1e-3):
            raise NemapError(f"the half map {name} does not lie on the map's grid ({g.geometry.grid_shape} voxels of "
                             f"{g.geometry.voxel_size} Å at {g.geometry.origin} vs {like.grid_shape} of "
                             f"{like.voxel_size} Å at {like.origin})", code="GRIDS_DIFFER")
    curve = fsc(a, b, m, names=(str(half1), str(half2)), mask_name=str(mask))
    summary = curve.summary()
    columns = curve.columns()
    table = np.stack([np.where(np.isfinite(c), c, 0.0) for c in columns.values()], axis=1)
    ev = Evidence(half_maps=[{"filename": Path(p).name, "sha256": file_sha256(p)} for p in (half1, half2)],
                  fsc={"columns": list(columns), **{k: summary[k] for k in (
                      "resolution_0143", "resolution_05", "crossed_0143", "crossed_05", "masked")},
                       **({"randomized_from_resolution": summary["randomized_from_resolution"]}
                          if "randomized_from_resolution" in summary else {})},
                  fsc_table=table)
    if locres:
        result = local_resolution(a, b, m, names=(str(half1), str(half2)), progress=progress, mask_name=str(mask))
        cg = result.coarse_geometry()
        ev.local_resolution = {"grid_shape": list(cg.grid_shape), "index_to_physical": cg.index_to_physical.tolist(),
                               "method": "fsc-window-whitened", "window": result.window, "step": result.step,
                               "threshold": result.threshold}
        ev.local_resolution_grid = np.nan_to_num(result.coarse, nan=0.0).astype(np.float32)
    if m is not None:
        ev.mask = {"encoding": "bits", "filename": Path(mask).name, "sha256": file_sha256(mask)}
        ev.mask_bits = pack_mask(m.values >= 0.5)
    return ev


MONOGENIC = "monogenic"  # the classical single-map estimator (NumPy; nemap.resolution.monogenic), not a network
EDGE = "edge"  # the power spectrum's low-pass edge (NumPy; nemap.resolution.edge): global only


def estimate_file(path: Any, *, model: str = "local", local_out: Any = None, mask_out: Any = None,
                  force: bool = False, ignore_cell_angles: bool = False) -> Any:
    """The resolution estimate of a map file (MRC or .nemap) by a learned model or, with ``model="monogenic"``
    or ``"edge"``, a classical one (no torch needed), optionally written as MRC maps. ``ignore_cell_angles``:
    read a crystallographic cell as if its angles were 90° (a MicroED map's)."""
    from nemap.files import check_output_path

    if model not in (MONOGENIC, EDGE):
        require("torch", "learned", "estimate resolution with the learned models")
    for out in (local_out, mask_out):
        if out is not None:
            check_output_path(out, force)
    if model not in (MONOGENIC, EDGE):
        check_estimate_memory(path, model, ignore_cell_angles)
    grid = _named(load_map, path, ignore_cell_angles=ignore_cell_angles)
    try:
        if model == MONOGENIC:
            from nemap.resolution.monogenic import monogenic_local_resolution

            result = monogenic_local_resolution(grid, name=str(path))
        elif model == EDGE:
            from nemap.resolution.edge import edge_resolution

            result = edge_resolution(grid)
        else:
            from nemap.resolution.estimate import estimate

            result = estimate(grid, model=model, name=str(path))
    except NemapError as exc:
        raise exc.with_path(path) from exc
    if (local_out is not None and result.local is None) or (mask_out is not None and result.mask is None):
        raise NemapError(f"the model {model!r} gives no {'local map' if result.local is None else 'mask'}: "
                         "choose the default model", code="BAD_ARGUMENT")
    if local_out is not None:
        write_mrc(local_out, result.local.values, result.local.geometry, label=f"nemap resolution {model} (Å)",
                  force=force)
    if mask_out is not None:
        write_mrc(mask_out, result.mask.values, result.mask.geometry, label=f"nemap resolution {model} mask",
                  force=force)
    return result


ESTIMATE_BASE_BYTES = 400 * 2**20  # a learned estimate's peak memory: torch and the model, and per voxel of
ESTIMATE_VOXEL_BYTES = 45  # the map's grid or the model's, the larger (measured: 0.45-1.70 GB for 128³-320³ maps)


def check_estimate_memory(path: Any, model: str, ignore_cell_angles: bool = False) -> None:
    """Refuse, from the header alone, a map whose learned estimate by ``model`` cannot fit in the memory at hand:
    the map is read on its grid and resampled to the model's voxels (1 Å; 0.5 Å for ``fine``), and each voxel of
    the larger of the two costs about ESTIMATE_VOXEL_BYTES."""
    from nemap.fit.memory import available_memory_bytes
    from nemap.io.mrc import read_mrc_header
    from nemap.resolution.models import model_voxel, recipe_of

    if is_nemap(path):
        with open_nemap(path) as m:
            geometry = m.geometry
    else:
        geometry = _named(read_mrc_header, path, ignore_cell_angles=ignore_cell_angles, quiet=True)
    voxel = model_voxel(recipe_of(model))
    shape = np.asarray(geometry.grid_shape, dtype=np.float64)
    at_model = shape * np.asarray(geometry.voxel_size) / voxel
    need = ESTIMATE_BASE_BYTES + ESTIMATE_VOXEL_BYTES * max(float(np.prod(shape)), float(np.prod(np.round(at_model))))
    have = available_memory_bytes()
    if have is not None and need > have:
        n = geometry.grid_shape
        raise NemapError(f"a {n[0]}×{n[1]}×{n[2]} map read at {voxel:g} Å voxels needs about {need / 2**30:.1f} GiB "
                         f"to estimate its resolution, but only {have / 2**30:.1f} GiB is available", path=path,
                         code="OUT_OF_MEMORY")


def shipped_models() -> dict[str, Any]:
    """Name → recipe (training data, seed, test figures) of every shipped estimator."""
    from nemap.resolution import models

    return {name: models.recipe_of(name) for name in models.available()}


STORE_STEP = 4  # voxels between the nodes of a stored learned local-resolution grid


def store_estimate(path: Any, result: Any) -> None:
    """Store a learned local resolution in a .nemap file as its local-resolution evidence (every STORE_STEP
    voxels; 0 outside the predicted mask), keeping everything else; the file is rewritten atomically."""
    from nemap.format.writer import write

    if result.local is None:
        raise NemapError(f"the model {result.model!r} gives no local map to store", code="BAD_ARGUMENT")
    with open_nemap(path, verify=True) as m:
        ev = m.evidence
        coarse = result.local.values[::STORE_STEP, ::STORE_STEP, ::STORE_STEP].copy()
        if result.mask is not None:
            coarse[result.mask.values[::STORE_STEP, ::STORE_STEP, ::STORE_STEP] <= 0] = 0.0
        g = m.geometry
        cg = Geometry(coarse.shape, tuple(STORE_STEP * v for v in g.voxel_size), g.origin)
        ev.local_resolution = {"grid_shape": list(coarse.shape), "index_to_physical": cg.index_to_physical.tolist(),
                               "method": result.model if result.model == MONOGENIC else f"learned:{result.model}",
                               "step": STORE_STEP}
        ev.local_resolution_grid = coarse.astype(np.float32)
        content = m.content()
        content.evidence = ev
        content.provenance.setdefault("history", []).append(
            {"step": "resolution", "model": result.model, "global_resolution": result.global_resolution})
    write(path, content, force=True)
