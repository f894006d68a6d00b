"""Eq. 1–2 normalization on data with negatives: the statistics, the clamp, and encode/decode as inverses."""

from __future__ import annotations

import numpy as np
import pytest

from nemap.fit.normalization import network_targets, normalization_for


def test_negative_densities_kept_without_the_clamp() -> None:
    values = np.array([[[-3.0, -1.0], [0.0, 5.0]]], dtype=np.float32)
    n, constant = normalization_for(values, clamp_negative=False)
    assert not constant and (n.value_min, n.value_max) == (-3.0, 5.0)
    y = network_targets(values, n)
    np.testing.assert_allclose(y.reshape(-1), [-1.0, -0.5, -0.25, 1.0])
    np.testing.assert_allclose(n.decode(y), values, atol=1e-6)
    assert n.normalized_mean == pytest.approx((values.mean() + 3.0) / 8.0)
    assert n.normalized_std == pytest.approx(values.std() / 8.0)
    assert n.source_stats == {"min": -3.0, "max": 5.0, "mean": pytest.approx(0.25), "std": pytest.approx(values.std())}


def test_the_clamp_maps_negatives_to_the_bottom_of_the_range() -> None:
    values = np.array([[[-3.0, -1.0], [1.0, 5.0]]], dtype=np.float32)
    n, _ = normalization_for(values, clamp_negative=True)
    assert (n.value_min, n.value_max) == (0.0, 5.0)
    y = network_targets(values, n)
    np.testing.assert_allclose(y.reshape(-1), [-1.0, -1.0, -0.6, 1.0])
    clamped = np.maximum(values, 0)
    assert n.normalized_mean == pytest.approx(clamped.mean() / 5.0)  # of the clamped values, not the raw ones
    assert n.normalized_std == pytest.approx(clamped.std() / 5.0)


def test_all_negative_maps_with_the_clamp_are_constant() -> None:
    values = -np.ones((2, 2, 2), dtype=np.float32)
    n, constant = normalization_for(values, clamp_negative=True)
    assert constant and n.value_max > n.value_min
