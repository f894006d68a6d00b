"""What every subcommand shares: the -v/-q options, number lists, and how library errors and warnings
are shown (one line, the library's parameter names replaced by this program's flags)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import warnings
from typing import Any

from nemap.errors import NemapError, NemapWarning

log = logging.getLogger("nemap")

def flags_of(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Library parameter → the flag that sets it, read from the parser (its subcommands' too): an option's
    ``dest`` is the library's parameter name (``--depth`` has dest ``sine_layers``), so no table is kept by hand."""
    flags: dict[str, str] = {}
    for action in parser._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs:
            flags.setdefault(action.dest, longs[0])
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                for dest, flag in flags_of(child).items():
                    flags.setdefault(dest, flag)
    return flags


def flag_message(err: NemapError, flags: dict[str, str]) -> str:
    """``str(err)`` with the library's parameter names ('voxel_size', force=True) replaced by the command line's
    flags; a positional argument (dest in lower case) keeps its name."""
    text = str(err).replace("force=True", flags.get("force", "--force"))
    return re.sub(r"'([a-z_]+)'", lambda m: flags.get(m.group(1), m.group(0)), text)


def common_options(top: bool = False) -> argparse.ArgumentParser:
    """-v and -q, accepted before and after the subcommand. The subcommands' copies default to SUPPRESS,
    so that ``nemap -v CMD`` is not undone by CMD's own default."""
    common = argparse.ArgumentParser(add_help=False)
    default: dict = {} if top else {"default": argparse.SUPPRESS}
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks", **default)
    common.add_argument("-q", "--quiet", action="store_true", help="errors only on stderr", **default)
    return common


def add_cell_angles_option(parser: Any) -> None:
    """--ignore-cell-angles, for every command that reads MRC maps into a grid (``ignore_cell_angles``)."""
    parser.add_argument("--ignore-cell-angles", action="store_true",
                        help="read a non-orthogonal (crystallographic) cell, as MicroED maps have, as if its angles "
                             "were 90°")


def floats(text: str) -> list[float]:
    """'1,2,3' or '1 2 3' → [1.0, 2.0, 3.0] (an argparse type)."""
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from None


def setup_logging(verbose: bool, quiet: bool) -> tuple[Any, ...]:
    """Send nemap's log and warnings to stderr as 'nemap: message'; returns what to restore."""
    level = logging.DEBUG if verbose else (logging.ERROR if quiet else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nemap: %(levelname)s: %(message)s" if verbose else "nemap: %(message)s"))
    saved = (log.handlers[:], log.level, log.propagate, warnings.showwarning)
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if not issubclass(category, NemapWarning):  # nemap's own are logged where they are issued
            saved[3](message, category, filename, lineno, file, line)

    warnings.showwarning = show
    return saved


def restore_logging(saved: tuple[Any, ...]) -> None:
    log.handlers[:], log.level, log.propagate, warnings.showwarning = saved
