"""Baked queries: a cubic B-spline of the sampled map, with its own measured error."""

from __future__ import annotations

import numpy as np
import pytest

import nemap
from fixtures.random_nemap import random_content
from fixtures.synthetic_maps import chain_map
from nemap.errors import ArgumentError
from nemap.fit.fit_map import fit_map
from nemap.fit.options import options_for


@pytest.fixture(scope="module", params=["spline", "siren"])
def opened(request, tmp_path_factory) -> nemap.NeuralMap:
    if request.param == "spline":
        grid, _ = chain_map((24, 20, 18), voxel_size=1.1, origin=(5.0, -3.0, 7.5), resolution=3.0, seed=2)
        content = fit_map(grid, options_for("spline"))
    else:
        content = random_content((20, 16, 12), (1.0, 1.2, 0.9), (2.0, 0.0, -4.0), width=16, sine_layers=2, omega=5.0)
    path = tmp_path_factory.mktemp("baked") / "m.nemap"
    nemap.write(path, content)
    with nemap.open(path) as m:
        yield m


def test_baked_queries_stay_within_their_reported_error(opened: nemap.NeuralMap) -> None:
    baked = opened.baked()
    sizes = [pytest.approx(tuple(v / k for v in opened.geometry.voxel_size)) for k in (2, 3, 4)]
    assert baked.geometry.voxel_size in sizes
    assert baked.error["voxel_size"] == list(baked.geometry.voxel_size)
    lo, hi = opened.geometry.extent
    points = lo + np.random.default_rng(7).uniform(0, 1, (3000, 3)) * (hi - lo)
    d, g = opened.evaluate(points)
    bd, bg = baked.evaluate(points)
    span = opened.normalization.value_max - opened.normalization.value_min
    error = baked.error
    assert 0 < error["density_mean"] <= error["density_max"] < 0.05
    assert np.abs(bd - d).mean() / span < 3 * error["density_mean"]
    assert np.abs(bg - g).mean() / np.abs(g).max() < 3 * error["gradient_mean"] + 1e-6
    np.testing.assert_allclose(baked.density(points), bd)


def test_baked_queries_outside_the_map_are_nan_and_bad_shapes_refused(opened: nemap.NeuralMap) -> None:
    baked = opened.baked(voxel_size=1.0)
    d, g = baked.evaluate([[1e6, 0.0, 0.0], [np.nan, 0.0, 0.0]])
    assert np.all(np.isnan(d)) and np.all(np.isnan(g))
    with pytest.raises(ArgumentError, match="xyz"):
        baked.density(np.zeros((4, 2)))


def test_baked_spline_is_scipys_cubic_spline_and_its_gradient_its_slope(opened: nemap.NeuralMap) -> None:
    from scipy import ndimage

    baked = opened.baked(voxel_size=0.7)
    samples = opened.sample(voxel_size=0.7).values.astype(np.float64)
    lo, hi = opened.geometry.extent
    points = lo + np.random.default_rng(3).uniform(0, 1, (2000, 3)) * (hi - lo)
    q = baked.geometry.to_index(points)
    within = np.all(q <= np.asarray(baked.geometry.grid_shape) - 1, axis=1)  # beyond the last sample: clamped
    points, q = points[within], q[within]
    expected = ndimage.map_coordinates(samples, q.T, order=3, mode="mirror")
    d, g = baked.evaluate(points)
    span = np.ptp(samples)
    assert np.abs(d - expected).max() < 1e-5 * span
    inner = points[np.all((q > 1) & (q < np.asarray(baked.geometry.grid_shape) - 2), axis=1)][:200]
    h = 1e-2  # Å; the spline is evaluated in float32
    fd = np.stack([(baked.density(inner + h * e) - baked.density(inner - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(baked.gradient(inner), fd, atol=2e-3 * np.abs(fd).max())


def test_default_bake_refines_until_the_target_error(opened: nemap.NeuralMap, monkeypatch: pytest.MonkeyPatch) -> None:
    from nemap.engine import baked as baked_module

    coarse = opened.baked()
    assert coarse.error["density_max"] <= baked_module.TARGET_ERROR or len(coarse.geometry.voxel_size) == 3
    monkeypatch.setattr(baked_module, "TARGET_ERROR", 1e-12)  # unreachable: every subdivision tried, then a warning
    with pytest.warns(nemap.NemapWarning, match="largest density error"):
        finest = opened.baked()
    assert finest.geometry.voxel_size == pytest.approx(tuple(v / 4 for v in opened.geometry.voxel_size))
    assert finest.error["density_max"] < coarse.error["density_max"] or coarse.error["density_max"] <= 1e-3
