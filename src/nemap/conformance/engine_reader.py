"""The reference implementation (``nemap.open`` + its torch engine, ``nemap.validate``) behind the
harness protocol of spec/0.1/conformance.md §3:

    python -m nemap.conformance.engine_reader      # JSON lines on stdin → JSON lines on stdout
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from nemap._version import __version__
from nemap.conformance.protocol import error_answer, json_floats, serve
from nemap.errors import NemapError
from nemap.format.limits import VERSION_STRING
from nemap.format.validate import validate
from nemap.map.neuralmap import open as open_nemap


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Answer one protocol request (hello, query, validate)."""
    op = request.get("op")
    if op == "hello":
        return {"name": "nemap (reference engine)", "version": __version__,
                "spec_versions": [VERSION_STRING], "ops": ["query", "validate", "local_resolution"]}
    if op == "validate":
        return validate(request["file"]).to_json()
    if op == "query":
        points = np.array(request["points"], dtype=np.float64)  # null → NaN
        try:
            with open_nemap(request["file"]) as m:
                density, gradient = m.evaluate(points.reshape(-1, 3))
        except NemapError as exc:
            return error_answer(exc.code, str(exc))
        return {"density": json_floats(density), "gradient": json_floats(gradient)}
    if op == "local_resolution":
        try:
            with open_nemap(request["file"]) as m:
                return {"local_resolution": json_floats(m.local_resolution(np.array(request["points"],
                                                                                    dtype=np.float64)))}
        except NemapError as exc:
            return error_answer(exc.code, str(exc))
    return error_answer("UNSUPPORTED_OP", f"unknown op {op!r}")


def main() -> int:
    return serve(handle)


if __name__ == "__main__":
    sys.exit(main())
