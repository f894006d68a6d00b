"""`nemap fsc`, `nemap locres` and `nemap convert --half-maps` from the command line, with bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nemap
from fixtures.half_maps import half_maps
from fixtures.synthetic_mrc import write_raw_mrc
from nemap.format.geometry import Geometry
from nemap.io.mrc import read_mrc, write_mrc

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, quiet: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nemap", *(["-q"] if quiet else []), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def maps(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("halves")
    h1, h2, _ = half_maps((40, 36, 32), (1.1, 1.1, 1.1), noise=1.0, seed=7)
    g = h1.geometry
    paths = {name: d / f"{name}.mrc" for name in ("h1", "h2", "map", "mask", "badmask", "other")}
    write_mrc(paths["h1"], h1.values, g)
    write_mrc(paths["h2"], h2.values, g)
    write_mrc(paths["map"], ((h1.values + h2.values) / 2).astype(np.float32), g)
    inside = np.linalg.norm((np.indices(g.grid_shape).T - np.array([20, 18, 16])).T, axis=0) < 14
    write_mrc(paths["mask"], inside.astype(np.float32), g)
    write_mrc(paths["badmask"], 3 * inside.astype(np.float32), g)
    write_mrc(paths["other"], h2.values[:-2], Geometry((38, 36, 32), g.voxel_size, g.origin))
    return paths


def test_fsc_json_plot_and_mask(maps, tmp_path) -> None:
    r = run("fsc", maps["h1"], maps["h2"], "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert 2.2 <= out["resolution_0143"] <= out["resolution_05"] < 20 and not out["masked"]
    assert len(out["curve"]["frequency"]) == len(out["curve"]["fsc"]) > 5
    r = run("fsc", maps["h1"], maps["h2"], "--mask", maps["mask"], "--json", "--plot", tmp_path / "fsc.png")
    assert r.returncode == 0, r.stderr
    masked = json.loads(r.stdout)
    assert masked["masked"] and "fsc_corrected" in masked["curve"] and (tmp_path / "fsc.png").stat().st_size > 1000
    text = run("fsc", maps["h1"], maps["h2"])
    assert "FSC = 0.143" in text.stdout and "FSC = 0.5" in text.stdout


def test_fsc_bad_input_is_one_line(maps) -> None:
    r = run("fsc", maps["h1"], maps["other"])
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert str(maps["h1"]) in r.stderr and str(maps["other"]) in r.stderr and "grid shapes" in r.stderr
    r = run("fsc", maps["h1"], maps["h2"], "--mask", maps["badmask"])
    assert r.returncode == 1 and "outside [0, 1]" in r.stderr and str(maps["badmask"]) in r.stderr
    r = run("fsc", maps["h1"])
    assert r.returncode == 1 and "two half maps" in r.stderr
    r = run("fsc", maps["h1"], maps["h1"], quiet=False)
    assert r.returncode == 0 and "identical" in r.stderr and "not reached" in r.stdout


def test_locres_writes_a_map_on_the_half_maps_grid(maps, tmp_path) -> None:
    out = tmp_path / "locres.mrc"
    r = run("locres", maps["h1"], maps["h2"], "-o", out, "--mask", maps["mask"])
    assert r.returncode == 0, r.stderr
    grid = read_mrc(out)
    assert grid.geometry == read_mrc(maps["h1"]).geometry
    inside = read_mrc(maps["mask"]).values >= 0.5
    assert (grid.values[~inside] == 0).all() and (grid.values[inside] >= 2.2 - 1e-6).all()
    assert "Å" in r.stderr and "#" in r.stderr  # the histogram
    again = run("locres", maps["h1"], maps["h2"], "-o", out)
    assert again.returncode == 1 and "exists" in again.stderr
    big = run("locres", maps["h1"], maps["h2"], "-o", tmp_path / "b.mrc", "--window", "200")
    assert big.returncode == 1 and "larger than the box" in big.stderr


def test_convert_with_half_maps_stores_the_evidence_and_graph_uses_it(maps, tmp_path) -> None:
    out = tmp_path / "m.nemap"
    r = run("convert", maps["map"], out, "--half-maps", maps["h1"], maps["h2"], "--mask", maps["mask"])
    assert r.returncode == 0, r.stderr
    assert "half-maps" in r.stdout and "FSC ≥" in r.stdout  # the bound comes from the half maps' noise
    expected = json.loads(run("fsc", maps["h1"], maps["h2"], "--mask", maps["mask"], "--json").stdout)
    with nemap.open(out, verify=True) as m:
        assert m.version == "0.3"
        assert m.evidence.fsc["resolution_0143"] == pytest.approx(expected["resolution_0143"])
        assert m.resolution == pytest.approx(expected["resolution_0143"])
        assert m.header["resolution"]["source"] == "half_maps"
        assert (m.evidence.local_resolution_grid > 0).any()
        assert m.mask().sum() == (read_mrc(maps["mask"]).values >= 0.5).sum()
        assert m.provenance["fidelity"]["fsc"]["crossed_05"] is False  # the spline map is exact at voxel centres
    info = json.loads(run("info", out, "--json").stdout)
    assert info["evidence"]["half_maps"] == ["h1.mrc", "h2.mrc"]
    g = run("graph", out, "-o", tmp_path / "g.json", "--sigma", "1")
    assert g.returncode == 0 and "local resolution at the midpoint" in g.stdout
    wrong = run("convert", maps["map"], tmp_path / "w.nemap", "--half-maps", maps["h1"], maps["other"])
    assert wrong.returncode == 1 and "does not lie on the map's grid" in wrong.stderr
    assert not (tmp_path / "w.nemap").exists()


def test_fsc_of_a_neural_map_against_its_source(maps, tmp_path) -> None:
    out = tmp_path / "small.nemap"
    assert run("convert", maps["map"], out, "--preset", "siren-tiny", "--max-steps", "30").returncode == 0
    r = run("fsc", out, "--against", maps["map"], "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    with nemap.open(out) as m:
        stored = m.provenance["fidelity"]["fsc"]
    assert res["resolution_05"] == pytest.approx(stored["resolution_05"], rel=1e-3)
    assert res["resolution_05"] > 2.2  # 30 steps of a small network: not faithful to Nyquist


def test_a_crystallographic_cell_is_read_with_ignore_cell_angles(maps, tmp_path) -> None:
    """A monoclinic cell (a MicroED map's, as EMD-3001's) is refused in one line that names the flag, and read with
    --ignore-cell-angles as the same voxels on a 90° cell: the same FSC, local resolution and estimate."""
    skewed = {}
    for name in ("h1", "h2", "map"):
        grid = read_mrc(maps[name])
        skewed[name] = tmp_path / f"{name}_p21.mrc"
        write_raw_mrc(skewed[name], grid.values, voxel_size=grid.geometry.voxel_size, cellb=(90.0, 94.3, 90.0), ispg=4)
    refused = run("fsc", skewed["h1"], skewed["h2"])
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "non-orthogonal" in refused.stderr and "--ignore-cell-angles" in refused.stderr
    assert str(skewed["h1"]) in refused.stderr and "Traceback" not in refused.stderr
    fsc = [json.loads(run("fsc", *pair, "--json", *flag).stdout)["resolution_0143"] for pair, flag in (
        ((maps["h1"], maps["h2"]), ()), ((skewed["h1"], skewed["h2"]), ("--ignore-cell-angles",)))]
    assert fsc[0] == pytest.approx(fsc[1])
    out = tmp_path / "locres.mrc"
    r = run("locres", skewed["h1"], skewed["h2"], "-o", out, "--ignore-cell-angles")
    assert r.returncode == 0, r.stderr
    assert read_mrc(out).values.max() > 0
    assert run("resolution", skewed["map"]).returncode == 1
    pytest.importorskip("torch")
    estimates = [json.loads(run("resolution", path, "--json", *flag).stdout)["global_resolution"]
                 for path, flag in ((maps["map"], ()), (skewed["map"], ("--ignore-cell-angles",)))]
    assert estimates[0] == pytest.approx(estimates[1])
