"""The two readers nemap runs the suite with in-process (no JSON round trip): ``engine`` (the reference
implementation) and ``numpy`` / ``numpy-float32`` (the independent reader written from the spec)."""

from __future__ import annotations

import numpy as np

from nemap.conformance.protocol import Handler
from nemap.errors import ArgumentError

BUILTIN = ("engine", "numpy", "numpy-float32")


def builtin_reader(name: str) -> Handler:
    """The protocol handler of a built-in reader (one of :data:`BUILTIN`)."""
    if name == "engine":
        from nemap.conformance.engine_reader import handle
        return handle
    if name in ("numpy", "numpy-float32"):
        from nemap.conformance import numpy_reader
        dtype = np.float32 if name.endswith("float32") else np.float64
        return lambda request: numpy_reader.handle(request, dtype)
    raise ArgumentError(f"unknown built-in reader {name!r} ({', '.join(BUILTIN)})", parameter="reader")
