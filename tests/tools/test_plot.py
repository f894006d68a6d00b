"""`nemap plot`: a slice through a neural map, beside its source voxels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nemap
from nemap.fit.options import options_for
from nemap.io.mrc import read_mrc
from nemap.tools.convert import mrc_to_nemap

pytest.importorskip("matplotlib")
from nemap.tools.plot import parse_slice, slice_plot  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "maps" / "chain_32.mrc"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plot") / "c.nemap"
    mrc_to_nemap(EXAMPLE, out, options_for("siren-tiny", width=32, sine_layers=2, max_steps=40, device="cpu"),
                 progress=False)
    return out


def test_slice_is_the_source_plane_and_its_error(fitted: Path, tmp_path: Path) -> None:
    grid = read_mrc(EXAMPLE)
    g = grid.geometry
    k = 11
    z = g.origin[2] + k * g.voxel_size[2] + 0.3 * g.voxel_size[2]  # nearest plane is k
    pos = g.to_physical(np.array([[5.0, 6.0, k], [7.0, 8.0, k + 5]]))
    points = tmp_path / "nodes.npz"
    np.savez(points, pos=pos)
    png = tmp_path / "s.png"
    drawn = slice_plot(fitted, png, 2, z, source=EXAMPLE, points=points)
    assert drawn["index"] == k and drawn["position"] == pytest.approx(g.origin[2] + k * g.voxel_size[2])
    assert drawn["points_on_plane"] == 1  # the second node is 5 planes away
    wide = slice_plot(fitted, tmp_path / "w.png", 2, z, points=points, within=5.5 * g.voxel_size[2])
    assert wide["points_on_plane"] == 2 and "rmse" not in wide  # no source: the neural panel only
    q = np.stack(np.meshgrid(np.arange(32), np.arange(32), [k], indexing="ij"), axis=-1).reshape(-1, 3)
    with nemap.open(fitted) as m:
        diff = m.density(g.to_physical(q)) - grid.values[:, :, k].ravel()
    assert drawn["rmse"] == pytest.approx(np.sqrt(np.mean(diff ** 2)), rel=1e-6)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[1] > 2 * matplotlib.image.imread(png).shape[0]  # three panels


def test_plot_command_line_errors_are_one_line(fitted: Path, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nemap", "plot", *args], capture_output=True, text=True)

    png = tmp_path / "p.png"
    r = run(str(fitted), "--slice", "y=0", "-o", str(png))
    assert r.returncode == 0 and png.exists() and "voxel plane" in r.stdout
    for bad, words in ((["--slice", "w=3"], "AXIS=Å"), (["--slice", "z=500"], "outside the map")):
        r = run(str(fitted), *bad, "-o", str(tmp_path / "q.png"))
        assert r.returncode == 1 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run(str(fitted), "--slice", "y=0", "-o", str(png))
    assert r.returncode == 1 and "use --force" in r.stderr
    assert parse_slice("X = 1.5".replace(" ", "")) == (0, 1.5)


def test_a_crystallographic_source_is_read_with_ignore_cell_angles(fitted: Path, tmp_path: Path) -> None:
    """A source on a monoclinic cell (as MicroED maps have) is refused in one line naming the flag, and with
    --ignore-cell-angles drawn as the same voxels on a 90° cell: the same plane error."""
    from fixtures.synthetic_mrc import write_raw_mrc

    grid = read_mrc(EXAMPLE)
    skewed = tmp_path / "p21.mrc"
    write_raw_mrc(skewed, grid.values, voxel_size=grid.geometry.voxel_size,
                  nstart_xyz=[int(o) for o in grid.geometry.origin], cellb=(90.0, 94.3, 90.0), ispg=4)
    args = [sys.executable, "-m", "nemap", "plot", str(fitted), "--slice", "z=12", "--source", str(skewed), "-o"]
    r = subprocess.run([*args, str(tmp_path / "a.png")], capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "--ignore-cell-angles" in r.stderr
    r = subprocess.run([*args, str(tmp_path / "b.png"), "--ignore-cell-angles"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    same = slice_plot(fitted, tmp_path / "c.png", 2, 12.0, source=EXAMPLE)
    assert f"RMSE {same['rmse']:.4g}" in r.stdout
