"""SIREN regions (format 0.1 §8): each region with a network is a sine-activated MLP of its local
coordinates; the networks are the ``/network/layer_ll`` datasets of every file."""

from __future__ import annotations

from typing import Any

from nemap.format.content import NeuralMapContent
from nemap.format.kinds.base import RegionKind


class SirenKind(RegionKind):
    name = "siren"

    def uses(self, header: dict[str, Any]) -> bool:
        return True  # the 0.1 core: what a file is when no extension declares another kind

    def holds(self, content: NeuralMapContent) -> bool:
        return True

    def describe(self, header: dict[str, Any]) -> dict[str, Any]:
        layers = header["network"]["layers"]
        return {"layers": len(layers), "width": max(layer["out_features"] for layer in layers),
                "omega": next((layer.get("omega") for layer in layers if layer.get("omega")), None)}


KIND = SirenKind()
