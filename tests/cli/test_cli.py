"""The command line as a user meets it: exit codes, one-line errors, stdout vs stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nemap
from fixtures.random_nemap import random_content

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_MAP = REPO / "fixtures" / "maps" / "chain_32.mrc"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nemap", *args], capture_output=True, text=True, cwd=REPO)


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and nemap.__version__ in r.stdout and "format 0.3" in r.stdout


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
    # line 1 installs no extra, so no torch at all (the light install); line 2 pins the CPU build before the extras
    assert blocks[0].startswith("pip install -e . ") and "[" not in blocks[0].split("&&")[0]
    assert blocks[1].startswith("pip install torch==2.13.0")


def test_convert_round_trip_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "c.nemap"
    r = run("convert", str(EXAMPLE_MAP), str(out), "--preset", "siren-tiny", "--width", "32", "--depth", "2",
            "--max-steps", "30", "--seed", "7", "--resolution", "3", "--device", "cpu", "--exit-loss", "2e-6")
    assert r.returncode == 0, r.stderr
    assert "fidelity at voxel centres" in r.stdout and "correlation" in r.stdout  # the report on stdout
    assert "fitting" in r.stderr and "on cpu" in r.stderr  # progress and the device on stderr
    with nemap.open(out) as m:
        assert m.resolution == 3.0 and m.provenance["training"]["options"]["seed"] == 7
        assert m.provenance["training"]["stop_rule"]["exit_loss"] == 2e-6
        assert m.provenance["history"][0]["command"][:2] == ["nemap", "convert"]
    info = json.loads(run("info", "--json", str(out)).stdout)
    assert len(info["provenance"]["fidelity"]["regions"]) == info["regions"]  # per-region report for scripts
    again = run("convert", str(EXAMPLE_MAP), str(out), "--preset", "siren-tiny")
    assert again.returncode == 1 and "exists; use --force" in again.stderr
    back = tmp_path / "back.mrc"
    r = run("convert", str(out), str(back))
    assert r.returncode == 0 and back.exists() and "32×32×32" in r.stdout


def test_convert_defaults_to_the_spline_preset(tmp_path: Path) -> None:
    out = tmp_path / "d.nemap"
    r = run("convert", str(EXAMPLE_MAP), str(out), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    with nemap.open(out) as m:  # the spline of the voxels, stored quantized within σ/20 (format 0.3)
        options = m.provenance["training"]["options"]
        assert options["preset"] == "spline" and options["method"] == "spline" and options["storage"] == "quantized"
        assert m.version == "0.3" and m.representation.name == "quantized"
        worst = m.provenance["fidelity"]["overall"]["max_abs_error"]
        assert 0 < worst <= m.error_bound == pytest.approx(m.noise["sd"] / 20)
        assert m.certificate["fsc_floor"] >= 0.999
    assert "of the float32 MRC" in r.stdout and "FSC ≥" in r.stdout  # the last lines: size and certificate
    lossless = tmp_path / "l.nemap"
    assert run("convert", str(EXAMPLE_MAP), str(lossless), "--lossless").returncode == 0
    with nemap.open(lossless) as m:
        assert m.version == "0.2" and m.provenance["fidelity"]["overall"]["max_abs_error_fraction_of_range"] < 1e-5


def test_convert_region_size(tmp_path: Path) -> None:
    out = tmp_path / "r.nemap"
    r = run("convert", str(EXAMPLE_MAP), str(out), "--preset", "siren-sampled", "--region-size", "16", "--width",
            "16", "--depth", "2",
            "--max-steps", "2", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    with nemap.open(out) as m:  # 32 voxels per axis in regions of 16 overlapping by ≥ 4: 3 per axis
        options = m.provenance["training"]["options"]
        assert options["max_region_size"] == 16 and options["preset"] == "siren-sampled"
        assert options["method"] == "sampled"
        assert m.regions.count == 27
        assert np.all(m.regions.bounds[:, 1] - m.regions.bounds[:, 0] + 1 <= 16)


def test_convert_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    cases = []
    text = tmp_path / "notes.mrc"
    text.write_text("this is not a map")
    cases.append(("convert", str(text), str(tmp_path / "a.nemap")))
    truncated = tmp_path / "cut.mrc"
    truncated.write_bytes(EXAMPLE_MAP.read_bytes()[:5000])
    cases.append(("convert", str(truncated), str(tmp_path / "b.nemap")))
    cases.append(("convert", str(EXAMPLE_MAP), str(tmp_path / "c.pdb")))
    cases.append(("convert", str(EXAMPLE_MAP), str(tmp_path / "missing" / "d.nemap")))
    cases.append(("convert", str(EXAMPLE_MAP), str(tmp_path / "e.nemap"), "--resolution", "-2"))
    cases.append(("convert", str(EXAMPLE_MAP), str(tmp_path / "f.nemap"), "--region-size", "4"))
    cases.append(("convert", str(EXAMPLE_MAP), str(tmp_path / "g.nemap"), "--region-size", "65"))
    for args in cases:
        r = run(*args)
        assert r.returncode == 1, (args, r.stderr)
        lines = [line for line in r.stderr.splitlines() if line.startswith("nemap: error:")]
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert not list(tmp_path.glob("*.nemap"))


def test_fidelity_report_of_a_big_map_lists_the_worst_regions() -> None:
    from nemap.cli.convert import format_fidelity as _format_fidelity

    n = 30
    regions = [{"rmse": 0.01, "max_abs_error": 0.01 * (i % 7), "correlation": 0.99} for i in range(n)]
    training = [{"steps": 10, "stop_reason": "natural-fit" if i % 2 else "step-cap"} for i in range(n)]
    header = {"regions": {"count": n, "network_count": n},
              "provenance": {"fidelity": {"overall": {"rmse": 0.01, "max_abs_error": 0.06, "correlation": 0.99,
                                                      "max_abs_error_fraction_of_range": 0.03},
                                          "regions": regions},
                             "training": {"regions": training}}}
    text = _format_fidelity("x.nemap", header, max_regions=5)
    listed = [line for line in text.splitlines() if line.strip().startswith("region ")]
    shown = [float(line.split("max |error|")[1].split()[0]) for line in listed]
    assert shown == [0.06, 0.06, 0.06, 0.06, 0.05]  # regions 6, 13, 20, 27, then one of 0.05
    assert "natural-fit 15, step-cap 15" in text and "all 30 are in the file" in text
    small = _format_fidelity("x.nemap", header, max_regions=50)
    assert len([line for line in small.splitlines() if line.strip().startswith("region ")]) == 30


def test_foreseeable_conditions_are_one_line_errors_in_flags(tmp_path: Path) -> None:
    """An unknown device, a reader that exits at once, a bad decoding grid: exit 1, one line, the flag
    named, no internal error and no work done."""
    cases = [
        (("convert", str(EXAMPLE_MAP), str(tmp_path / "a.nemap"), "--device", "tpu9"), "--device 'tpu9'"),
        (("conformance", "--reader", "/bin/false"), "exited"),
        (("conformance", "--suite", str(tmp_path)), "not a conformance suite"),
        (("convert", str(EXAMPLE_MAP), str(tmp_path / "b.nemap"), "--resolution", "inf"), "--resolution"),
    ]
    for args, expected in cases:
        r = run(*args)
        lines = [line for line in r.stderr.splitlines() if "error" in line]
        assert r.returncode == 1 and len(lines) == 1 and expected in lines[0], (args, r.stderr)
        assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("*.nemap*"))
