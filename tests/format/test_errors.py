"""The error model: registered codes, parameter names in library messages, flags only in the CLI, and
warnings a script can catch."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from nemap.cli.common import flag_message
from nemap.format.codes import CODES
from nemap.errors import ERROR_CODES, ArgumentError, NemapError, NemapWarning
from nemap.files import check_output_path

SRC = Path(__file__).resolve().parents[2] / "src" / "nemap"


def test_every_code_raised_is_registered() -> None:
    used = set()
    for path in SRC.rglob("*.py"):
        if path.name != "numpy_reader.py":
            used |= set(re.findall(r'code="([A-Z_]+)"', path.read_text()))
    assert used and used <= set(ERROR_CODES) | set(CODES), used - set(ERROR_CODES) - set(CODES)


def test_library_messages_name_parameters_and_the_cli_names_flags(tmp_path: Path) -> None:
    out = tmp_path / "x.nemap"
    out.write_bytes(b"keep")
    with pytest.raises(NemapError, match="use force=True") as ei:
        check_output_path(out, force=False)
    assert ei.value.parameter == "force" and "--force" not in str(ei.value)
    assert "use --force to overwrite" in flag_message(ei.value)
    err = ArgumentError("'voxel_size' takes one or three finite values > 0 (Å)", parameter="voxel_size")
    assert isinstance(err, ValueError) and flag_message(err).startswith("--voxel-size takes")


def test_an_unknown_or_missing_device_is_an_argument_error() -> None:
    torch = pytest.importorskip("torch")
    from nemap.engine.device import resolve_device

    for name in ("tpu9", "nonsense:x") + (() if torch.cuda.is_available() else ("cuda",)):
        with pytest.raises(ArgumentError) as ei:
            resolve_device(name)
        assert ei.value.code == "DEVICE_UNAVAILABLE" and ei.value.parameter == "device"


def test_warnings_can_be_caught_and_raised(tmp_path: Path) -> None:
    from nemap.format.geometry import Geometry
    from nemap.io.mrc import read_mrc, write_mrc

    path = tmp_path / "m.map"
    with pytest.warns(NemapWarning, match="not a whole number of voxels"):
        write_mrc(path, np.ones((2, 2, 2), np.float32), Geometry((2, 2, 2), (1.0, 1.0, 1.0), (0.25, 0, 0)))
    with pytest.warns(NemapWarning, match="ignore ORIGIN") as caught:
        read_mrc(path)
    assert caught[0].filename == __file__  # attributed to the caller's line, not to nemap's internals
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", NemapWarning)
        with pytest.raises(NemapWarning, match="ignore ORIGIN"):
            read_mrc(path)
