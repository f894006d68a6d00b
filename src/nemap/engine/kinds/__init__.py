"""Region representations in the engine, one module per kind, found through one name table (the names of
``nemap.format.kinds.KINDS``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nemap.engine.kinds.base import RegionEvaluator
from nemap.engine.kinds.quantized import QuantizedEvaluator
from nemap.engine.kinds.siren import SirenEvaluator
from nemap.engine.kinds.spline import SplineEvaluator

EVALUATORS: dict[str, Callable[..., RegionEvaluator]] = {"siren": SirenEvaluator, "spline": SplineEvaluator,
                                                          "quantized": QuantizedEvaluator}


def evaluator(kind: str, content: Any, device: Any = "cpu", dtype: Any = None) -> RegionEvaluator:
    """The evaluator of ``kind`` for a map's content (or an opened map)."""
    return EVALUATORS[kind](content, device=device, dtype=dtype)


__all__ = ["EVALUATORS", "RegionEvaluator", "evaluator"]
