"""The spline method (the default preset): B-spline regions in NEMAP_feature_grid, nothing trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import nemap
from fixtures.synthetic_maps import chain_map
from nemap.engine.query import Engine
from nemap.errors import ArgumentError
from nemap.fit.fit_map import fit_map
from nemap.fit.options import PRESETS, options_for
from nemap.format import limits
from nemap.format.geometry import Geometry, Grid


@pytest.fixture(scope="module")
def chain() -> Grid:
    grid, _ = chain_map((70, 24, 20), voxel_size=1.1, origin=(5.0, -3.0, 7.5), resolution=3.0, seed=5)
    return grid


def _points(grid: Grid, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    q = 0.05 + np.random.default_rng(seed).uniform(0, 1, (count, 3)) * (np.asarray(grid.geometry.grid_shape) - 1.1)
    return q, np.asarray(grid.geometry.origin) + q * np.asarray(grid.geometry.voxel_size)


def test_spline_is_the_default_preset_and_says_what_it_does() -> None:
    assert list(PRESETS)[0] == "spline" and PRESETS["spline"].method == "spline"
    assert PRESETS["spline"].spline_order == 5


@pytest.mark.parametrize("order", [3, 5])
def test_spline_regions_equal_scipys_interpolant_across_region_seams(chain: Grid, order: int) -> None:
    content = fit_map(chain, options_for("spline", spline_order=order, flat_tolerance=0.0, lossless=True))
    assert content.regions.bounds[:, :, 0].tolist() == [[0, 36], [33, 69]]  # balanced: 70 voxels, two of 37
    q, p = _points(chain, 3000, order)
    d, g = Engine.from_content(content).evaluate(p)
    y = content.normalization.encode(chain.values)
    coefficients = ndimage.spline_filter(y, order, mode="mirror")
    expected = content.normalization.decode(ndimage.map_coordinates(coefficients, q.T, order=order, mode="mirror",
                                                                    prefilter=False))
    span = float(chain.values.max() - chain.values.min())
    assert np.abs(d - expected).max() < 2e-6 * span
    h = 1e-2  # Å: the engine's gradient is the derivative of its density (float32: no smaller step)
    fd = np.stack([(Engine.from_content(content).evaluate(p + h * e, gradient=False)[0]
                    - Engine.from_content(content).evaluate(p - h * e,
                                                            gradient=False)[0]) / (2 * h) for e in np.eye(3)], 1)
    assert np.abs(g - fd).max() < 1e-2 * np.abs(g).max()


def test_spline_map_is_exact_at_voxel_centres(chain: Grid) -> None:
    content = fit_map(chain, options_for("spline", lossless=True))
    fidelity = content.provenance["fidelity"]["overall"]
    assert fidelity["max_abs_error_fraction_of_range"] < 1e-5
    assert content.provenance["training"]["method"] == "spline"


def test_flat_regions_are_constants_and_spline_regions_have_windows() -> None:
    values = np.zeros((80, 20, 20), np.float32)
    values[2:10, 5:15, 5:15] = np.random.default_rng(0).uniform(0, 1, (8, 10, 10))
    content = fit_map(Grid(values, Geometry(values.shape, (1.0,) * 3)), options_for("spline", lossless=True))
    assert content.regions.count == 2 and content.regions.network_count == 1
    assert content.feature_grid.shape == (1, 1, 41 + 6, 19 + 6, 19 + 6)  # balanced: 2 × 42 along x; extent + p + 1


def test_a_grid_one_voxel_thick_converts() -> None:
    values = np.random.default_rng(1).uniform(0, 1, (12, 9, 1)).astype(np.float32)
    grid = Grid(values, Geometry(values.shape, (1.0,) * 3))
    content = fit_map(grid, options_for("spline", lossless=True))
    d, _ = Engine.from_content(content).evaluate(np.array([[3.0, 4.0, 0.0], [3.5, 4.25, 0.0]]))
    assert d[0] == pytest.approx(values[3, 4, 0], abs=1e-5) and np.isfinite(d[1])


def test_spline_file_is_format_0_2_and_paper_files_stay_0_1(chain: Grid, tmp_path: Path) -> None:
    spline = fit_map(chain, options_for("spline", lossless=True))
    nemap.write(tmp_path / "s.nemap", spline)
    with nemap.open(tmp_path / "s.nemap", verify=True) as m:
        assert m.version == "0.2" and m.header["extensions_required"] == ["NEMAP_feature_grid"]
        assert m.header["extensions"]["NEMAP_feature_grid"] == {"order": 5, "channels": 1,
                                                               "node_shape": [36 + 6, 23 + 6, 19 + 6]}
        assert m.feature_grid_order == 5
    small = Grid(chain.values[:12, :10, :8], Geometry((12, 10, 8), (1.0,) * 3))
    paper = fit_map(small, options_for("siren-tiny", max_steps=2, device="cpu"))
    header = nemap.write(tmp_path / "p.nemap", paper)
    assert header["nemap_version"] == limits.BASE_VERSION_STRING == "0.1" and "extensions" not in header


def test_spline_order_is_checked() -> None:
    with pytest.raises(ArgumentError, match="spline_order"):
        options_for("spline", spline_order=4)


def test_balanced_tiling_covers_every_axis_with_the_fewest_equal_regions() -> None:
    from nemap.format.tiling import balanced_axis_starts, coverage_gaps, tiling

    for n in range(1, 400):
        starts, size = balanced_axis_starts(n)
        assert size <= 64 and starts[0] == 0 and starts[-1] + size == n
        assert all(b - a <= size - 4 for a, b in zip(starts, starts[1:]))  # ≥ 4 shared voxel centres
        assert len(starts) == (1 if n <= 64 else -(-(n - 4) // 60))
    assert len(coverage_gaps(tiling((130, 70, 9), method="balanced"), (130, 70, 9))) == 0
