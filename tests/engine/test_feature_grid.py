"""The engine's NEMAP_feature_grid regions against the binary64 reference, with a non-zero network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures.random_nemap import random_feature_grid_content
from nemap.engine.feature_grid import bspline_weights, interpolation_gate
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
    u = torch.linspace(0, 1, 101, dtype=torch.float64)
    w = bspline_weights(u, order)
    assert torch.allclose(w.sum(-1), torch.ones_like(u))
    nodes = torch.arange(order + 1, dtype=torch.float64) - (order - 1) // 2  # node offsets from the cell
    assert torch.allclose((w * nodes).sum(-1), u)


def test_gate_vanishes_with_its_gradient_at_voxel_centres_only() -> None:
    q = torch.tensor([[0.0, 3.0, -2.0], [0.5, 3.0, 1.0], [0.25, 0.5, 0.75]], dtype=torch.float64, requires_grad=True)
    g = interpolation_gate(q)
    (grad,) = torch.autograd.grad(g.sum(), q)
    assert g[0] == 0 and torch.all(grad[0].abs() < 1e-12)
    assert g[1].item() == pytest.approx(1.0) and g[2].item() > 0.5
