"""Making region representations, one module per kind, found through one name table: ``MAKERS`` maps each
fitting method (``FitOptions.method``) to its maker."""

from __future__ import annotations

from typing import Any

from nemap.fit.kinds.base import RegionMaker
from nemap.fit.kinds.quantized import QuantizedMaker
from nemap.fit.kinds.siren import SirenMaker
from nemap.fit.kinds.spline import SplineMaker

MAKERS: dict[str, RegionMaker] = {"paper": SirenMaker("paper"), "sampled": SirenMaker("sampled"),
                                  "spline": SplineMaker(), "quantized": QuantizedMaker()}


def maker_for(options: Any) -> RegionMaker:
    """The maker of ``options.method``; the spline method stores quantized voxels unless ``options.lossless``."""
    if options.method == "spline" and not options.lossless:
        return MAKERS["quantized"]
    return MAKERS[options.method]


__all__ = ["MAKERS", "RegionMaker", "maker_for"]
