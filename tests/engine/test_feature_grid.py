"""The engine's NEMAP_feature_grid regions against the binary64 reference, with a non-zero network."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.random_nemap import random_feature_grid_content
from nemap.engine import bspline
from nemap.engine.query import Engine
from nemap.format.reference import evaluate


@pytest.mark.parametrize("order", [3, 5])
def test_engine_matches_reference_density_and_gradient(order: int) -> None:
    content = random_feature_grid_content((30, 12, 10), (1.0, 1.2, 0.8), (3.0, -1.0, 2.0), order=order, channels=3,
                                          constant_regions=(1,), seed=order)
    q = np.random.default_rng(order).uniform(0, 1, (4000, 3)) * (np.asarray(content.geometry.grid_shape) - 1)
    p = np.asarray(content.geometry.origin) + q * np.asarray(content.geometry.voxel_size)
    d, g = Engine.from_content(content).evaluate(p)
    dr, gr = evaluate(p, content.geometry, content.normalization, content.regions, content.layers, content.weights,
                      content.biases, content.feature_grid, order)
    span = content.normalization.value_max - content.normalization.value_min
    assert np.abs(d - dr).max() < 1e-6 * span
    assert np.abs(g - gr).max() < 1e-4 * np.abs(gr).max()


@pytest.mark.parametrize("order", [3, 5])
def test_bspline_weights_sum_to_one_and_reproduce_linear_functions(order: int) -> None:
    u = np.linspace(0, 1, 101)
    w, dw = bspline.weights(u, order)
    assert np.allclose(w.sum(-1), 1.0) and np.allclose(dw.sum(-1), 0.0)
    nodes = np.arange(order + 1) - (order - 1) // 2  # node offsets from the cell
    assert np.allclose((w * nodes).sum(-1), u) and np.allclose((dw * nodes).sum(-1), 1.0)


@pytest.mark.parametrize("order", [3, 5])
def test_spline_gradient_is_the_derivative_of_its_value(order: int) -> None:
    c = np.random.default_rng(order).standard_normal((12, 11, 10))
    t = np.random.default_rng(1).uniform(0, 1, (50, 3)) * (np.asarray(c.shape) - order - 2) + (order - 1) // 2
    v, g = bspline.evaluate(c, t, order)
    h = 1e-6
    for a in range(3):
        step = np.zeros(3)
        step[a] = h
        numeric = (bspline.evaluate(c, t + step, order, False)[0] - bspline.evaluate(c, t - step, order,
                                                                                     False)[0]) / (2 * h)
        assert np.abs(numeric - g[:, a]).max() < 1e-6 * np.abs(g).max()


def test_the_correction_network_acts_only_between_voxel_centres() -> None:
    content = random_feature_grid_content((14, 12, 10), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), order=5, channels=2, seed=3)
    zero = random_feature_grid_content((14, 12, 10), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), order=5, channels=2, seed=3)
    for w, b in zip(zero.weights, zero.biases):
        w[...] = 0
        b[...] = 0
    centres = np.array([[3.0, 4.0, 5.0], [7.0, 2.0, 8.0]])
    off = centres + 0.37
    d, g = Engine(content).evaluate(centres)
    dz, gz = Engine(zero).evaluate(centres)
    assert np.allclose(d, dz, atol=1e-12) and np.allclose(g, gz, atol=1e-9)
    assert not np.allclose(Engine(content).evaluate(off)[0], Engine(zero).evaluate(off)[0])
