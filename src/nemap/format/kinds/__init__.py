"""Region representations in the file, one module per kind, found through one name table (``KINDS``).

To add a kind: a module here with a :class:`~nemap.format.kinds.base.RegionKind` subclass, its entry in
``KINDS`` (later entries win when a header declares several), and its modules in ``nemap.engine.kinds``
(evaluation) and ``nemap.fit.kinds`` (making it). ARCHITECTURE.md has the recipe.
"""

from __future__ import annotations

from typing import Any

from nemap.format.content import NeuralMapContent
from nemap.format.kinds import quantized, siren, spline
from nemap.format.kinds.base import CONSTANT, RegionKind

KINDS: dict[str, RegionKind] = {kind.name: kind for kind in (siren.KIND, spline.KIND, quantized.KIND)}


def kind_of(header: dict[str, Any]) -> RegionKind:
    """The representation a header declares (the last kind of ``KINDS`` whose extension it lists)."""
    return [kind for kind in KINDS.values() if kind.uses(header)][-1]


def kind_of_content(content: NeuralMapContent) -> RegionKind:
    """The representation of content to be written."""
    return [kind for kind in KINDS.values() if kind.holds(content)][-1]


def extensions() -> frozenset[str]:
    """The extensions this package implements."""
    return frozenset(kind.extension for kind in KINDS.values() if kind.extension)


__all__ = ["KINDS", "CONSTANT", "RegionKind", "kind_of", "kind_of_content", "extensions"]
