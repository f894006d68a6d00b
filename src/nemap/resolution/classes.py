"""The three resolution classes of the seed paper (002), shared by every single-map estimator (NumPy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

CLASSES = ("high", "medium", "low")
CLASS_EDGES = (5.0, 10.0)  # Å: high < 5 ≤ medium ≤ 10 < low
CLASS_CENTRES = (3.75, 7.5, 12.5)  # Å: the middle of high (2.5–5), medium (5–10) and low (10–15)


def resolution_class(resolution: Any) -> np.ndarray:
    """0 high (< 5 Å), 1 medium (5–10 Å), 2 low (> 10 Å), elementwise."""
    return np.digitize(resolution, CLASS_EDGES, right=True)


def classify(resolution: float) -> str:
    """The class name of one resolution (Å)."""
    return CLASSES[int(resolution_class(resolution))]
