"""The protocol of a region representation in the file: how regions of one kind are declared (extension,
header member), which datasets they imply, what their values must satisfy, and what a writer stores.

A file holds one representation for the regions that are not constants. Its kind is found from the header
(``nemap.format.kinds.kind_of``) or from the content being written (``kind_of_content``); each layer that
deals with representations (format, engine, fit) keeps one module per kind, found through one name table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nemap.format.content import NeuralMapContent
    from nemap.format.inspector import Inspector

CONSTANT = "constant"  # a region whose network_index is −1: the constant constant_value[r] (0.1 §8.1)


class RegionKind:
    """One representation of regions in a .nemap file (a subclass per kind; the base is the 0.1 core)."""

    name = "region"
    extension: str | None = None  # the extension that declares it; None: format 0.1 itself
    min_version = (0, 1)
    slot_arrays: tuple[str, ...] = ()  # its datasets indexed by network slot first (written one slot per chunk)

    def __repr__(self) -> str:
        return f"<region kind {self.name!r}>"

    def uses(self, header: dict[str, Any]) -> bool:
        """Whether ``header`` declares this kind: its extension is listed in ``extensions_used``."""
        return self.extension is not None and self.extension in _listed(header, "extensions_used")

    def holds(self, content: NeuralMapContent) -> bool:
        """Whether ``content`` is of this kind."""
        raise NotImplementedError

    def network_inputs(self, header: dict[str, Any]) -> int:
        """Inputs of the first network layer (0.1 R-NET-01: 3)."""
        return 3

    def check_member(self, ins: Inspector, header: dict[str, Any]) -> None:
        """Header rules of the kind (its member, version, listing); run before the schema check."""

    def expected_datasets(self, header: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
        """Datasets the kind adds: path → (shape, dtype string)."""
        return {}

    def check_values(self, ins: Inspector, header: dict[str, Any], bounds: np.ndarray,
                     network_index: np.ndarray) -> None:
        """Rules on the kind's values that need the regions (run when the regions could be read)."""

    def check_arrays(self, ins: Inspector, header: dict[str, Any], read: Any, deep: bool = False) -> None:
        """Rules on the kind's own arrays (finite values, streams); ``read(path)`` gives a dataset's values; ``deep``:
        also what needs decoding (the validator)."""

    def member(self, content: NeuralMapContent) -> dict[str, Any] | None:
        """The header member ``extensions.<extension>`` written for ``content``, or None."""
        return None

    def arrays(self, content: NeuralMapContent) -> dict[str, np.ndarray]:
        """Dataset path → array that the kind stores for ``content``."""
        return {}

    def region_kinds(self, header: dict[str, Any], network_index: np.ndarray) -> np.ndarray:
        """The kind name of every region: this kind for network regions, ``constant`` for the others."""
        return np.where(np.asarray(network_index) >= 0, self.name, CONSTANT)

    def describe(self, header: dict[str, Any]) -> dict[str, Any]:
        """What ``nemap info`` says about the kind (plain JSON)."""
        return {}


def _listed(header: dict[str, Any], key: str) -> list[Any]:
    value = header.get(key)
    return value if isinstance(value, list) else []
