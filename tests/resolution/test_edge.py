"""The spectrum-edge estimator (nemap.resolution.edge) on synthetic maps post-processed as deposited maps are:
a chain's density, noise, a low-pass at a known resolution."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.fft

from fixtures.synthetic_maps import chain_map
from nemap.errors import NemapError
from nemap.format.geometry import Geometry, Grid
from nemap.resolution.edge import edge_resolution, fit_edge
from nemap.resolution.fsc import frequency_squared


def post_processed(resolution: float, voxel: float = 1.0, edge: int = 64, noise: float = 0.05, seed: int = 0
                   ) -> Grid:
    """A chain at 0.7 × ``resolution`` (sharpened-looking), white noise of ``noise`` × the peak, then low-passed
    at ``resolution`` Å with a raised-cosine edge from 0.97/R to 1.03/R, as post-processing filters."""
    n = int(round(edge / voxel))
    grid, _ = chain_map((n, n, n), voxel_size=voxel, resolution=0.7 * resolution, atoms=n ** 3 // 200,
                        margin=8.0, seed=seed)
    v = grid.values.astype(np.float64)
    v = v + noise * v.max() * np.random.default_rng(seed + 1).standard_normal(v.shape)
    s = np.sqrt(frequency_squared(v.shape, voxel))
    gain = 0.5 * (1 + np.cos(np.pi * np.clip((s * resolution - 0.97) / 0.06, 0, 1)))
    return Grid(scipy.fft.irfftn(scipy.fft.rfftn(v) * gain, s=v.shape).astype(np.float32), grid.geometry)


@pytest.mark.parametrize(("resolution", "voxel"), [(3.0, 1.0), (6.0, 1.0), (8.0, 2.0)])
def test_the_edge_of_a_post_processed_map_is_its_resolution(resolution: float, voxel: float) -> None:
    e = edge_resolution(post_processed(resolution, voxel))
    shell = resolution ** 2 / 64.0  # Å: one shell (1/box Å⁻¹) at 1/R, the reading's precision
    assert abs(e.global_resolution - resolution) < 0.07 * resolution + shell, e.global_resolution
    assert e.drop >= 0.5 and e.slopes[1] < min(e.slopes[0], e.slopes[2])
    assert e.global_class == ("high" if resolution < 5 else "medium") and e.local is None


def test_a_spectrum_without_a_fall_into_a_floor_has_no_edge() -> None:
    grid, _ = chain_map((48, 48, 48), resolution=4.0, atoms=300, margin=8.0, seed=2)
    for values in (np.random.default_rng(4).standard_normal((48, 48, 48)),  # white noise: flat
                   grid.values.astype(np.float64)):  # a molmap, unfiltered and noise-free: Gaussian to Nyquist
        with pytest.raises(NemapError) as info:
            edge_resolution(Grid(values, grid.geometry))
        assert info.value.code == "NO_EDGE"
    assert fit_edge(np.linspace(0.05, 0.5, 5), np.zeros(5)) is None  # too few shells to fit three segments


def test_the_edge_estimator_from_the_command_line_needs_no_network(tmp_path) -> None:
    from nemap.io.mrc import write_mrc

    grid = post_processed(4.0)
    write_mrc(tmp_path / "post.mrc", grid.values, grid.geometry)
    write_mrc(tmp_path / "flat.mrc", np.random.default_rng(0).standard_normal((40, 40, 40)).astype(np.float32),
              Geometry((40, 40, 40), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)))
    code = ("import sys, runpy; sys.modules['torch'] = None; sys.argv = ['nemap', '-q', 'resolution'] + sys.argv[1:]; "
            "runpy.run_module('nemap', run_name='__main__')")
    run = lambda *a: subprocess.run([sys.executable, "-c", code, *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    r = run(tmp_path / "post.mrc", "--model", "edge", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == "edge" and abs(out["global_resolution"] - 4.0) < 0.3 and out["edge_drop_decades"] >= 0.5
    bad = run(tmp_path / "flat.mrc", "--model", "edge")
    assert bad.returncode == 1 and "no edge" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "flat.mrc" in bad.stderr


def test_the_learned_estimate_reports_the_spectrum_edge_and_points_it_out_when_finer() -> None:
    pytest.importorskip("torch")
    from nemap.resolution.estimate import estimate

    e = estimate(post_processed(4.0))
    assert e.spectrum_edge is not None and abs(e.spectrum_edge - 4.0) < 0.07 * 4.0 + 16 / 64
    assert e.summary()["spectrum_edge_resolution"] == e.spectrum_edge
    assert any("power spectrum ends" in n for n in e.notes) == (e.spectrum_edge < 0.9 * e.global_resolution)
    flat = Grid(np.random.default_rng(0).standard_normal((40, 40, 40)).astype(np.float32),
                Geometry((40, 40, 40), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)))
    plain = estimate(flat, model="cnn3d")  # a classifier too; white noise has no edge
    assert plain.spectrum_edge is None and plain.summary()["spectrum_edge_resolution"] is None
