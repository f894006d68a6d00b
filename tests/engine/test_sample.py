"""Sampling a regular grid (region blocks, separable weights) agrees with point queries at the same positions."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.random_nemap import random_content, random_feature_grid_content
from nemap.engine import query
from nemap.engine.kinds import siren as siren_kind
from nemap.engine.query import Engine
from nemap.format.geometry import Geometry, grid_points


def contents() -> dict:
    return {"siren": random_content((40, 20, 12), (1.1, 1.0, 0.9), (10.0, -5.0, 2.5), seed=3),
            "feature grid": random_feature_grid_content((30, 12, 10), (1.0, 1.2, 0.8), (3.0, -1.0, 2.0), order=5,
                                                        channels=3, constant_regions=(1,), seed=4)}


def targets(g: Geometry) -> list[Geometry]:
    """The map's own grid, a finer grid over the box, and an offset coarse grid reaching outside the map."""
    lo = np.asarray(g.origin)
    return [g, Geometry(tuple(2 * n - 1 for n in g.grid_shape), tuple(v / 2 for v in g.voxel_size), g.origin),
            Geometry((9, 8, 7), (2.3, 1.9, 2.1), tuple(lo - [1.0, 0.5, -0.7]))]


@pytest.mark.parametrize("kind", ["siren", "feature grid"])
def test_sample_equals_point_queries(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    content = contents()[kind]
    engine = Engine.from_content(content)
    span = content.normalization.value_max - content.normalization.value_min
    monkeypatch.setattr(query, "SLAB_VOXELS", 200)  # several slabs, regions cut between them
    for target in targets(content.geometry):
        grid = engine.sample(target)
        points = grid_points(target, slice(None))
        expected = engine.evaluate(points, gradient=False)[0].reshape(target.grid_shape)
        assert np.array_equal(np.isnan(grid.values), np.isnan(expected))
        assert np.nanmax(np.abs(grid.values - expected)) < 2e-6 * span
    outside = engine.sample(targets(content.geometry)[2], fill=-7.0).values
    assert (outside == -7.0).any() and not np.isnan(outside).any()


def test_points_in_blocks_equal_points_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    content = random_content(seed=5)
    engine = Engine.from_content(content)
    p = np.asarray(content.geometry.origin) + np.random.default_rng(1).uniform(-2, 40, (3000, 3))
    p[::97] = np.nan
    d, g = engine.evaluate(p)
    monkeypatch.setattr(query, "BLOCK_POINTS", 128)
    monkeypatch.setattr(siren_kind, "CHUNK_POINTS", 50)
    d2, g2 = engine.evaluate(p)
    np.testing.assert_allclose(d2, d, rtol=0,
                               atol=1e-6 * np.nanmax(np.abs(d)))  # float32 networks: chunking changes rounding only
    np.testing.assert_allclose(g2, g, rtol=0, atol=1e-5 * np.nanmax(np.abs(g)))
    assert np.isnan(d[::97]).all() and np.isnan(g[::97]).all()


def test_empty_and_float16_queries() -> None:
    engine = Engine.from_content(random_content(seed=6))
    d, g = engine.evaluate(np.zeros((0, 3)))
    assert d.shape == (0,) and g.shape == (0, 3)
    p16 = (np.asarray(engine.geometry.origin) + [3.0, 4.5, 2.25]).astype(np.float16)[None]
    np.testing.assert_array_equal(engine.evaluate(p16)[0], engine.evaluate(p16.astype(np.float64))[0])


def test_working_memory_does_not_grow_with_the_number_of_points() -> None:
    """Points are taken in blocks: doubling N grows the peak only by the larger output (10⁸ points need the
    input, the output and one block's working memory)."""
    import tracemalloc

    engine = Engine.from_content(random_content(seed=7))
    rng = np.random.default_rng(2)
    peaks = []
    for n in (400_000, 800_000):
        p = np.asarray(engine.geometry.origin) + rng.uniform(0, 10, (n, 3))
        tracemalloc.start()
        engine.evaluate(p, gradient=False)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] - peaks[0] < 1.5 * 400_000 * 8 + (1 << 20)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_maps_split_along_each_axis_sample_and_blend_like_the_reference(axis: int) -> None:
    """Regions overlapping along x, y or z only: sampled grids and point queries equal the float64 reference, so a
    blend that used the wrong axis, or a block placed on the wrong axis, shows."""
    from fixtures.conformance.generate import axis_bounds
    from nemap.format.reference import evaluate

    shape = [12, 12, 12]
    shape[axis] = 30
    split = [[(0, 11)], [(0, 11)], [(0, 11)]]
    split[axis] = [(0, 13), (9, 20), (16, 29)]
    content = random_content(tuple(shape), (1.0, 1.1, 0.9), (2.0, -3.0, 1.0), bounds=axis_bounds(*split),
                             seed=20 + axis)
    g = content.geometry
    target = Geometry(tuple(n * 2 - 3 for n in shape), tuple(v * 0.5 for v in g.voxel_size), g.origin)
    sampled = Engine.from_content(content, dtype=__import__("torch").float64).sample(target).values
    points = grid_points(target, slice(None))
    want, _ = evaluate(points, g, content.normalization, content.regions, content.layers, content.weights,
                       content.biases)
    np.testing.assert_allclose(sampled.reshape(-1), want, atol=1e-9 * 3.0, equal_nan=True)
