"""The reader protocol of spec/0.1/conformance.md §3, shared by the harness and the readers behind it:
one JSON request per line on stdin, one JSON answer per line on stdout, ``null`` for NaN."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def json_floats(a: np.ndarray) -> Any:
    """A float array as nested lists with None for NaN and ±Inf (JSON has neither)."""
    return [json_floats(x) for x in a] if a.ndim > 1 else [float(v) if np.isfinite(v) else None for v in a]


def float_array(values: Any) -> np.ndarray:
    """JSON numbers (nested lists, ``null`` for NaN) → a float64 array."""
    return np.array(values if values is not None else [], dtype=np.float64)  # None → NaN


def error_answer(code: str | None, message: str) -> dict[str, Any]:
    """The answer of a reader that refuses a request."""
    return {"error": {"code": code, "message": message}}


def serve(handle: Handler) -> int:
    """Answer requests from stdin on stdout until stdin ends (a reader program's main loop)."""
    for line in sys.stdin:
        if line.strip():
            sys.stdout.write(json.dumps(handle(json.loads(line)), allow_nan=False) + "\n")
            sys.stdout.flush()
    return 0
