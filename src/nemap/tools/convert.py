"""MRC ⇄ .nemap conversion: the work behind ``nemap convert IN OUT``.

MRC → nemap reads the map (geometry as spec §13), fits the networks (``nemap.fit``) with a
resume folder beside the output, and writes the file atomically. nemap → MRC samples the map on
its own grid or on any voxel size / box (Å) and writes a mode-2 MRC file.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nemap._version import __version__
from nemap.errors import ArgumentError, NemapError, check_number, warn
from nemap.files import check_output_path, file_sha256
from nemap.fit.fit_map import MapFit, check_device
from nemap.fit.memory import available_memory_bytes, check_memory
from nemap.fit.options import FitOptions
from nemap.fit.resume import remove_resume_folder
from nemap.format.geometry import Geometry, grid_over_box
from nemap.format.limits import MAX_GRID_VOXELS, VERSION_STRING
from nemap.format.writer import write
from nemap.io.mrc import raw_header, read_mrc, read_mrc_header, write_mrc
from nemap.map.neuralmap import open as open_nemap
from nemap.tools.save import stamp_provenance

log = logging.getLogger("nemap")


class _Progress:
    """A per-region progress bar with ETA on stderr (tqdm); silent when not wanted."""

    def __init__(self, enabled: bool, output: Path | None = None, force: bool = False):
        self.enabled = enabled
        self.bar = None
        self.output, self.force = output, force

    def __call__(self, done: int, total: int, stats: dict[str, Any] | None) -> None:
        if self.output is not None and stats is not None:  # a region is done: is the output still free?
            check_output_path(self.output, self.force)  # stops early; the fitted regions stay for a re-run
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="region", file=sys.stderr, dynamic_ncols=True,
                            desc="fitting", mininterval=0.5)
            return
        self.bar.update(done - self.bar.n)
        if stats:
            self.bar.set_postfix(last=f"{stats['steps']} steps, {stats['stop_reason']}", refresh=False)

    def step(self, step: int, best_loss: float) -> None:
        """Inside a region: show its step and best loss (the bar refreshes at most twice a second)."""
        if self.bar is not None:
            self.bar.set_postfix(step=step, loss=f"{best_loss:.2e}", refresh=False)
            self.bar.update(0)  # redraws when mininterval has passed

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class Conversion:
    """An MRC → .nemap conversion under way: the map's fit (``job``, see :class:`nemap.fit.fit_map.MapFit`)
    and what its file will record."""

    src: Path
    dst: Path
    job: MapFit
    digest: str
    resume: Path
    force: bool
    resolution: float | None
    contour: float | None
    evidence: Any
    command: Sequence[str] | None


def start_conversion(src: str | os.PathLike, dst: str | os.PathLike, options: FitOptions, *, force: bool = False,
                     resolution: float | None = None, contour: float | None = None, origin_convention: str = "auto",
                     ignore_cell_angles: bool = False, command: Sequence[str] | None = None,
                     half_maps: Sequence[str | os.PathLike] | None = None, mask: str | os.PathLike | None = None,
                     elsewhere: bool = False) -> Conversion:
    """Check the arguments, read ``src`` and plan its fit (regions a resume folder ``DST.resume/`` already
    holds are taken from it); NemapError (with the file named) for what cannot be converted. ``elsewhere``:
    the regions will be fitted on a cluster, whose workers resolve ``options.device`` themselves."""
    src, dst = Path(src), Path(dst)
    check_output_path(dst, force)
    if not elsewhere:
        check_device(options)  # a device this machine lacks is refused before any work
    if resolution is not None:
        check_number("resolution", resolution, above=0, unit="Å")
    if contour is not None:
        check_number("contour", contour)
    geometry = read_mrc_header(src, origin_convention, ignore_cell_angles=ignore_cell_angles, quiet=True)
    check_memory(geometry.grid_shape, options, str(src))
    grid = read_mrc(src, origin_convention, ignore_cell_angles=ignore_cell_angles)
    evidence = _evidence(half_maps, mask, grid.geometry)
    noise = half_map_noise(half_maps, origin_convention, ignore_cell_angles) if half_maps else None
    known = resolution if resolution is not None else (evidence.fsc["resolution_0143"] if evidence else None)
    digest = file_sha256(src)
    key = {"source_sha256": digest, "options": options.to_json(), "origin_convention": origin_convention,
           "format": VERSION_STRING}
    resume = dst.with_name(dst.name + ".resume")
    try:
        job = MapFit(grid, options, resume=resume, resume_key=key, elsewhere=elsewhere, resolution=known, noise=noise)
    except NemapError as exc:
        raise exc.with_path(src) from exc
    return Conversion(src, dst, job, digest, resume, force, resolution, contour, evidence, command)


def finish_conversion(conv: Conversion) -> dict[str, Any]:
    """Assemble the fitted map, write it atomically and remove the resume folder; returns the header."""
    content = conv.job.content()
    if conv.resolution is not None:
        content.resolution = {"value": float(conv.resolution), "source": "user"}
    if conv.evidence is not None:
        content.evidence = conv.evidence
        if conv.resolution is None:
            fsc = conv.evidence.fsc
            content.resolution = {"value": float(fsc["resolution_0143"]), "source": "half_maps",
                                  "criterion": "FSC=0.143" if fsc["crossed_0143"] else
                                  "FSC=0.143 not reached: the finest shell (Nyquist)"}
    if conv.contour is not None:
        content.contour_level = {"value": float(conv.contour), "source": "user"}
    content.source_mrc_header = raw_header(conv.src)
    stamp_provenance(content, "convert", conv.command,
                     {"filename": conv.src.name, "sha256": conv.digest,
                      **({"mrc_header": "/source/mrc_header"} if content.source_mrc_header else {})})
    header = write(conv.dst, content, force=conv.force)
    remove_resume_folder(conv.resume)
    return header


def mrc_to_nemap(src: str | os.PathLike, dst: str | os.PathLike, options: FitOptions, *, force: bool = False,
                 resolution: float | None = None, contour: float | None = None, origin_convention: str = "auto",
                 ignore_cell_angles: bool = False, progress: bool = True, command: Sequence[str] | None = None,
                 half_maps: Sequence[str | os.PathLike] | None = None, mask: str | os.PathLike | None = None,
                 scheduler: Any = None) -> dict[str, Any]:
    """Fit ``src`` (MRC) and write ``dst`` (.nemap). Returns the header written.

    ``half_maps`` (two MRC files on the map's grid) and ``mask``: their FSC, local resolution and the mask are
    stored as resolution evidence (format 0.2, spec/0.2/nemap.md §5.1), and the FSC = 0.143 resolution becomes
    the map's resolution unless ``resolution`` is given. ``scheduler``: fit the regions on a Dask cluster
    (an address, ``tcp://host:8786`` or ``local:N`` for N local single-thread workers, or a
    ``nemap.tools.distributed.Cluster``).

    A conversion that is interrupted leaves ``DST.resume/`` with its finished regions; running the
    same conversion again picks them up. The output appears only when complete.
    """
    conv = start_conversion(src, dst, options, force=force, resolution=resolution, contour=contour,
                            origin_convention=origin_convention, ignore_cell_angles=ignore_cell_angles,
                            command=command, half_maps=half_maps, mask=mask, elsewhere=scheduler is not None)
    bar = _Progress(progress, conv.dst, force)
    try:
        if scheduler is None or conv.job.done == conv.job.total:
            if scheduler is not None:
                log.info("nothing to fit on the cluster (%s preset, %d of %d regions done)", options.preset,
                         conv.job.done, conv.job.total)
            conv.job.fit_here(bar)
        else:
            from nemap.tools.distributed import fit_on_cluster

            fit_on_cluster(conv.job, scheduler, bar)
    except NemapError as exc:
        raise exc.with_path(conv.src) from exc
    finally:
        bar.close()
    return finish_conversion(conv)


def half_map_noise(half_maps: Sequence[Any], origin_convention: str, ignore_cell_angles: bool) -> Any:
    """The noise of the full map from its half maps: the SD of (H1 − H2)/2."""
    from nemap.resolution.noise import from_half_maps

    first, second = (read_mrc(p, origin_convention, ignore_cell_angles=ignore_cell_angles) for p in half_maps)
    return from_half_maps(first.values, second.values)


def _evidence(half_maps: Sequence[Any] | None, mask: Any, geometry: Geometry) -> Any:
    """Resolution evidence from the half maps (None without them); computed before fitting, so that half maps
    on another grid are refused at once."""
    if half_maps is None:
        if mask is not None:
            raise ArgumentError("a mask is stored only with half maps: give 'half_maps' too", parameter="mask")
        return None
    if len(half_maps) != 2:
        raise ArgumentError(f"'half_maps' must name two files, got {len(half_maps)}", parameter="half_maps")
    from nemap.tools.resolution import half_map_evidence

    log.info("resolution evidence from %s and %s", *half_maps)
    return half_map_evidence(half_maps[0], half_maps[1], geometry, mask)


def target_geometry(native: Geometry, voxel_size: Sequence[float] | None, box: Sequence[float] | None) -> Geometry:
    """The grid to decode on: native, or a new voxel size (Å) over the native box or a given box
    (xmin, ymin, zmin, xmax, ymax, zmax in Å). The first sample sits at the box's low corner."""
    if voxel_size is None and box is None:
        return native
    step = np.asarray(native.voxel_size if voxel_size is None else
                      (list(voxel_size) * 3 if len(voxel_size) == 1 else voxel_size), dtype=np.float64)
    if step.shape != (3,) or not np.all(np.isfinite(step)) or np.any(step <= 0):
        raise ArgumentError("'voxel_size' takes one or three finite values > 0 (Å)", parameter="voxel_size")
    if box is not None and (len(box) != 6 or not np.all(np.isfinite(box))):
        raise ArgumentError("'box' takes xmin ymin zmin xmax ymax zmax (Å), finite", parameter="box")
    lo, hi = native.extent if box is None else (np.asarray(box[:3], float), np.asarray(box[3:], float))
    if np.any(hi < lo):
        raise ArgumentError("'box' takes xmin ymin zmin xmax ymax zmax (Å) with max ≥ min", parameter="box")
    return grid_over_box(lo, hi, step, {"resampled_from": list(native.voxel_size)})


def check_decode_memory(geometry: Geometry) -> None:
    """Refuse, before allocating, a decoding grid that cannot be held in memory (float32 values)."""
    voxels = math.prod(geometry.grid_shape)
    need = 4 * voxels + 64 * 2**20
    have = available_memory_bytes()
    if voxels > MAX_GRID_VOXELS or (have is not None and need > have):
        n = geometry.grid_shape
        raise ArgumentError(f"a {n[0]}×{n[1]}×{n[2]} grid needs {need / 2**30:.1f} GiB"
                            + (f", but only {have / 2**30:.1f} GiB is available" if have is not None else "")
                            + "; use a larger 'voxel_size' or a smaller 'box'", parameter="voxel_size",
                            code="OUT_OF_MEMORY")


def nemap_to_mrc(src: str | os.PathLike, dst: str | os.PathLike, *, voxel_size: Sequence[float] | None = None,
                 box: Sequence[float] | None = None, fill: float = 0.0, force: bool = False,
                 device: str = "cpu") -> Geometry:
    """Decode ``src`` (.nemap) to an MRC file on its native grid, or a new voxel size / box."""
    src, dst = Path(src), Path(dst)
    check_output_path(dst, force)
    check_number("fill", fill)
    with open_nemap(src) as m:
        geometry = target_geometry(m.geometry, voxel_size, box)
        check_decode_memory(geometry)
        if voxel_size is not None and m.resolution and max(geometry.voxel_size) > m.resolution / 2:
            warn(f"voxel size {list(geometry.voxel_size)} Å is coarser than half the resolution "
                 f"({m.resolution:g} Å): the map is under-sampled")
        grid = m.engine(device).sample(geometry)
        outside = int(np.count_nonzero(np.isnan(grid.values)))
        if outside:
            log.info("%d of %d samples lie outside the map; written as %g", outside, grid.values.size, fill)
            grid.values[np.isnan(grid.values)] = fill
        source = m.provenance.get("source", {}).get("filename", src.name)
        label = f"nemap {__version__} from {source} (.nemap {m.version})"
    write_mrc(dst, grid.values, geometry, label=label, force=force)
    return geometry
