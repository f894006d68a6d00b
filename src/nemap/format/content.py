"""The in-memory content of a neural map: what a .nemap file stores, as NumPy and dataclasses.

No I/O here (``nemap.format.reader`` and ``writer`` read and write it). Conventions: index space is (x, y, z)
with voxel centres at integers; Å for positions; densities in the source map's units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nemap.format.evidence import Evidence
from nemap.format.geometry import Geometry

ACTIVATIONS = ("sine", "identity")


@dataclass(frozen=True)
class Layer:
    """One dense layer ``a = W @ h + b`` (W is [out_features, in_features]), then the activation:
    ``sin(omega * a)`` for "sine", ``a`` for "identity"."""

    in_features: int
    out_features: int
    activation: str
    omega: float | None = None

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}")
        if self.activation == "sine" and not (self.omega and self.omega > 0):
            raise ValueError("a sine layer needs omega > 0")

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "in_features": int(self.in_features),
            "out_features": int(self.out_features),
            "activation": self.activation,
        }
        if self.activation == "sine":
            d["omega"] = float(self.omega)  # type: ignore[arg-type]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Layer:
        return cls(int(d["in_features"]), int(d["out_features"]), d["activation"], d.get("omega"))


def siren_layers(width: int, sine_layers: int, omega: float = 30.0) -> list[Layer]:
    """A SIREN 3 → width ×``sine_layers`` sine layers → 1 linear output (the paper: 256, 5, 30)."""
    layers = [Layer(3, width, "sine", omega)]
    layers += [Layer(width, width, "sine", omega) for _ in range(sine_layers - 1)]
    layers.append(Layer(width, 1, "identity"))
    return layers


@dataclass(frozen=True)
class Normalization:
    """Min–max normalization between source densities d and network outputs y ∈ [-1, 1].

    Forward (fitting): c = max(d, 0) if clamp_negative else d;  y = 2 (c - value_min) / (value_max - value_min) - 1.
    Inverse (decoding): d = value_min + (y + 1) / 2 · (value_max - value_min).
    normalized_mean / normalized_std: mean and population σ of (y + 1) / 2 over the training voxels.
    """

    value_min: float
    value_max: float
    clamp_negative: bool
    normalized_mean: float
    normalized_std: float
    source_stats: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "method": "minmax",
            "value_min": float(self.value_min),
            "value_max": float(self.value_max),
            "clamp_negative": bool(self.clamp_negative),
            "normalized_mean": float(self.normalized_mean),
            "normalized_std": float(self.normalized_std),
        }
        if self.source_stats is not None:
            d["source_stats"] = {k: float(v) for k, v in self.source_stats.items()}
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Normalization:
        return cls(
            float(d["value_min"]), float(d["value_max"]), bool(d["clamp_negative"]),
            float(d["normalized_mean"]), float(d["normalized_std"]), d.get("source_stats"),
        )

    def decode(self, y: Any) -> np.ndarray:
        """Network output y → density in source units."""
        return self.value_min + (np.asarray(y, dtype=np.float64) + 1.0) * 0.5 * (self.value_max - self.value_min)

    def encode(self, density: Any) -> np.ndarray:
        """Source density → network target y (the fitting direction, with the clamp if recorded)."""
        d = np.asarray(density, dtype=np.float64)
        if self.clamp_negative:
            d = np.maximum(d, 0.0)
        return 2.0 * (d - self.value_min) / (self.value_max - self.value_min) - 1.0


@dataclass
class Regions:
    """The regions of a neural map.

    bounds: int64 [R, 2, 3]; bounds[r, 0] and bounds[r, 1] are the first and last voxel-centre
        indices (inclusive) of region r along (x, y, z).
    network_index: int64 [R]; the region's slot in the stacked network arrays, or -1 when the
        region is the constant ``constant_value[r]`` (in network output units y).
    constant_value: float32 [R].
    ramp_width: width of the blending ramps, in voxels (index units).
    tiling: informational description of how the regions were chosen.
    """

    bounds: np.ndarray
    network_index: np.ndarray
    constant_value: np.ndarray
    ramp_width: float
    tiling: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return int(self.bounds.shape[0])

    @property
    def network_count(self) -> int:
        return int(np.count_nonzero(np.asarray(self.network_index) >= 0))


@dataclass
class NeuralMapContent:
    """Everything a .nemap file holds. ``weights[l]`` is float32 [N, out_l, in_l] and
    ``biases[l]`` float32 [N, out_l], N = regions.network_count, stacked in network_index order.
    ``feature_grid``: float32 [N, C, Kx, Ky, Kz] coefficient grids of the NEMAP_feature_grid extension
    (node k of slot s at index first − m + k, m = (order − 1)/2), or None for SIREN regions (format 0.1);
    ``feature_grid_order``: their B-spline degree, 3 or 5. ``evidence``: resolution evidence (spec/0.2/nemap.md §5.1).
    ``quantized``: the voxels of a NEMAP_quantized file (format 0.3), or None."""

    geometry: Geometry
    normalization: Normalization
    regions: Regions
    layers: list[Layer]
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    resolution: dict[str, Any] | None = None
    contour_level: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    source_mrc_header: bytes | None = None
    feature_grid: np.ndarray | None = None
    feature_grid_order: int = 3
    evidence: Evidence | None = None
    quantized: Any = None  # nemap.format.kinds.quantized.QuantizedVoxels (imported there: it imports this)
