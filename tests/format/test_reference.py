"""Tiling (paper Eq. 3), blending weights and the float64 reference evaluation of spec §8–9."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nemap
from fixtures.random_nemap import random_content
from nemap.format.reference import evaluate_map
from nemap.format.tiling import blend_weights, coverage_gaps, paper_axis_starts, paper_tiling


def eq3_float(n_v: int) -> list[int]:
    """Eq. 3 exactly as published (float stride)."""
    v_r = n_v if n_v < 64 else 64
    n_r = math.ceil((n_v - v_r) / (v_r - 4)) + 1 if v_r < n_v else 1
    s = (n_v - v_r) / max(n_r - 1, 1)
    return [math.floor((n - 1) * s) for n in range(1, n_r + 1)]


@pytest.mark.parametrize("n", list(range(1, 400)) + [4044])
def test_paper_tiling_matches_eq3(n: int) -> None:
    starts, size = paper_axis_starts(n)
    assert size == min(n, 64)
    assert starts[0] == 0 and starts[-1] + size == n  # ends exactly at the last voxel
    assert all(b - a <= size - 4 for a, b in zip(starts, starts[1:]))  # ≥ 4 shared voxel centres
    published = eq3_float(n)
    assert len(published) == len(starts)
    assert all(abs(a - b) <= 1 for a, b in zip(published, starts))
    if n != 4044:  # the published float stride falls one voxel short there
        assert published == starts


def test_three_regions_overlap_for_126() -> None:
    starts, size = paper_axis_starts(126)
    assert starts == [0, 31, 62]
    assert starts[2] <= starts[0] + size - 1  # regions 0 and 2 share voxels 62, 63


@pytest.mark.parametrize("shape", [(40, 9, 7), (100, 9, 7), (126, 9, 7), (126, 70, 65)])
def test_weights_are_a_partition_of_unity_and_cover(shape) -> None:
    bounds = paper_tiling(shape)
    assert len(coverage_gaps(bounds, shape)) == 0
    rng = np.random.default_rng(0)
    q = rng.uniform(0, 1, (5000, 3)) * (np.asarray(shape) - 1)
    w, _ = blend_weights(q, bounds, shape, 3.0)
    assert np.all(w.sum(axis=1) > 0)
    inside = np.all((q[:, None, :] >= bounds[None, :, 0]) & (q[:, None, :] <= bounds[None, :, 1]), axis=2)
    assert np.all(w[~inside] == 0)  # a region never weighs outside its box


def test_weight_gradient_matches_finite_differences() -> None:
    shape = (126, 70, 9)
    bounds = paper_tiling(shape)
    rng = np.random.default_rng(1)
    q = rng.uniform(0, 1, (500, 3)) * (np.asarray(shape) - 1)
    _, dw = blend_weights(q, bounds, shape, 3.0)
    h = 1e-6
    for a in range(3):
        e = np.zeros(3)
        e[a] = h
        fd = (blend_weights(q + e, bounds, shape, 3.0)[0] - blend_weights(q - e, bounds, shape, 3.0)[0]) / (2 * h)
        np.testing.assert_allclose(dw[..., a], fd, atol=1e-6)


@pytest.fixture(scope="module", params=[(40, 10, 8), (100, 10, 8), (126, 10, 8)], ids=["1-region", "2-regions",
                                                                                       "3-regions"])
def tiled_map(request, tmp_path_factory):
    shape = request.param
    content = random_content(grid_shape=shape, bounds=paper_tiling(shape), width=12, sine_layers=2,
                             omega=8.0, seed=2, constant_regions=(1,) if shape[0] == 126 else ())
    path = tmp_path_factory.mktemp("maps") / "m.nemap"
    nemap.write(path, content)
    with nemap.open(path) as m:
        yield m


def test_gradient_is_the_derivative_of_the_density(tiled_map) -> None:
    m = tiled_map
    lo, hi = m.geometry.extent
    rng = np.random.default_rng(3)
    p = lo + (hi - lo) * rng.uniform(0.02, 0.98, (3000, 3))
    _, g = evaluate_map(m, p)
    h = 1e-5
    fd = np.stack([(evaluate_map(m, p + h * e)[0] - evaluate_map(m, p - h * e)[0]) / (2 * h) for e in np.eye(3)],
                  axis=1)
    np.testing.assert_allclose(g, fd, atol=1e-6 * max(1.0, np.abs(g).max()))


def test_density_and_gradient_are_continuous_across_every_seam(tiled_map) -> None:
    m = tiled_map
    faces = sorted({int(v) for v in m.regions.bounds[:, :, 0].ravel()} - {0, m.geometry.grid_shape[0] - 1})
    ramps = sorted({f + s * m.regions.ramp_width for f in faces for s in (-1, 1)})
    rng = np.random.default_rng(4)
    for qx in faces + ramps:
        q = np.column_stack([np.full(50, float(qx)), rng.uniform(0, 9, 50), rng.uniform(0, 7, 50)])
        eps = 1e-7
        below, above = m.geometry.to_physical(q - [eps, 0, 0]), m.geometry.to_physical(q + [eps, 0, 0])
        (d0, g0), (d1, g1) = evaluate_map(m, below), evaluate_map(m, above)
        scale = max(1.0, np.abs(g0).max())
        assert np.abs(d1 - d0).max() < 1e-5 * scale, qx
        assert np.abs(g1 - g0).max() < 1e-4 * scale, qx


def test_outside_is_nan_and_the_boundary_is_inside(tiled_map) -> None:
    m = tiled_map
    top = np.asarray(m.geometry.grid_shape) - 1.0
    q = np.array([[0, 0, 0], top, [-1e-9, 1, 1], top + 5e-7, [-2e-6, 1, 1], [1, top[1] + 1e-5, 1], [np.nan, 1, 1]])
    d, g = evaluate_map(m, m.geometry.to_physical(q))
    assert np.all(np.isfinite(d[:4])) and np.all(np.isfinite(g[:4]))
    assert d[3] == evaluate_map(m, m.geometry.to_physical(top[None]))[0][0]  # clamped onto the box
    assert np.all(np.isnan(d[4:])) and np.all(np.isnan(g[4:]))


def test_anisotropic_voxels_scale_the_gradient_per_axis(tmp_path) -> None:
    """Same network, voxel size doubled along y: ∂D/∂y halves, the others stay."""
    base = random_content(grid_shape=(20, 12, 10), voxel_size=(1.0, 1.0, 1.0), seed=5)
    stretched = random_content(grid_shape=(20, 12, 10), voxel_size=(1.0, 2.0, 1.0), seed=5)
    nemap.write(tmp_path / "a.nemap", base)
    nemap.write(tmp_path / "b.nemap", stretched)
    q = np.array([[3.3, 4.4, 5.5], [10.1, 2.2, 1.1]])
    with nemap.open(tmp_path / "a.nemap") as a, nemap.open(tmp_path / "b.nemap") as b:
        da, ga = evaluate_map(a, a.geometry.to_physical(q))
        db, gb = evaluate_map(b, b.geometry.to_physical(q))
    np.testing.assert_allclose(da, db)
    np.testing.assert_allclose(gb, ga / [1.0, 2.0, 1.0])


def test_engine_agrees_with_the_reference_on_every_tiling(tiled_map) -> None:
    """The float32 engine vs the float64 spec evaluation, including seams and constant regions."""
    m = tiled_map
    lo, hi = m.geometry.extent
    rng = np.random.default_rng(6)
    p = lo + (hi - lo) * rng.uniform(-0.03, 1.03, (4000, 3))
    d, g = m.evaluate(p)
    dr, gr = evaluate_map(m, p)
    assert np.array_equal(np.isnan(d), np.isnan(dr))
    assert np.nanmax(np.abs(d - dr)) <= 1e-4 * (np.nanmax(dr) - np.nanmin(dr))
    assert np.nanmax(np.abs(g - gr)) <= 1e-3 * np.nanmax(np.abs(gr))


def test_a_float64_engine_matches_the_reference_far_more_closely(tiled_map) -> None:
    """``engine(dtype=torch.float64)`` (numerical checks) is a separate engine, exact to ~1e-12."""
    import torch

    m = tiled_map
    lo, hi = m.geometry.extent
    p = lo + (hi - lo) * np.random.default_rng(7).uniform(0, 1, (500, 3))
    e64 = m.engine("cpu", dtype=torch.float64)
    assert e64 is m.engine("cpu", dtype=torch.float64) and e64 is not m.engine("cpu")
    d, g = e64.evaluate(p)
    dr, gr = evaluate_map(m, p)
    d32, _ = m.evaluate(p)
    err64, err32 = np.max(np.abs(d - dr)), np.max(np.abs(d32 - dr))
    assert err64 <= 1e-9 * (np.max(dr) - np.min(dr)) and err64 < err32 / 100
    np.testing.assert_allclose(g, gr, rtol=0, atol=1e-9 * np.max(np.abs(gr)))
