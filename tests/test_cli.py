"""The command line as a user meets it: exit codes, one-line errors, stdout vs stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import nemap
from fixtures.random_nemap import random_content

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_MAP = REPO / "fixtures" / "maps" / "chain_32.mrc"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nemap", *args], capture_output=True, text=True, cwd=REPO)


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and nemap.__version__ in r.stdout and "format 0.1" in r.stdout


def test_bad_input_is_one_line_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "missing.nemap"
    r = run("info", str(missing))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and str(missing) in r.stderr and "Traceback" not in r.stderr
    r = run("info", "-v", str(missing))
    assert r.returncode == 1 and "Traceback" in r.stderr
    bad_mrc = tmp_path / "bad.mrc"
    bad_mrc.write_bytes(b"\0" * 100)
    r = run("info", str(bad_mrc))
    assert r.returncode == 1 and "Traceback" not in r.stderr and str(bad_mrc) in r.stderr


def test_validate_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.nemap"
    nemap.write(good, random_content())
    assert run("validate", str(good)).returncode == 0
    with open(good, "r+b") as fh:  # corrupt the version attribute's neighbourhood: still HDF5
        pass
    import h5py

    with h5py.File(good, "r+") as f:
        f.attrs["nemap_version"] = "9.0"
    r = run("validate", "--json", str(good))
    assert r.returncode == 1 and json.loads(r.stdout)["issues"][0]["code"] == "VERSION_MAJOR_UNSUPPORTED"
    junk = tmp_path / "junk.nemap"
    junk.write_text("not hdf5")
    assert run("validate", str(junk)).returncode == 2


def test_info_json_on_mrc_and_nemap(tmp_path: Path) -> None:
    r = run("info", "--json", str(EXAMPLE_MAP))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["grid_shape"] == [32, 32, 32] and info["voxel_size"] == [1.0, 1.0, 1.0]
    assert info["origin"] == [20.0, -8.0, 4.0] and info["axis_order"] == [1, 2, 3]
    assert "origin" in r.stderr  # the origin rule is logged on stderr, not mixed into the JSON
    q = run("info", "-q", "--json", str(EXAMPLE_MAP))
    assert q.stderr == ""


def test_readme_and_ci_run_the_same_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    blocks = [line.strip() for line in readme.split("```")[1].splitlines()[1:] if line.strip()]
    assert len(blocks) == 2, "README opens with two set-up commands"
    assert "pytest" in blocks[1] and blocks[1] in ci
    assert blocks[0].startswith("pip install torch==2.13.0") and blocks[1].startswith("pip install torch==2.13.0")
