"""The errors and warnings of the nemap library, with their registered codes.

Every error is a :class:`NemapError` with a stable upper-snake ``code``: a validation code of the spec
(``nemap.format.codes.CODES``, spec/0.1/nemap.md §14) or one of :data:`ERROR_CODES` below. Messages are
one line, name the file (``PATH: problem``) and speak in the library's parameter names, never in
command-line flags: ``err.parameter`` says which argument was refused, so a front end (``nemap.cli``)
can name its own flag instead. Warnings are :class:`NemapWarning` issued with :func:`warn`, so scripts
can filter them or turn them into errors with the ``warnings`` module.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from typing import Any

# Codes of errors that are not about a .nemap file's content (those are nemap.format.codes.CODES).
ERROR_CODES: dict[str, str] = {
    "ERROR": "an unclassified error",
    "BAD_ARGUMENT": "an argument out of its range or of the wrong form",
    "DEVICE_UNAVAILABLE": "the requested torch device does not exist on this machine",
    "MISSING_DEPENDENCY": "an optional package needed for this is not installed",
    "FILE_NOT_FOUND": "an input file does not exist",
    "FILE_UNREADABLE": "an input file cannot be read (permissions)",
    "OUTPUT_EXISTS": "the output exists and overwriting was not asked for",
    "OUTPUT_DIR_MISSING": "the output's directory does not exist",
    "WRITE_FAILED": "the output could not be written",
    "OUTPUT_BUSY": "another conversion is writing the same output",
    "IO_CLOSED": "the file was closed before its arrays were read",
    "NOT_MRC": "not an MRC/CCP4 map",
    "MRC_BAD_HEADER": "an MRC header field that makes no sense",
    "MRC_NO_VOXEL_SIZE": "an MRC header without a usable voxel size",
    "MRC_NONORTHOGONAL": "an MRC map with a non-orthogonal cell",
    "MRC_BAD_ORIGIN": "an MRC ORIGIN that cannot be used",
    "MRC_TRUNCATED": "an MRC file shorter than its header says",
    "MRC_UNSUPPORTED_MODE": "an MRC data mode nemap does not read",
    "MRC_UNREADABLE": "an MRC file that cannot be read for another reason",
    "NONFINITE_VOXELS": "a map with NaN or infinite voxels, which cannot be fitted or compared",
    "GRIDS_DIFFER": "two maps (half maps, a map and its mask) that do not lie on one grid",
    "GRID_TOO_SMALL": "a grid too small for the computation asked (fewer than 4 voxels along an axis, a window "
                      "larger than the box)",
    "BAD_MASK": "a mask with values outside [0, 1], or zero everywhere",
    "CONSTANT_MAP": "a map with one value everywhere, where a resolution is asked",
    "NO_SOLVENT": "a map without solvent to measure its noise in (masked, or cropped tight), where that is needed",
    "NO_EDGE": "a map whose power spectrum has no fall into a floor to read a resolution at (never low-pass filtered)",
    "NO_MODEL": "a learned estimator that is not shipped, or whose weight file is missing or damaged",
    "OUT_OF_MEMORY": "a conversion that would not fit in the memory at hand",
    "SCHEDULER_UNREACHABLE": "a Dask scheduler that cannot be reached (or a local cluster that cannot start)",
    "INCOMPLETE": "a fit assembled before all of its regions are in",
    "BAD_MODEL": "not a readable atomic model, or a model without atoms",
    "BAD_GRAPH": "not a readable graph file",
    "NO_BOX": "a graph file without the map box, and no map given",
    "NO_RESOLUTION": "no resolution in the file or the arguments",
    "NO_THRESHOLD": "no contour level in the file for a contour threshold",
    "NOT_A_SUITE": "a folder that is not a conformance suite",
    "READER_FAILED": "a reader program under test exited or answered garbage",
}


class NemapError(Exception):
    """A file or an argument that nemap cannot accept.

    ``code``: a registered upper-snake identifier (see the module docstring); ``path``: the offending
    file, if any; ``parameter``: the library argument that was refused, if any. ``str(err)`` is one
    line: ``PATH: message``.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, code: str = "ERROR",
                 parameter: str | None = None):
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.code = code
        self.parameter = parameter
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def with_path(self, path: str | os.PathLike) -> NemapError:
        """The same error naming ``path`` (when it named no file), of the same class."""
        if self.path is not None:
            return self
        return type(self)(self.message, path=path, code=self.code, parameter=self.parameter)


class FormatError(NemapError):
    """The file is not a conformant .nemap file (or not a readable MRC map, model or graph)."""


class ArgumentError(NemapError, ValueError):
    """An argument out of range or of the wrong form; ``parameter`` names it."""

    def __init__(self, message: str, *, parameter: str, code: str = "BAD_ARGUMENT",
                 path: str | os.PathLike | None = None):
        super().__init__(message, path=path, code=code, parameter=parameter)


def check_number(name: str, value: Any, *, above: float | None = None, at_least: float | None = None,
                 unit: str = "") -> float:
    """``value`` as a float when it is a finite number (and > ``above`` / ≥ ``at_least``); otherwise an
    ArgumentError naming parameter ``name``: "'name' must be a finite number > 0 Å, got inf"."""
    bound = f" > {above:g}" if above is not None else (f" ≥ {at_least:g}" if at_least is not None else "")
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and (above is None or number > above) and (at_least is None or number >= at_least)):
        raise ArgumentError(f"'{name}' must be a finite number{bound}{' ' + unit if unit else ''}, got {value}",
                            parameter=name)
    return number


class NemapWarning(UserWarning):
    """Something nemap did that the user should know about (an assumption about a file, a lossy choice)."""


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _first_frame_outside_nemap() -> int:
    """The stacklevel (for ``warnings.warn`` called in :func:`warn`) of the innermost caller outside nemap."""
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def warn(message: str) -> None:
    """Issue ``message`` as a :class:`NemapWarning` attributed to the user's line that called into nemap,
    and log it on the ``nemap`` logger (which has only a ``NullHandler`` until an application adds one)."""
    warnings.warn(message, NemapWarning, stacklevel=_first_frame_outside_nemap())
    logging.getLogger("nemap").warning("%s", message)


# Optional dependencies: the package each extra of nemap installs, and what it enables (pyproject.toml).
EXTRAS: dict[str, str] = {"siren": "torch", "resolution": "torch", "graph": "scikit-learn", "models": "gemmi",
                          "cluster": "distributed", "plot": "matplotlib"}


def require(module: str, extra: str, purpose: str) -> Any:
    """Import ``module`` (an optional dependency), or raise a NemapError (code MISSING_DEPENDENCY) saying which
    extra installs it: "to evaluate SIREN regions nemap needs torch: pip install 'nemap[siren]'"."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise NemapError(f"to {purpose} nemap needs {module.split('.')[0]}: pip install 'nemap[{extra}]'",
                         code="MISSING_DEPENDENCY") from None
