"""One fitted region: what a training loop hands back, the resume store keeps and the assembly stacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class RegionFit:
    """One fitted region: weights per layer ([out, in]) and biases ([out]), and how the fit went."""

    index: int
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    stats: dict[str, Any]
