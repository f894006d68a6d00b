"""The checks every region representation runs (ARCHITECTURE.md): written, opened and valid; described truthfully;
the engine equal to the float64 reference; gradients the derivative of densities; grids equal to points; NaN
outside; read back and written again unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nemap
from fixtures.random_nemap import random_content, random_feature_grid_content
from fixtures.synthetic_maps import chain_map
from nemap.fit.fit_map import fit_map
from nemap.fit.options import options_for
from nemap.format.kinds import KINDS
from nemap.format.reference import evaluate_map
from nemap.tools.info import describe


def _grid():
    return chain_map((22, 18, 16), resolution=3.0, margin=0.0, atoms=300, seed=7)[0]


MAKE = {  # kind → content of that kind on a small map
    "siren": lambda: random_content((20, 14, 12), (1.1, 1.0, 0.9), (3.0, -2.0, 1.0), constant_regions=(1,), seed=11),
    "spline": lambda: random_feature_grid_content((20, 14, 12), (1.1, 1.0, 0.9), (3.0, -2.0, 1.0), order=5,
                                                  channels=2, constant_regions=(1,), seed=12),
    "spline-converted": lambda: fit_map(_grid(), options_for("spline", lossless=True)),
    "quantized": lambda: fit_map(_grid(), options_for("spline"), resolution=3.0),
    "quantized-base": lambda: fit_map(_grid(), options_for("spline", tolerance=1.5), resolution=6.0),
}


def test_every_kind_is_made_here() -> None:
    assert {name.split("-")[0] for name in MAKE} == set(KINDS)


@pytest.fixture(scope="module", params=sorted(MAKE))
def written(request, tmp_path_factory) -> tuple[str, Path]:
    path = tmp_path_factory.mktemp("kinds") / f"{request.param}.nemap"
    nemap.write(path, MAKE[request.param]())
    return request.param.split("-")[0], path


def _points(m, n: int = 600, seed: int = 0) -> np.ndarray:
    lo, hi = (np.asarray(v) for v in m.geometry.extent)
    return lo + (hi - lo) * np.random.default_rng(seed).uniform(0, 1, (n, 3))


def test_written_files_are_valid_and_say_what_they_are(written) -> None:
    kind, path = written
    assert nemap.validate(path).valid
    with nemap.open(path) as m:
        assert m.representation.name == kind and repr(m.representation) == f"<region kind {kind!r}>"
        counts = m.region_kinds()
        assert sum(counts.values()) == m.regions.count and kind in counts
    info = describe(path)
    assert info["representation"]["kind"] == kind and info["representation"]["regions"] == counts


def test_engine_equals_the_float64_reference(written) -> None:
    _, path = written
    with nemap.open(path) as m:
        p = _points(m)
        d, g = m.evaluate(p)
        dr, gr = evaluate_map(m, p)
        span = m.normalization.value_max - m.normalization.value_min
    assert np.abs(d - dr).max() <= 1e-5 * span
    assert np.abs(g - gr).max() <= 1e-4 * max(np.abs(gr).max(), 1e-12)


def test_gradient_is_the_derivative_of_the_density(written) -> None:
    _, path = written
    with nemap.open(path) as m:
        p = _points(m, 40, seed=1)
        p = np.clip(p, np.asarray(m.geometry.extent[0]) + 0.01, np.asarray(m.geometry.extent[1]) - 0.01)
        _, g = m.evaluate(p)
        h = 2e-3  # float32 SIREN densities: a step large enough for their rounding, small enough for O(h²)
        for a in range(3):
            step = np.zeros(3)
            step[a] = h
            numeric = (m.density(p + step) - m.density(p - step)) / (2 * h)
            assert np.abs(numeric - g[:, a]).max() <= 2e-3 * max(np.abs(g).max(), 1e-9)


def test_grid_sampling_equals_point_queries_and_outside_is_nan(written) -> None:
    _, path = written
    with nemap.open(path) as m:
        grid = m.sample(voxel_size=[v * 0.7 for v in m.geometry.voxel_size])
        idx = np.stack(np.meshgrid(*[np.arange(n) for n in grid.values.shape], indexing="ij"), -1).reshape(-1, 3)
        pick = idx[:: max(1, len(idx) // 500)]
        d = m.density(grid.geometry.to_physical(pick))
        span = m.normalization.value_max - m.normalization.value_min
        assert np.abs(grid.values[tuple(pick.T)] - d).max() <= 1e-5 * span
        far = np.asarray(m.geometry.extent[1]) + 5.0
        assert np.isnan(m.density([far])).all() and np.isnan(m.gradient([far])).all()


def test_read_back_and_written_again_unchanged(written, tmp_path) -> None:
    _, path = written
    with nemap.open(path) as m:
        nemap.write(tmp_path / "again.nemap", m.content())
        before = m.header["integrity"]["arrays"]
    with nemap.open(tmp_path / "again.nemap") as again:
        assert again.header["integrity"]["arrays"] == before
