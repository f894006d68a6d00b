"""Errors raised by nemap. Every message names the file and the problem in one line."""

from __future__ import annotations

import os


class NemapError(Exception):
    """A file or an argument that nemap cannot accept.

    ``code`` is a stable upper-snake identifier (see spec/0.1/nemap.md, "Validation codes");
    ``path`` is the offending file, if any. ``str(err)`` is one line: ``PATH: message``.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, code: str = "ERROR"):
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.code = code
        super().__init__(f"{self.path}: {message}" if self.path else message)


class FormatError(NemapError):
    """The file is not a conformant .nemap file (or not a readable MRC map)."""
