"""The query engine and NeuralMap queries against the float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

import nemap
from nemap.format.reference import evaluate_map
from nemap.io.mrc import read_mrc
from nemap.tools.convert import nemap_to_mrc


def test_engine_matches_the_reference_and_finite_differences(fitted) -> None:
    with nemap.open(fitted) as m:
        lo, hi = m.geometry.extent
        rng = np.random.default_rng(0)
        p = lo + (hi - lo) * rng.uniform(-0.02, 1.02, (3000, 3))
        d, g = m.evaluate(p)
        dr, gr = evaluate_map(m, p)
        assert np.array_equal(np.isnan(d), np.isnan(dr))
        span = np.nanmax(dr) - np.nanmin(dr)
        assert np.nanmax(np.abs(d - dr)) < 1e-4 * span
        assert np.nanmax(np.abs(g - gr)) < 1e-3 * np.nanmax(np.abs(gr))
        np.testing.assert_array_equal(m.density(p), d)
        inner = p[np.all((p > lo + 0.1) & (p < hi - 0.1), axis=1)][:300]
        h = 1e-3
        fd = np.stack([(m.density(inner + h * e) - m.density(inner - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
        np.testing.assert_allclose(m.gradient(inner), fd, atol=2e-3 * np.abs(fd).max())


def test_sample_on_the_native_grid_is_the_decoded_map(fitted, tmp_path) -> None:
    with nemap.open(fitted) as m:
        grid = m.sample()
        assert grid.geometry == m.geometry and not np.isnan(grid.values).any()
        fine = m.sample(voxel_size=0.6)
        assert fine.geometry.voxel_size == (0.6, 0.6, 0.6) and fine.geometry.origin == m.geometry.origin
        coarse = fine.values[::2, ::2, ::2]
        np.testing.assert_allclose(coarse, grid.values[tuple(slice(0, n) for n in coarse.shape)], atol=1e-5)
    nemap_to_mrc(fitted, tmp_path / "n.mrc")
    np.testing.assert_allclose(read_mrc(tmp_path / "n.mrc").values, grid.values, atol=1e-6)
    big = tmp_path / "big.mrc"
    geo = nemap_to_mrc(fitted, big, voxel_size=[2.0], box=[0, -5, 5, 40, 30, 30], fill=-1.0)
    out = read_mrc(big)
    assert out.geometry.grid_shape == geo.grid_shape == (21, 18, 13)
    assert out.values[0, 0, 0] == -1.0 and np.isfinite(out.values).all()  # (0, -5, 5) Å lies outside the map


def test_query_positions_are_checked_and_nan_positions_give_nan() -> None:
    from nemap.engine.query import positions
    from nemap.errors import ArgumentError

    assert positions([1.0, 2.0, 3.0]).shape == (1, 3)
    assert positions(np.zeros((0, 3), np.float16)).dtype == np.float64
    for bad in (np.zeros((5, 2)), np.zeros((2, 3, 3)), [["a", "b", "c"]], np.zeros(6)):
        with pytest.raises(ArgumentError, match="xyz"):
            positions(bad)
