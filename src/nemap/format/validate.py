"""The validator: every check of the spec on one file, as a report with stable codes.

``nemap validate FILE [--json]`` prints it; exit 0 valid, 1 invalid, 2 unreadable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from nemap._version import __version__
from nemap.format.codes import ERROR, INFO, WARNING
from nemap.format.inspector import Issue
from nemap.format.limits import VERSION_STRING
from nemap.format.reader import inspect

UNREADABLE = {"IO_CANNOT_OPEN", "IO_NOT_HDF5"}


@dataclass
class Report:
    """The outcome of validating one file."""

    path: str
    issues: list[Issue] = field(default_factory=list)
    version: str | None = None

    @property
    def valid(self) -> bool:
        return not any(i.severity == ERROR for i in self.issues)

    @property
    def unreadable(self) -> bool:
        return any(i.code in UNREADABLE for i in self.issues)

    @property
    def exit_code(self) -> int:
        return 2 if self.unreadable else (0 if self.valid else 1)

    def count(self, severity: str) -> int:
        return sum(1 for i in self.issues if i.severity == severity)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "valid": self.valid,
            "validator": {"name": "nemap", "version": __version__, "spec_version": VERSION_STRING},
            "file_version": self.version,
            "num_errors": self.count(ERROR),
            "num_warnings": self.count(WARNING),
            "num_infos": self.count(INFO),
            "issues": [i.to_json() for i in self.issues],
        }

    def to_text(self) -> str:
        status = "valid" if self.valid else ("unreadable" if self.unreadable else "INVALID")
        lines = [f"{self.path}: {status} ({self.count(ERROR)} errors, {self.count(WARNING)} warnings, "
                 f"{self.count(INFO)} notices)"]
        for i in self.issues:
            where = f" [{i.location}]" if i.location else ""
            lines.append(f"  {i.severity:7s} {i.code}: {i.message}{where}")
        return "\n".join(lines)


def validate(path: str | os.PathLike) -> Report:
    """Run every check (container, header, schema, semantics, values, digests); never raises
    for a bad file."""
    ins, f, _ = inspect(path, strict=False, values=True, verify=True, deep=True)
    if f is not None:
        f.close()
    version = None
    if ins.file_version is not None:
        version = f"{ins.file_version[0]}.{ins.file_version[1]}"
    return Report(os.fspath(path), ins.issues, version)
