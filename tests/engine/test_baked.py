"""Baked queries: a cubic B-spline of the sampled map, with its own measured error."""

from __future__ import annotations

import numpy as np
import pytest

import nemap
from fixtures.random_nemap import random_content
from fixtures.synthetic_maps import chain_map
from nemap.fit.fit_map import fit_map
from nemap.fit.options import options_for
from nemap.format.errors import ArgumentError


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
    assert baked.geometry.voxel_size == pytest.approx(tuple(v / 2 for v in opened.geometry.voxel_size))
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
