"""The protocol of making one region representation from a voxel grid (the fit layer's side of a kind).

A maker is chosen by ``FitOptions.method``. :class:`nemap.fit.fit_map.MapFit` plans the regions (with the
maker's tiling), finds flat ones, lets the maker prepare what it needs, fits the regions that need training
(``trains``) and asks the maker to assemble the content and describe how it was made.
"""

from __future__ import annotations

from typing import Any

from nemap.format.content import NeuralMapContent

FitOptions = Any  # nemap.fit.options.FitOptions (not imported: the options find their maker here)


class RegionMaker:
    """Makes the regions of one kind (a subclass per fitting method)."""

    method = ""
    tiling = "paper-eq3"  # how regions are chosen (nemap.format.tiling)
    trains = True  # regions are fitted one by one (tasks, a resume store, a device)
    handles_constant = False  # a constant map is made by the maker too (else: constant regions only)

    def start_message(self, options: FitOptions, regions: int, where: str) -> str:
        """The log line that says what the conversion will do."""
        raise NotImplementedError

    def prepare(self, job: Any) -> None:
        """Work done once for the whole map before any region (after flat regions are found); ``job`` is the
        :class:`~nemap.fit.fit_map.MapFit` (grid, options, plan, targets, resolution, noise)."""

    def assemble(self, job: Any) -> NeuralMapContent:
        """The map's content once every region is in."""
        raise NotImplementedError

    def record(self, options: FitOptions, plan: Any, device: Any) -> dict[str, Any]:
        """``provenance.training``: how the map was made."""
        raise NotImplementedError

    def recorded_options(self, options: FitOptions) -> dict[str, Any]:
        """The options that matter to this method, as recorded in the provenance."""
        raise NotImplementedError

    def memory_bytes(self, grid_shape: tuple[int, int, int], options: FitOptions, batch: int = 1) -> int:
        """Peak host memory of a conversion of a grid of ``grid_shape`` voxels."""
        raise NotImplementedError
