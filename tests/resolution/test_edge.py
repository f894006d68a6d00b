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
from scipy import ndimage

from fixtures.synthetic_maps import chain_map
from nemap.errors import NemapError
from nemap.format.geometry import Geometry, Grid
from nemap.resolution.edge import edge_resolution, fit_edge, low_pass_edge, spectra
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
    assert out["low_pass_filter_edge"] is True  # unmasked, filtered over ±3 % of 1/R: a cliff
    bad = run(tmp_path / "flat.mrc", "--model", "edge")
    assert bad.returncode == 1 and "no edge" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "flat.mrc" in bad.stderr


def test_the_learned_estimate_reports_the_spectrum_edge_and_points_it_out_when_finer() -> None:
    pytest.importorskip("torch")
    from nemap.resolution.estimate import estimate

    e = estimate(post_processed(4.0))
    assert e.spectrum_edge is not None and abs(e.spectrum_edge - 4.0) < 0.07 * 4.0 + 16 / 64
    assert e.summary()["spectrum_edge_resolution"] == e.spectrum_edge
    noted = e.global_resolution / 2 <= e.spectrum_edge < 0.9 * e.global_resolution
    assert any("power spectrum ends" in n for n in e.notes) == noted
    flat = Grid(np.random.default_rng(0).standard_normal((40, 40, 40)).astype(np.float32),
                Geometry((40, 40, 40), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)))
    plain = estimate(flat, model="cnn3d")  # a classifier too; white noise has no edge
    assert plain.spectrum_edge is None and plain.summary()["spectrum_edge_resolution"] is None


def test_an_edge_is_pointed_out_only_where_a_post_processed_map_could_look_that_coarse() -> None:
    """A masked map's edge (no cliff) is noted when the learned estimate is 0.9-2x it: a post-processed map looks up
    to twice as coarse as its filter. Further out it is something else (coloured noise's own fall ends near 2.4 A
    on maps of 3-16 A); the edge is still reported."""
    from nemap.resolution.estimate import with_spectrum_edge

    grid = post_processed(4.0)
    keep = ndimage.gaussian_filter(grid.values.astype(np.float64), 2.0) > 0.1 * float(grid.values.max())
    masked = Grid((grid.values * keep).astype(np.float32), grid.geometry)
    edge = edge_resolution(masked)
    assert not edge.low_pass  # the mask spreads the cliff: no filter rule, the learned value stays
    for ratio, noted in ((0.95, False), (0.8, True), (0.55, True), (0.45, False), (0.25, False)):
        notes: list[str] = []
        g, found, source = with_spectrum_edge(masked, edge.global_resolution / ratio, notes)
        assert source == "learned" and g == edge.global_resolution / ratio
        assert found is not None and found.global_resolution == edge.global_resolution
        assert any("power spectrum ends" in n for n in notes) == noted, ratio


def _low_passed(values: np.ndarray, resolution: float, voxel: float = 1.0) -> np.ndarray:
    """``values`` low-passed as RELION post-processes: a raised cosine over one Fourier shell either side of 1/R."""
    s = np.sqrt(frequency_squared(values.shape, voxel))
    width = 1.0 / (max(values.shape) * voxel)
    gain = 0.5 * (1 + np.cos(np.pi * np.clip((s - 1.0 / resolution + width) / (2 * width), 0, 1)))
    return scipy.fft.irfftn(scipy.fft.rfftn(values) * gain, s=values.shape)


@pytest.mark.parametrize(("resolution", "edge"), [(3.5, 64), (7.0, 64), (5.0, 96)])
def test_a_low_pass_filters_cliff_is_read_at_its_middle(resolution: float, edge: int) -> None:
    """An unmasked map filtered at R (white noise over the whole band, then RELION's edge) is read within 4 % of
    R, with ``low_pass`` set; the three-segment fit alone reads the end of the fall, one or two shells finer."""
    grid, _ = chain_map((edge,) * 3, resolution=0.8 * resolution, atoms=edge ** 3 // 200, margin=8.0, seed=3)
    v = grid.values.astype(np.float64)
    v = _low_passed(v + 0.03 * v.max() * np.random.default_rng(5).standard_normal(v.shape), resolution)
    e = edge_resolution(Grid(v.astype(np.float32), grid.geometry))
    assert e.low_pass and abs(e.global_resolution - resolution) < 0.04 * resolution, e.global_resolution
    assert e.drop >= 3 and e.summary()["low_pass_filter_edge"] is True
    assert any("low-pass filtered at" in n for n in e.notes)


def test_no_cliff_where_the_spectrum_ends_in_a_cube_or_a_mask_spreads_it() -> None:
    """A map Fourier-padded to finer voxels (its spectrum a cube: radially averaged, it also ends in a cliff, at
    √3× where it ends along the axes), a filtered map masked afterwards, white noise, and a noise-free molmap
    (a Gaussian decline, ever steeper) have no low-pass cliff."""
    from nemap.resolution.reading import fourier_resample

    grid, _ = chain_map((32, 32, 32), voxel_size=2.0, resolution=6.0, atoms=150, margin=8.0, seed=4)
    noisy = grid.values + 0.03 * grid.values.max() * np.random.default_rng(6).standard_normal((32, 32, 32))
    padded = Grid(fourier_resample(noisy.astype(np.float32), (64, 64, 64)), Geometry((64,) * 3, (1.0,) * 3, (0.0,) * 3))
    s, powers = spectra(padded)
    assert low_pass_edge(s, [powers[0]] * 3) is not None  # all directions alone: a cliff, at the cube's corners
    assert low_pass_edge(s, powers) is None  # near the axes it ends √3× sooner: not a filter
    chain, _ = chain_map((64, 64, 64), resolution=3.0, atoms=1300, margin=8.0, seed=7)
    v = chain.values.astype(np.float64)
    filtered = _low_passed(v + 0.03 * v.max() * np.random.default_rng(8).standard_normal(v.shape), 4.0)
    assert low_pass_edge(*spectra(Grid(filtered.astype(np.float32), chain.geometry))) is not None
    masked = filtered * (ndimage.gaussian_filter((v > 0.05 * v.max()).astype(float), 2.0) > 0.2)
    for values in (masked, np.random.default_rng(9).standard_normal(v.shape), v):
        assert low_pass_edge(*spectra(Grid(values.astype(np.float32), chain.geometry))) is None


def test_the_learned_estimate_takes_a_filters_resolution_when_the_map_looks_it(tmp_path) -> None:
    """A map filtered at 8 Å reads 8 Å (within 4 %, its class and interval around it; the learned reading of its
    look in a note; the command line says where the value came from); a 12 Å map filtered at 4 Å (under half what
    it looks) keeps the learned estimate."""
    pytest.importorskip("torch")
    from nemap.resolution.estimate import estimate

    chain, _ = chain_map((64, 64, 64), resolution=8.0, atoms=1300, margin=8.0, seed=7)
    v = chain.values.astype(np.float64)
    v = v + 0.03 * v.max() * np.random.default_rng(8).standard_normal(v.shape)
    e = estimate(Grid(_low_passed(v, 8.0).astype(np.float32), chain.geometry))
    assert abs(e.global_resolution - 8.0) < 0.32 and e.global_class == "medium"
    assert e.spectrum_edge == e.global_resolution and e.summary()["global_resolution_source"] == "low-pass filter"
    assert e.interval[0] < e.global_resolution < e.interval[1]
    assert any(n.startswith("low-pass filtered at") and "learned estimate" in n for n in e.notes)
    from nemap.io.mrc import write_mrc

    write_mrc(tmp_path / "filtered.mrc", _low_passed(v, 8.0).astype(np.float32), chain.geometry)
    r = subprocess.run([sys.executable, "-m", "nemap", "-q", "resolution", str(tmp_path / "filtered.mrc")],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0 and "its low-pass filter's edge; model local" in r.stdout, r.stdout + r.stderr
    coarse, _ = chain_map((64, 64, 64), resolution=12.0, atoms=1300, margin=8.0, seed=7)
    e = estimate(Grid(_low_passed(coarse.values.astype(np.float64), 4.0).astype(np.float32), coarse.geometry))
    assert e.global_resolution > 8.0 and not any(n.startswith("low-pass filtered at") for n in e.notes)
    assert e.source == "learned"


def test_the_edge_fit_is_the_best_of_every_pair_of_breakpoints() -> None:
    """fit_edge solves all breakpoint pairs at once: the same fit as one least-squares solve per pair."""
    rng = np.random.default_rng(9)
    s = np.linspace(0.04, 0.5, 40)
    for _ in range(5):
        y = -np.cumsum(rng.uniform(0, 0.3, s.size)) + 0.05 * rng.standard_normal(s.size)
        half = (s[1] - s[0]) / 2
        points = np.arange(s[2], s[-3] + half / 2, half)
        best = None
        for i, b1 in enumerate(points):
            for b2 in points[i + 2:]:
                x = np.stack([np.ones_like(s), s, np.maximum(s - b1, 0), np.maximum(s - b2, 0)], axis=1)
                c = np.linalg.lstsq(x, y, rcond=None)[0]
                slopes = np.cumsum(c[1:])
                err = float(np.sum((y - x @ c) ** 2))
                if slopes[1] < min(slopes[0], slopes[2]) and (best is None or err < best[0] - 1e-12):
                    best = (err, b1, b2, slopes)
        fit = fit_edge(s, y)
        assert (fit is None) == (best is None)
        if fit is not None:
            np.testing.assert_allclose(fit[:2], best[1:3])
            np.testing.assert_allclose(fit[2], best[3], atol=1e-9)
