"""Fitting (nemap.fit): stop rules, batches, presets, flat and constant regions, statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nemap
from fixtures.synthetic_maps import chain_map
from nemap.engine import siren
from nemap.errors import NemapError
from nemap.fit.fit_map import fit_map
from nemap.fit.full_batch import fit_regions
from nemap.fit.options import options_for
from nemap.fit.stack import local_inputs
from nemap.format.content import siren_layers
from nemap.format.geometry import Geometry, Grid
from nemap.io.mrc import write_mrc
from nemap.tools.convert import mrc_to_nemap
from tests.conftest import quick


def test_stop_rules() -> None:
    u = local_inputs((6, 5, 4))
    got = {}

    def record(fit):
        got[fit.index] = fit

    flat = np.full((1, u.shape[0]), 0.3, dtype=np.float32)
    fit_regions(u, flat, [0], quick(width=8, sine_layers=1, max_steps=2000, learning_rate=1e-2), torch.device("cpu"),
                record)
    assert got[0].stats["stop_reason"] == "exit-loss" and got[0].stats["best_loss"] < 1e-5
    rough = np.random.default_rng(0).uniform(-1, 1, (1, u.shape[0])).astype(np.float32)
    fit_regions(u, rough, [1], quick(width=8, sine_layers=1, max_steps=7), torch.device("cpu"), record)
    assert got[1].stats["stop_reason"] == "step-cap" and got[1].stats["steps"] == 7
    fit_regions(u, rough, [2], quick(width=8, sine_layers=1, max_steps=500, plateau_loss=10.0, patience=3,
                                     learning_rate=0.5), torch.device("cpu"), record)
    assert got[2].stats["stop_reason"] == "natural-fit" and got[2].stats["steps"] < 500


def test_the_best_weights_are_kept_not_the_last() -> None:
    """With a learning rate far too high the loss rises again; the stored weights give the best loss."""
    layers = siren_layers(16, 2, 30.0)
    u = local_inputs((8, 8, 8))
    target = np.sin(3 * u[:, 0])[None].astype(np.float32)
    got = []
    fit_regions(u, target, [0], quick(width=16, sine_layers=2, max_steps=60, learning_rate=0.05, patience=10**6),
                torch.device("cpu"), got.append)
    fit = got[0]
    with torch.no_grad():
        y = siren.forward(torch.as_tensor(u, dtype=torch.float32), [torch.as_tensor(w)[None] for w in fit.weights],
                          [torch.as_tensor(b)[None] for b in fit.biases], layers)[0].numpy()
    mse = float(np.mean((y - target[0]) ** 2))
    assert mse == pytest.approx(fit.stats["best_loss"], rel=1e-4)


def test_batched_regions_fit_like_one_at_a_time() -> None:
    u = local_inputs((6, 6, 6))
    rng = np.random.default_rng(1)
    targets = np.tanh(rng.normal(size=(3, u.shape[0]))).astype(np.float32)
    opts = quick(width=16, sine_layers=2, max_steps=20)
    one, many = {}, {}
    for r in range(3):
        fit_regions(u, targets[r:r + 1], [r], opts, torch.device("cpu"), lambda f: one.__setitem__(f.index, f))
    fit_regions(u, targets, [0, 1, 2], opts, torch.device("cpu"), lambda f: many.__setitem__(f.index, f))
    for r in range(3):
        assert one[r].stats["steps"] == many[r].stats["steps"]
        for a, b in zip(one[r].weights + one[r].biases, many[r].weights + many[r].biases):
            np.testing.assert_allclose(a, b, atol=1e-4)


def test_constant_map_is_stored_as_constants(tmp_path) -> None:
    geo = Geometry((10, 9, 8), (1.0, 1.0, 1.0), (0, 0, 0))
    path = tmp_path / "flat.mrc"
    write_mrc(path, np.full(geo.grid_shape, 0.25, np.float32), geo)
    mrc_to_nemap(path, tmp_path / "flat.nemap", quick(), progress=False)
    with nemap.open(tmp_path / "flat.nemap", verify=True) as m:
        assert m.regions.network_count == 0
        np.testing.assert_array_equal(m.sample().values, 0.25)
        assert np.all(m.gradient([[3.0, 3.0, 3.0]]) == 0)


def test_axis_of_one_voxel_is_a_plane(tmp_path) -> None:
    grid, _ = chain_map((16, 14, 14), resolution=2.0, seed=2)
    plane = Grid(np.ascontiguousarray(grid.values[:, :, 7:8]), Geometry((16, 14, 1), (1, 1, 1), (0, 0, 0)))
    content = fit_map(plane, quick(max_steps=200))
    nemap.write(tmp_path / "p.nemap", content)
    with nemap.open(tmp_path / "p.nemap") as m:
        d = m.sample().values
        assert d.shape == (16, 14, 1) and np.corrcoef(d.ravel(), plane.values.ravel())[0, 1] > 0.98
        assert np.isnan(m.density([[3.0, 3.0, 0.5]]))[0]  # off the plane is outside the map
        assert m.gradient([[3.0, 3.0, 0.0]])[0, 2] == 0.0


def test_nonfinite_voxels_are_refused(tmp_path) -> None:
    geo = Geometry((8, 8, 8), (1, 1, 1), (0, 0, 0))
    v = np.ones(geo.grid_shape, np.float32)
    v[1, 2, 3] = np.nan
    v[4, 4, 4] = np.inf
    path = tmp_path / "nan.mrc"
    write_mrc(path, v, geo)
    with pytest.raises(NemapError, match="2 voxel\\(s\\) are NaN or infinite") as err:
        mrc_to_nemap(path, tmp_path / "nan.nemap", quick(), progress=False)
    assert str(path) in str(err.value)


def test_paper_preset_is_the_published_recipe() -> None:
    o = options_for("paper")
    layers = o.layers()
    assert sum(layer.out_features * (layer.in_features + 1) for layer in layers) == 264_449
    assert [layer.activation for layer in layers] == ["sine"] * 5 + ["identity"]
    assert all(layer.omega == 30.0 for layer in layers[:5])
    assert (o.learning_rate, o.exit_loss, o.plateau_loss, o.patience, o.max_region_size, o.min_overlap) == \
        (1e-4, 1e-5, 4e-4, 25, 64, 4)
    assert o.clamp_negative and o.max_steps > 0


@pytest.mark.parametrize("method", ["paper", "sampled"])
def test_flat_regions_become_constants(tmp_path, method: str) -> None:
    """A map with density in one corner: the fast preset stores the empty regions as constants (with
    either fitting method)."""
    grid, _ = chain_map((12, 14, 12), resolution=2.0, seed=4, atoms=20)
    values = np.zeros((30, 14, 12), np.float32)
    values[:12] = grid.values  # solvent beyond x = 12
    flat_map = Grid(values, Geometry((30, 14, 12), grid.geometry.voxel_size, grid.geometry.origin))
    content = fit_map(flat_map, options_for("paper-skip-flat", device="cpu", max_region_size=12, width=32,
                                            sine_layers=2,
                                           max_steps=60, eval_every=20, points_per_step=1024, method=method))
    assert content.provenance["training"]["options"]["flat_tolerance"] == 2e-3
    stops = [r["stop_reason"] for r in content.provenance["training"]["regions"]]
    assert "flat" in stops and content.regions.network_count < content.regions.count
    for r, reason in enumerate(stops):
        assert (content.regions.network_index[r] < 0) == (reason == "flat")
    assert all(r.get("steps", 0) <= 60 for r in content.provenance["training"]["regions"])
    nemap.write(tmp_path / "f.nemap", content)
    with nemap.open(tmp_path / "f.nemap", verify=True) as m:
        d = m.sample().values
        assert np.all(d[20:] == pytest.approx(0.0, abs=1e-6))  # deep in the solvent: exactly the constant


def test_streamed_statistics_match_whole_grid_numpy() -> None:
    """Normalization and the fidelity report are computed slab by slab (bounded memory); they must
    equal the whole-grid float64 figures, including for a large offset and for constant grids."""
    from nemap.fit.fidelity import agreement as _agreement
    from nemap.fit.fidelity import fidelity
    from nemap.fit.normalization import normalization_for, slabs

    rng = np.random.default_rng(5)
    values = (rng.normal(size=(23, 17, 11)) + 0.3).astype(np.float32)
    norm, constant = normalization_for(values, clamp_negative=True)
    c = np.maximum(values, 0).astype(np.float64)
    d1 = (c - c.min()) / (c.max() - c.min())
    assert not constant
    assert norm.value_min == pytest.approx(c.min()) and norm.value_max == pytest.approx(c.max())
    assert norm.normalized_mean == pytest.approx(d1.mean(), rel=1e-12)
    assert norm.normalized_std == pytest.approx(d1.std(), rel=1e-12)
    assert norm.source_stats["std"] == pytest.approx(values.astype(np.float64).std(), rel=1e-12)

    shifted = values + 1000.0
    decoded = shifted + rng.normal(scale=0.01, size=values.shape).astype(np.float32)
    got = _agreement((shifted[s], decoded[s]) for s in slabs(values.shape, voxels=200))
    a, b = shifted.astype(np.float64).ravel(), decoded.astype(np.float64).ravel()
    assert got["correlation"] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-9)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((b - a) ** 2)), rel=1e-9)
    assert got["max_abs_error"] == pytest.approx(np.max(np.abs(b - a)))

    flat = np.full((4, 4, 4), 3.0, np.float32)
    assert _agreement([(flat, flat)])["correlation"] == 1.0
    assert _agreement([(flat, flat + 0.5)])["correlation"] == 0.0
    grid = Grid(shifted, Geometry(shifted.shape, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)))
    report = fidelity(grid, decoded, np.array([[[0, 0, 0], [9, 16, 10]], [[8, 0, 0], [22, 16, 10]]]))
    assert report["overall"]["max_abs_error_fraction_of_range"] == pytest.approx(
        got["max_abs_error"] / float(shifted.max() - shifted.min()))
    first = decoded[:10] - shifted[:10]
    assert report["regions"][0]["rmse"] == pytest.approx(np.sqrt(np.mean(first.astype(np.float64) ** 2)), rel=1e-9)


def test_fast_preset_is_the_paper_recipe_plus_flat_regions() -> None:
    """The fast preset differs from the paper's only in storing flat regions as constants: on a map
    without flat regions both give the same networks."""
    import dataclasses

    assert dataclasses.replace(options_for("paper-skip-flat"), preset="paper",
                               flat_tolerance=0.0) == options_for("paper")
    grid, _ = chain_map((14, 12, 12), resolution=2.0, seed=5, atoms=40, margin=0.0)
    small = dict(device="cpu", max_region_size=8, width=16, sine_layers=2, max_steps=5)
    fast, paper = fit_map(grid, options_for("paper-skip-flat", **small)), fit_map(grid, options_for("paper", **small))
    assert fast.regions.network_count == paper.regions.network_count == paper.regions.count
    for a, b in zip(fast.weights + fast.biases, paper.weights + paper.biases):
        np.testing.assert_array_equal(a, b)


def test_renamed_presets_still_work_with_a_deprecation_warning() -> None:
    from nemap.errors import NemapWarning
    from nemap.fit.options import RENAMED_PRESETS

    for old, new in RENAMED_PRESETS.items():
        with pytest.warns(NemapWarning, match=f"now called '{new}'"):
            assert options_for(old) == options_for(new)
