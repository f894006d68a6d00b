"""Writing outputs so that nothing is ever lost: refuse to overwrite unless asked, write to a temporary
file beside the target, rename it into place only when complete, and remove it on any failure."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from nemap.errors import NemapError


def check_output_path(path: str | os.PathLike, force: bool) -> Path:
    """Refuse an existing output without ``force``, a directory, and a missing output directory."""
    out = Path(path)
    if out.is_dir():
        raise NemapError("is a directory", path=out, code="OUTPUT_EXISTS")
    if os.path.lexists(out) and not force:
        raise NemapError("exists; use force=True to overwrite", path=out, code="OUTPUT_EXISTS", parameter="force")
    if not out.absolute().parent.is_dir():
        raise NemapError(f"output directory {out.absolute().parent} does not exist", path=out,
                         code="OUTPUT_DIR_MISSING")
    return out


def partial_path(out: Path) -> Path:
    """The temporary name ``out`` is written under: hidden, unique, same folder, same suffix."""
    return out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.partial{out.suffix}")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; when the block ends without error it becomes ``path``.

    The target is checked first (:func:`check_output_path`); on any error, or an interrupt, the
    temporary file is removed and the target is left as it was. An ``OSError`` while writing becomes a
    one-line ``NemapError`` (``WRITE_FAILED``) naming the target.
    """
    out = check_output_path(path, force)
    tmp = partial_path(out)
    try:
        yield tmp
        os.replace(tmp, out)
    except OSError as exc:
        raise NemapError(f"cannot write: {exc.strerror or exc}", path=out, code="WRITE_FAILED") from exc
    finally:
        tmp.unlink(missing_ok=True)


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file of a working folder (no overwrite check): ``write(tmp)``, then rename onto ``path``."""
    tmp = partial_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def is_nemap(path: str | os.PathLike) -> bool:
    """True for the names of .nemap files."""
    return os.fspath(path).lower().endswith(".nemap")


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), read a MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
