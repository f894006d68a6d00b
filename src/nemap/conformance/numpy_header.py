"""Strict JSON for the independent reader (spec/0.1/nemap.md R-HDR-01): no NaN or Infinity, no number beyond
binary64, no duplicate keys, at most 64 levels of nesting. NumPy-free, nemap-free."""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """R-HDR-01: a number that overflows binary64 (1e999) is not finite."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite binary64 number")
    return value


def _finite_int(text: str) -> int:
    value = int(text)
    if abs(value) >= 2**1024:
        raise ValueError("an integer beyond binary64")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of objects and arrays (R-HDR-01), counted without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, d = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, d)
            todo.extend((child, d + 1) for child in item)
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def parse(text: str) -> Any:
    """The header's JSON value; ValueError (or RecursionError) when it breaks R-HDR-01."""
    value = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys,
                       parse_float=_finite_float, parse_int=_finite_int)
    if _depth(value) > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH}")
    return value
