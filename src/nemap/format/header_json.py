"""Strict JSON for the header (R-HDR-01): no NaN or Infinity, no number that overflows binary64, no duplicate
keys, at most MAX_HEADER_DEPTH levels of nesting; and the bundled JSON Schemas (never fetched)."""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from nemap.format.limits import BASE_VERSION_STRING, MAX_HEADER_DEPTH


def load_schema(name: str = BASE_VERSION_STRING) -> dict[str, Any]:
    """The bundled JSON Schema ``schema/<name>/header.schema.json`` (a version, an extension or ``evidence``)."""
    text = resources.files("nemap.format").joinpath("schema", name, "header.schema.json").read_text("utf-8")
    return json.loads(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in the header")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows binary64")
    return value


def _finite_int(text: str) -> int:
    value = int(text)
    if abs(value) >= 2**1024:
        raise ValueError(f"integer of {len(text)} digits overflows binary64")
    return value


def json_depth(value: Any) -> int:
    """How deep objects and arrays nest in ``value`` (a scalar is 0, ``{}`` is 1), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_header_json(text: str) -> Any:
    """Strict JSON (R-HDR-01). Raises ValueError otherwise."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates,
                           parse_float=_finite_float, parse_int=_finite_int)
    except RecursionError:
        raise ValueError(f"objects and arrays nest deeper than {MAX_HEADER_DEPTH}") from None
    if json_depth(value) > MAX_HEADER_DEPTH:
        raise ValueError(f"objects and arrays nest deeper than {MAX_HEADER_DEPTH}")
    return value
