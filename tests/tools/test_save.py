"""nemap.write of a Grid: stored as `nemap convert` stores an MRC (quantized within its bound, or lossless)."""

from __future__ import annotations

import numpy as np
import pytest

import nemap
from fixtures.synthetic_maps import chain_map
from nemap.errors import ArgumentError


@pytest.fixture(scope="module")
def noisy_grid() -> nemap.Grid:
    grid, _ = chain_map((24, 20, 18), resolution=3.0, seed=5)
    rng = np.random.default_rng(5)
    values = grid.values + 0.02 * float(grid.values.max()) * rng.standard_normal(grid.values.shape)
    return nemap.Grid(values.astype(np.float32), grid.geometry)


def _voxels(path) -> np.ndarray:
    with nemap.open(path) as m:
        return m.sample().values


def test_a_grid_is_stored_within_its_bound_and_reads_back(noisy_grid, tmp_path) -> None:
    header = nemap.write(tmp_path / "a.nemap", noisy_grid, resolution=3.0)
    assert header["extensions_used"] == ["NEMAP_quantized"]
    with nemap.open(tmp_path / "a.nemap") as m:
        bound, resolution = m.error_bound, m.resolution
    assert resolution == 3.0
    error = np.abs(_voxels(tmp_path / "a.nemap") - noisy_grid.values)
    assert 0 < error.max() <= bound * (1 + 1e-5)


def test_tolerance_trades_error_for_size_and_lossless_is_exact(noisy_grid, tmp_path) -> None:
    nemap.write(tmp_path / "invisible.nemap", noisy_grid)
    nemap.write(tmp_path / "loose.nemap", noisy_grid, tolerance=1.0)
    nemap.write(tmp_path / "exact.nemap", noisy_grid, lossless=True)
    sizes = {n: (tmp_path / f"{n}.nemap").stat().st_size for n in ("invisible", "loose", "exact")}
    assert sizes["loose"] < sizes["invisible"] < sizes["exact"]
    with nemap.open(tmp_path / "exact.nemap") as m:
        assert m.representation.name == "spline"
    np.testing.assert_allclose(_voxels(tmp_path / "exact.nemap"), noisy_grid.values, atol=1e-5)


def test_refusals(noisy_grid, tmp_path) -> None:
    nemap.write(tmp_path / "a.nemap", noisy_grid)
    with pytest.raises(nemap.NemapError, match="exists"):
        nemap.write(tmp_path / "a.nemap", noisy_grid)
    with nemap.open(tmp_path / "a.nemap") as m:
        content = m.content()
    with pytest.raises(ArgumentError, match="'tolerance' applies when a Grid is written") as info:
        nemap.write(tmp_path / "b.nemap", content, tolerance=0.5)
    assert info.value.parameter == "tolerance"
    nemap.write(tmp_path / "b.nemap", content)  # written as it is
    assert (tmp_path / "b.nemap").stat().st_size == pytest.approx((tmp_path / "a.nemap").stat().st_size, rel=0.05)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ArgumentError, match="tolerance"):
            nemap.write(tmp_path / "c.nemap", noisy_grid, tolerance=bad)
    with pytest.raises(ArgumentError, match="resolution"):
        nemap.write(tmp_path / "c.nemap", noisy_grid, resolution=-3.0)
    with pytest.raises(ArgumentError, match="takes a NeuralMapContent or a Grid"):
        nemap.write(tmp_path / "c.nemap", noisy_grid.values)
    assert not (tmp_path / "c.nemap").exists()
