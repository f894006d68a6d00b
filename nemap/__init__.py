"""nemap: neural cryo-EM maps — the .nemap format, its reader/writer and query engine.

    import nemap
    with nemap.open("map.nemap") as m:
        print(m.geometry.grid_shape, m.geometry.voxel_size)   # (nx, ny, nz), Å

Coordinates are in Å in the frame of the source map's atomic models, axis order (x, y, z).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

from .container import FORMAT_VERSION, VERSION_STRING as FORMAT_VERSION_STRING, write
from .content import Layer, NeuralMapContent, Normalization, Regions, siren_layers
from .errors import FormatError, NemapError
from .geometry import Geometry, Grid
from .neuralmap import NeuralMap, open

try:
    __version__ = _version("nemap")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "open", "write", "NeuralMap", "NeuralMapContent", "Geometry", "Grid", "Layer", "Normalization",
    "Regions", "siren_layers", "NemapError", "FormatError", "FORMAT_VERSION", "FORMAT_VERSION_STRING",
    "__version__",
]
