"""nemap: neural cryo-EM maps — the .nemap format, its reader/writer and query engine.

    import nemap
    with nemap.open("map.nemap") as m:
        print(m.geometry.grid_shape, m.geometry.voxel_size)   # (nx, ny, nz), Å

Coordinates are in Å in the frame of the source map's atomic models, axis order (x, y, z). Errors are
``nemap.NemapError`` (with a stable ``code``), warnings ``nemap.NemapWarning``. ``import nemap`` loads no
torch: the networks are built on the first query.
"""

from __future__ import annotations

import logging

from nemap._version import __version__
from nemap.errors import ArgumentError, FormatError, NemapError, NemapWarning
from nemap.format.content import Layer, NeuralMapContent, Normalization, Regions, siren_layers
from nemap.format.geometry import Geometry, Grid
from nemap.format.limits import FORMAT_VERSION
from nemap.format.limits import VERSION_STRING as FORMAT_VERSION_STRING
from nemap.format.validate import Report, validate
from nemap.map.neuralmap import NeuralMap, open
from nemap.tools.save import write

logging.getLogger("nemap").addHandler(logging.NullHandler())  # a library logs; the application shows

__all__ = [
    "open", "write", "validate", "Report", "NeuralMap", "NeuralMapContent", "Geometry", "Grid", "Layer",
    "Normalization", "Regions", "siren_layers", "NemapError", "FormatError", "ArgumentError", "NemapWarning",
    "FORMAT_VERSION", "FORMAT_VERSION_STRING", "__version__",
]
