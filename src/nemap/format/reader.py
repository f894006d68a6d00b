"""Reading a .nemap file: every check in the spec's order (``inspect``), then the typed pieces of its header.

Reading is strict (the first error raises FormatError); the validator runs the same checks collecting every
finding. Stages: bytes → identification → HDF5 objects → header → datasets → values → digests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nemap.errors import FormatError
from nemap.format import dataset_checks, header_checks
from nemap.format.content import Layer, Normalization, Regions
from nemap.format.geometry import Geometry
from nemap.format.hdf5 import HDF5_ERRORS, hdf5_failure, plugins_disabled
from nemap.format.inspector import Inspector, Stop
from nemap.format.kinds import kind_of
from nemap.format.limits import REGION_DATASETS, layer_paths


def inspect(path: str | os.PathLike, *, strict: bool, values: bool, verify: bool,
            deep: bool = False) -> tuple[Inspector, h5py.File | None, dict[str, h5py.Dataset]]:
    """Run the checks in order. Returns the inspector, the open file (the caller closes it) and its datasets.

    values: also check region values and finiteness (reads every array); verify: also check every SHA-256
    digest; deep: also decode what must be decoded to be checked (every tile of a quantized file: the validator).
    A file that libhdf5 fails to read anywhere is IO_NOT_HDF5.
    """
    ins = Inspector(Path(path), strict=strict)
    try:
        with plugins_disabled():
            ins.check_file()
            ins.file = ins.open_hdf5()
            try:
                _check_contents(ins, ins.file, values, verify, deep)
            except HDF5_ERRORS as exc:
                ins.add("IO_NOT_HDF5", hdf5_failure(exc), "/", fatal=True)
    except Stop:
        pass
    except FormatError:
        if ins.file is not None:
            ins.file.close()
        raise
    return ins, ins.file, ins.datasets


def _check_contents(ins: Inspector, f: h5py.File, values: bool, verify: bool, deep: bool) -> None:
    ins.check_identity(f)
    ins.datasets = ins.walk(f)
    header = header_checks.read_header(ins, ins.datasets)
    header_checks.check_header(ins, header)
    kind = kind_of(header)
    unreadable = dataset_checks.check_datasets(ins, header, ins.datasets)  # R-VAL-01: each check needs its own
    kind_datasets = set(kind.expected_datasets(header))
    if not unreadable & set(REGION_DATASETS):
        regions = [ins.datasets[p][()] for p in REGION_DATASETS]
        dataset_checks.check_regions(ins, header, *regions, coverage=values,
                                     kind_values=not unreadable & kind_datasets)
    if values:
        for i in range(len(header["network"]["layers"])):
            for p in layer_paths(i):
                if p not in unreadable:
                    ins.check_finite(p, ins.datasets[p][()])
        if not unreadable & kind_datasets:
            kind.check_arrays(ins, header, lambda p: ins.datasets[p][()], deep)
        dataset_checks.check_evidence_values(ins, header, ins.datasets, unreadable)
    if verify:
        dataset_checks.check_digests(ins, header, ins.datasets)


def content_from_header(header: dict[str, Any], bounds: np.ndarray, net_index: np.ndarray,
                        constants: np.ndarray) -> tuple[Geometry, Normalization, Regions, list[Layer]]:
    """Typed pieces of a checked header (the arrays stay in the file until needed)."""
    geo = header["geometry"]
    geometry = Geometry.from_affine(geo["index_to_physical"], geo["grid_shape"], geo.get("source", {}))
    normalization = Normalization.from_json(header["normalization"])
    reg = header["regions"]
    regions = Regions(bounds, net_index, constants, float(reg["blend"]["ramp_width"]), reg.get("tiling", {}))
    layers = [Layer.from_json(d) for d in header["network"]["layers"]]
    return geometry, normalization, regions, layers
