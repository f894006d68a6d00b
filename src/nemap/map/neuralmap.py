"""The opened neural map: ``nemap.open(path)``.

Geometry, normalization and regions are read and checked when the file opens, and (by default) every SHA-256
digest; network weights and coefficients are read (and checked for NaN/Inf) on first use, quantized voxels one
tile at a time as queries need them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from nemap.errors import FormatError, NemapError
from nemap.format import evidence
from nemap.format.codes import ERROR
from nemap.format.content import Layer, NeuralMapContent, Normalization, Regions
from nemap.format.evidence import Evidence
from nemap.format.geometry import Geometry, Grid, grid_over_box
from nemap.format.hdf5 import HDF5_ERRORS, hdf5_failure, plugins_disabled
from nemap.format.inspector import Inspector
from nemap.format.kinds import RegionKind, kind_of
from nemap.format.kinds.quantized import BASE_OFFSETS, BASE_STREAMS, CERTIFICATE, OFFSETS, STREAMS, QuantizedVoxels
from nemap.format.kinds.quantized import EXTENSION as QUANTIZED
from nemap.format.kinds.spline import COEFFICIENTS, feature_grid_member
from nemap.format.limits import REGION_DATASETS, layer_paths
from nemap.format.reader import content_from_header, inspect


class NeuralMap:
    """A .nemap file opened for reading. Use as a context manager, or call ``close()``.

    Attributes (all NumPy / plain Python; coordinates in Å, axis order x, y, z):
    header (the JSON header as a dict), version ("MAJOR.MINOR" of the file), geometry,
    normalization, regions, layers, resolution (Å or None), contour_level (source units or None).
    """

    def __init__(self, path: str | os.PathLike, *, verify: bool = True):
        self.path = Path(path)
        started = time.perf_counter()
        ins, f, datasets = inspect(self.path, strict=True, values=verify, verify=verify)
        self.verified = _verification(datasets, time.perf_counter() - started) if verify else None
        assert f is not None and ins.header is not None
        self._file = f
        self._datasets = datasets
        self.notices = [i for i in ins.issues if i.severity != ERROR]
        self.header: dict[str, Any] = ins.header
        self.version = self.header["nemap_version"]
        bounds, net_index, constants = (datasets[p][()] for p in REGION_DATASETS)
        self.geometry: Geometry
        self.normalization: Normalization
        self.regions: Regions
        self.layers: list[Layer]
        self.geometry, self.normalization, self.regions, self.layers = content_from_header(
            self.header, bounds, net_index, constants)
        self.representation: RegionKind = kind_of(self.header)
        self._engines: dict[tuple[str, Any], Any] = {}
        self._weights: list[np.ndarray] | None = None
        self._biases: list[np.ndarray] | None = None
        self._feature_grid: np.ndarray | None = None
        self._evidence: Evidence | None = None
        self._quantized: QuantizedVoxels | None = None

    # -- lazily loaded arrays ---------------------------------------------------------------
    def _load_network(self) -> None:
        ins = Inspector(self.path, strict=True)
        weights, biases = [], []
        for i in range(len(self.layers)):
            wp, bp = layer_paths(i)
            w, b = self._read(wp), self._read(bp)
            ins.check_finite(wp, w)
            ins.check_finite(bp, b)
            weights.append(w.astype(np.float32, copy=False))
            biases.append(b.astype(np.float32, copy=False))
        self._weights, self._biases = weights, biases
        if self.representation.name == "spline":  # R-EXT-04: only a listed extension's datasets mean anything
            grid = self._read(COEFFICIENTS)
            ins.check_finite(COEFFICIENTS, grid)
            self._feature_grid = grid.astype(np.float32, copy=False)

    def _read(self, path: str, part: Any = ()) -> np.ndarray:
        """The values of one dataset, or of ``part`` of it (no filter plugin loaded; a closed or damaged file is a
        FormatError)."""
        if self._file is None:
            raise FormatError("the file is closed", path=self.path, code="IO_CLOSED")
        try:
            with plugins_disabled():
                return self._datasets[path][part]
        except HDF5_ERRORS as exc:
            raise FormatError(hdf5_failure(exc), path=self.path, code="IO_NOT_HDF5") from None

    @property
    def weights(self) -> list[np.ndarray]:
        """Per layer, float32 [network_count, out, in] (W in ``a = W @ h + b``)."""
        if self._weights is None:
            self._load_network()
        return self._weights  # type: ignore[return-value]

    @property
    def biases(self) -> list[np.ndarray]:
        """Per layer, float32 [network_count, out]."""
        if self._biases is None:
            self._load_network()
        return self._biases  # type: ignore[return-value]

    @property
    def feature_grid_order(self) -> int:
        """B-spline degree of the NEMAP_feature_grid coefficients (3 when the file has none)."""
        member = feature_grid_member(self.header)
        return int(member["order"]) if member else 3

    @property
    def feature_grid(self) -> np.ndarray | None:
        """float32 [network_count, C, Kx, Ky, Kz] coefficient grids (NEMAP_feature_grid), or None."""
        if self._weights is None:
            self._load_network()
        return self._feature_grid

    @property
    def quantized(self) -> QuantizedVoxels | None:
        """The stored voxels of a quantized file (NEMAP_quantized), read tile by tile as needed; None otherwise."""
        if self._quantized is None and self.representation.name == "quantized":
            member = self.header["extensions"][QUANTIZED]
            table = self._read(CERTIFICATE) if CERTIFICATE in self._datasets else None
            base = self._read(BASE_OFFSETS) if BASE_OFFSETS in self._datasets else None
            self._quantized = QuantizedVoxels(member, np.zeros(0, np.uint8), self._read(OFFSETS), table,
                                              base_offsets=base, _read=self._read_bytes, path=self.path)
        return self._quantized

    def content(self) -> NeuralMapContent:
        """Everything the file holds, read into memory (to write it again, with changes)."""
        quantized = None
        if self.quantized is not None:
            q = self.quantized
            quantized = QuantizedVoxels(q.member, self._read(STREAMS), q.offsets, q.certificate,
                                        self._read(BASE_STREAMS) if BASE_STREAMS in self._datasets else None,
                                        q.base_offsets)
        return NeuralMapContent(
            self.geometry, self.normalization, self.regions, self.layers, self.weights, self.biases,
            resolution=self.header.get("resolution"), contour_level=self.header.get("contour_level"),
            provenance=dict(self.provenance), extras=self.header.get("extras", {}),
            source_mrc_header=self.source_mrc_header(), feature_grid=self.feature_grid,
            feature_grid_order=self.feature_grid_order, evidence=self.evidence, quantized=quantized)

    def _read_bytes(self, path: str, start: int, stop: int) -> bytes:
        """Bytes start … stop − 1 of a quantized stream dataset (a partial read: only those bytes leave the file)."""
        return self._read(path, slice(start, stop)).tobytes()

    @property
    def error_bound(self) -> float | None:
        """A quantized file's declared bound: |value at a voxel centre − source voxel| ≤ this (density units)."""
        return float(self.quantized.member["error_bound"]) if self.quantized is not None else None

    @property
    def noise(self) -> dict[str, Any] | None:
        """The noise estimate a quantized file's bound came from: sd (density units), method, description."""
        return self.quantized.member.get("noise") if self.quantized is not None else None

    @property
    def certificate(self) -> dict[str, Any] | None:
        """What a quantized file certifies: the FSC floor of the decoded map against its source up to a resolution
        (and its shells as ``table``: frequency Å⁻¹, FSC, share of the power), the largest error at a voxel."""
        q = self.quantized
        if q is None or "certificate" not in q.member:
            return None
        return dict(q.member["certificate"], table=q.certificate)

    # -- queries (spec §9) -------------------------------------------------------------------
    def engine(self, device: str = "cpu", dtype: Any = None) -> Any:
        """The query engine, built once per device and dtype. ``device`` ("cpu", "cuda", "auto") and ``dtype``
        (a torch dtype: float32 by default, the conformant precision, spec §9.5; torch.float64 for numerical
        checks) apply to SIREN regions; spline regions are evaluated in float64 NumPy."""
        from nemap.engine.query import Engine

        key = (device, dtype)
        if key not in self._engines:
            self._engines[key] = Engine.from_content(self, device=device, dtype=dtype)
        return self._engines[key]

    def evaluate(self, xyz: Any, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """Density [N] (source units) and gradient [N, 3] (per Å) at Å positions xyz [N, 3] (x, y, z)."""
        d, g = self.engine(device).evaluate(xyz, gradient=True)
        return d, g

    def density(self, xyz: Any, device: str = "cpu") -> np.ndarray:
        """Density [N] in source units at Å positions xyz [N, 3]; NaN outside the map."""
        return self.engine(device).evaluate(xyz, gradient=False)[0]

    def gradient(self, xyz: Any, device: str = "cpu") -> np.ndarray:
        """Gradient [N, 3] of the density, in density units per Å, at Å positions xyz [N, 3]."""
        return self.evaluate(xyz, device)[1]

    def graph(self, resolution: float | None = None, *, threshold: float | None = None, sigma: float | None = None,
              contour: bool = False, method: str = "seeded", device: str = "cpu") -> Any:
        """The graph of density peaks (``nemap.graph.PeakGraph``: pos [N, 3] Å, density, edge_index
        [2, E] both directions, edge_length Å; ``.to_networkx()``). Threshold: ``threshold`` (source
        units), the file's contour level (``contour=True``) or μ + ``sigma``·σ (default 3) of the
        normalized densities. Resolution (Å): the argument or the file's header. When the file carries a
        local-resolution grid, nodes are linked when closer than 2 × the local resolution at their midpoint
        (the global resolution where it has none); ``stats["edge_rule"]`` says which rule was used."""
        from nemap import graph

        res = resolution if resolution is not None else self.resolution
        if res is None:
            raise NemapError("no resolution: the file has none; give 'resolution'", path=self.path,
                             parameter="resolution",
                             code="NO_RESOLUTION")
        level = None
        if contour:
            level = self.contour_level
            if level is None:
                raise NemapError("the file has no contour level; give 'threshold' or 'sigma'", path=self.path,
                                 parameter="contour",
                                 code="NO_THRESHOLD")
        t = graph.threshold_for(self.normalization, threshold=threshold, sigma=sigma, contour=level,
                                path=str(self.path))
        engine = self.engine(device)
        grid = self.evidence.local_resolution_grid
        local = None if grid is None or not (grid > 0).any() else (self.local_resolution, float(grid.max()))
        return graph.extract(lambda xyz, grad: engine.evaluate(xyz, gradient=grad), self.geometry.extent,
                             float(res), t, method=method, local_resolution=local)

    def sample(self, voxel_size: Any = None, origin: Any = None, shape: Any = None, device: str = "cpu") -> Grid:
        """Density on a regular grid: positions origin + (i, j, k)·voxel_size exactly (Å, x, y, z).

        Defaults: the map's own grid; with only voxel_size, the map's box from its first voxel
        centre. Samples outside the map are NaN. Returns a Grid (values[i, j, k]).
        """
        g = self.geometry
        step = g.voxel_size if voxel_size is None else tuple(np.broadcast_to(np.asarray(voxel_size, float), (3,)))
        start = g.origin if origin is None else tuple(np.asarray(origin, float))
        target = grid_over_box(start, g.extent[1], step) if shape is None else Geometry(tuple(shape), step, start)
        return self.engine(device).sample(target)

    def baked(self, voxel_size: Any = None, device: str = "cpu") -> Any:
        """A ``BakedMap``: the map sampled once on a grid of ``voxel_size`` Å and queried through a cubic
        B-spline, fast for bulk work; its ``error`` says how far it is from the exact queries (density as a
        fraction of the range, gradient relative to the largest gradient). Default grid: the coarsest of ½, ⅓,
        ¼ of the map's voxel size whose density error is ≤ 1e-3 of the range (a warning when none is)."""
        from nemap.engine.baked import BakedMap

        return BakedMap(self, voxel_size, device=device)

    # -- resolution evidence (spec/0.2/nemap.md §5.1) --------------------------------------------
    @property
    def evidence(self) -> Evidence:
        """The file's resolution evidence (empty when it has none); arrays are read on first use."""
        if self._evidence is None:
            member = self.header.get("evidence") or {}
            self._evidence = Evidence(
                half_maps=list(member.get("half_maps", [])), fsc=member.get("fsc"),
                fsc_table=self._read(evidence.FSC_PATH) if "fsc" in member else None,
                local_resolution=member.get("local_resolution"),
                local_resolution_grid=(self._read(evidence.LOCAL_RESOLUTION_PATH) if "local_resolution" in member
                                       else None),
                mask=member.get("mask"), mask_bits=self._read(evidence.MASK_PATH) if "mask" in member else None)
        return self._evidence

    def local_resolution(self, xyz: Any) -> np.ndarray:
        """Local resolution (Å) at Å positions xyz [N, 3] (x, y, z) from the file's local-resolution grid
        (spec/0.2/nemap.md R-EVD-03); NaN where unknown, and everywhere when the file has no grid."""
        ev = self.evidence
        p = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        if ev.local_resolution_grid is None:
            return np.full(p.shape[0], np.nan)
        return evidence.local_resolution_at(ev.local_resolution_grid, ev.local_resolution["index_to_physical"], p)

    def mask(self) -> np.ndarray | None:
        """The stored mask as booleans [nx, ny, nz] on the map's grid, or None."""
        bits = self.evidence.mask_bits
        return None if bits is None else evidence.unpack_mask(bits, self.geometry.grid_shape)

    def region_kinds(self) -> dict[str, int]:
        """How many regions of each kind the file holds, e.g. {"spline": 7, "constant": 1}."""
        names, counts = np.unique(self.representation.region_kinds(self.header, self.regions.network_index),
                                  return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts)}

    @property
    def resolution(self) -> float | None:
        res = self.header.get("resolution")
        return float(res["value"]) if res else None

    @property
    def contour_level(self) -> float | None:
        level = self.header.get("contour_level")
        return float(level["value"]) if level else None

    @property
    def provenance(self) -> dict[str, Any]:
        return self.header.get("provenance", {})

    def source_mrc_header(self) -> bytes | None:
        """The raw 1024-byte MRC header of the source map, if stored."""
        if "/source/mrc_header" not in self._datasets:
            return None
        return bytes(self._read("/source/mrc_header").tobytes())

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> NeuralMap:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        g = self.geometry
        return (f"<NeuralMap {self.path.name!r} v{self.version} grid {g.grid_shape} @ {g.voxel_size} Å, "
                f"{self.regions.count} regions ({self.regions.network_count} networks)>")


def open(path: str | os.PathLike, *, verify: bool = True) -> NeuralMap:  # noqa: A001 - mirrors mrcfile.open
    """Open a .nemap file for reading (a context manager).

    verify=True (the default) checks every dataset's SHA-256 digest before anything is returned, so a file whose
    arrays were changed after writing is refused (``INTEGRITY_DIGEST_MISMATCH``); it reads every byte once (SHA-256
    runs at ≈ 1 GB/s: ``m.verified`` says how many bytes and seconds). verify=False skips it, e.g. to read a
    sub-box of a huge file without reading the rest.
    Raises FormatError (one line: file, problem, code) for anything the spec forbids.
    """
    return NeuralMap(path, verify=verify)



def _verification(datasets: dict[str, Any], seconds: float) -> dict[str, Any]:
    """What checking the digests cost: bytes hashed and seconds taken (the open's checks included)."""
    size = sum(int(ds.size) * ds.dtype.itemsize for path, ds in datasets.items() if path != "/header")
    return {"bytes": size, "seconds": round(seconds, 4)}
