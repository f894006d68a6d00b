"""The error model: registered codes, parameter names in library messages, flags only in the CLI, and
warnings a script can catch."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from nemap.cli import build_parser
from nemap.cli.common import flag_message, flags_of
from nemap.errors import ERROR_CODES, ArgumentError, NemapError, NemapWarning
from nemap.files import check_output_path
from nemap.format.codes import CODES

SRC = Path(__file__).resolve().parents[2] / "src" / "nemap"


def test_every_code_raised_is_registered() -> None:
    used = set()
    for path in SRC.rglob("*.py"):
        if not path.name.startswith("numpy_"):
            used |= set(re.findall(r'code="([A-Z_]+)"', path.read_text()))
    assert used and used <= set(ERROR_CODES) | set(CODES), used - set(ERROR_CODES) - set(CODES)


def test_library_messages_name_parameters_and_the_cli_names_flags(tmp_path: Path) -> None:
    out = tmp_path / "x.nemap"
    out.write_bytes(b"keep")
    with pytest.raises(NemapError, match="use force=True") as ei:
        check_output_path(out, force=False)
    assert ei.value.parameter == "force" and "--force" not in str(ei.value)
    flags = flags_of(build_parser())
    assert "use --force to overwrite" in flag_message(ei.value, flags)
    err = ArgumentError("'voxel_size' takes one or three finite values > 0 (Å)", parameter="voxel_size")
    assert isinstance(err, ValueError) and flag_message(err, flags).startswith("--voxel-size takes")
    assert flag_message(ArgumentError("'sine_layers' must be 1 to 63", parameter="sine_layers"), flags) == \
        "--depth must be 1 to 63"


# Parameters of the library that no command-line flag sets (Python API only).
API_ONLY = {"xyz", "content", "data", "inputs", "path", "spline_order", "flat_tolerance", "name", "model"}


def test_every_parameter_the_library_refuses_has_a_flag_or_is_api_only() -> None:
    """The flags come from the parser (an option's dest is the library's parameter), so a refused parameter
    without an option would reach a command-line user as a Python name."""
    refused = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        refused |= set(re.findall(r'parameter="([a-z_]+)"', text))
        refused |= set(re.findall(r'(?:check_number|_check_range)\("([a-z_]+)"', text))
    flags = flags_of(build_parser())
    assert len(refused) > 15
    missing = sorted(refused - set(flags) - API_ONLY)
    assert not missing, f"parameters refused by the library with no flag: {missing}"


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
