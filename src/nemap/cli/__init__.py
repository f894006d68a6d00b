"""The ``nemap`` command: one module per subcommand, each a thin layer that parses flags and calls the
library (``nemap.tools`` and below).

Results go to stdout, logs, warnings and progress to stderr. Errors are one line (``nemap: error: FILE:
problem``, the library's parameter names shown as flags) with exit status 1, and a traceback only with
``-v``. Only this package knows flags and exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from nemap._version import __version__
from nemap.cli import common, conformance, convert, convert_many, graph, info, plot, resolution, simulate, validate
from nemap.cli.common import flag_message, flags_of, restore_logging, setup_logging
from nemap.errors import NemapError, NemapWarning
from nemap.format.limits import VERSION_STRING

SUBCOMMANDS = (info, convert, convert_many, simulate, plot, graph, resolution, validate, conformance)


def build_parser() -> argparse.ArgumentParser:
    shared = common.common_options()
    p = argparse.ArgumentParser(prog="nemap", parents=[common.common_options(top=True)],
                                description="Neural cryo-EM maps: convert, inspect and validate .nemap files.")
    p.add_argument("-V", "--version", action="version", version=f"nemap {__version__} (format {VERSION_STRING})")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in SUBCOMMANDS:
        module.add_parser(sub, shared)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = setup_logging(args.verbose, args.quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", NemapWarning)
            status = int(args.func(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at exit
            return status
    except NemapError as exc:
        if args.verbose:
            raise
        print(f"nemap: error: {flag_message(exc, flags_of(parser))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nemap: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (nemap info … | head): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # a bug, not a bad input: say so in one line, details with -v
        if args.verbose:
            raise
        print(f"nemap: internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)", file=sys.stderr)
        return 1
    finally:
        restore_logging(saved)


if __name__ == "__main__":
    sys.exit(main())
