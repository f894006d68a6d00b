"""The learned resolution estimators: weight files, the estimate on maps of any voxel size, bad input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures.half_maps import zoned_half_maps
from fixtures.synthetic_maps import chain_map
from nemap.errors import FormatError, NemapError
from nemap.format.geometry import Geometry, Grid
from nemap.resolution import models
from nemap.resolution.estimate import CLASSES, estimate, interval
from nemap.resolution.reading import fourier_resample

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(models.ARCHITECTURES))
def test_architectures_give_their_outputs_and_weights_round_trip(name: str, tmp_path, monkeypatch) -> None:
    net = models.ARCHITECTURES[name]().eval()
    x = torch.randn(2, 1, models.CUBE, models.CUBE, models.CUBE)
    out = net(x)
    if models.KINDS[name] == "local":
        assert [t.shape for t in out] == [(2,) + (models.CUBE,) * 3] * 2 + [(2,)]
    elif models.KINDS[name] == "class":
        assert out.shape == (2, 3)
    else:
        assert out.shape == (2, len(models.LOCAL_BINS) - 1) + (models.CUBE,) * 3
    monkeypatch.setattr(models, "WEIGHTS", tmp_path)
    models.save(net, name, {}, {"test": {}}, tmp_path / f"{name}.h5")
    loaded, recipe = models.load(name)
    assert recipe == {"test": {}}
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    import h5py

    with h5py.File(tmp_path / f"{name}.h5", "r+") as f:  # one parameter changed: the digest no longer matches
        key = sorted(net.state_dict())[0]
        f[key][...] = f[key][()] + 1
    with pytest.raises(FormatError, match="SHA-256"):
        models.load(name)


def test_shipped_weights_are_small_and_recorded() -> None:
    assert "local" in models.available()
    total = sum(p.stat().st_size for p in models.WEIGHTS.glob("*.h5"))
    assert total <= 10 * 2**20
    for name in models.available():
        _, recipe = models.load(name)
        assert recipe["seed"] == 0 and recipe["data"]["train"]["seed"] == 0 and "test" in recipe
        assert models.recipe_of(name) == recipe  # read without the weights


def test_the_reported_local_map_is_the_smoothed_local_head_halfway_to_the_global_head() -> None:
    from scipy import ndimage

    rng = np.random.default_rng(3)
    head = rng.standard_normal((2, 20, 24, 28)).astype(np.float32)
    glob = np.array([1.0, 2.5], np.float32)
    out = models.local_map(head, glob)
    smoothed = np.stack([ndimage.gaussian_filter(h, models.LOCAL_SMOOTH, mode="nearest") for h in head])
    expected = (1 - models.LOCAL_TO_GLOBAL) * smoothed + models.LOCAL_TO_GLOBAL * glob[:, None, None, None]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    flat = models.local_map(np.full((1, 32, 32, 32), 2.0), np.array([2.0]))
    np.testing.assert_allclose(flat, 2.0, atol=1e-6)  # a patch read as one resolution keeps it
    assert out.std() < 0.5 * head.std()  # voxel-to-voxel variation is damped


def test_unknown_model_is_refused_by_name() -> None:
    grid, _ = chain_map((32, 32, 32), resolution=4.0)
    with pytest.raises(FormatError, match="no resolution model 'nope'") as err:
        estimate(grid, model="nope")
    assert err.value.code == "NO_MODEL"
    with pytest.raises(FormatError, match="no resolution model 'nope'"):
        models.recipe_of("nope")


def test_a_map_too_large_for_memory_is_refused_from_its_header(tmp_path, monkeypatch) -> None:
    """The learned estimate's memory is checked before the map is read: a truncated data block is not reached. A
    map read at the fine model's 0.5 Å voxels needs 8× the voxels of one read at 1 Å."""
    import nemap.fit.memory
    from nemap.io.mrc import write_mrc
    from nemap.tools.resolution import ESTIMATE_BASE_BYTES, check_estimate_memory, estimate_file

    path = tmp_path / "big.mrc"
    write_mrc(path, np.zeros((64, 64, 64), np.float32), Geometry((64, 64, 64), (2.0, 2.0, 2.0)))
    with open(path, "r+b") as f:
        f.truncate(1024 + 4 * 64 ** 3 // 2)
    enough = ESTIMATE_BASE_BYTES + 128 ** 3 * 46  # 64³ at 2 Å is 128³ at 1 Å and 256³ at 0.5 Å
    monkeypatch.setattr(nemap.fit.memory, "available_memory_bytes", lambda: enough)
    check_estimate_memory(path, "local")
    with pytest.raises(NemapError, match=r"64×64×64 map read at 0.5 Å voxels needs about 1.1 GiB") as err:
        check_estimate_memory(path, "fine")
    assert err.value.code == "OUT_OF_MEMORY" and str(path) in str(err.value)
    with pytest.raises(NemapError) as err:
        estimate_file(path)  # the header passes: the data block is then found short
    assert err.value.code != "OUT_OF_MEMORY"
    monkeypatch.setattr(nemap.fit.memory, "available_memory_bytes", lambda: 2**20)
    with pytest.raises(NemapError, match="GiB to estimate its resolution, but only 0.0 GiB") as err:
        estimate_file(path)
    assert err.value.code == "OUT_OF_MEMORY"


def test_constant_and_nan_maps_are_refused() -> None:
    g = Geometry((32, 32, 32), (1.0, 1.0, 1.0))
    with pytest.raises(NemapError, match="constant") as err:
        estimate(Grid(np.full((32, 32, 32), 2.0, np.float32), g))
    assert err.value.code == "CONSTANT_MAP"
    values = np.random.default_rng(0).standard_normal((32, 32, 32)).astype(np.float32)
    values[1, 2, 3] = np.nan
    with pytest.raises(NemapError, match="NaN") as err:
        estimate(Grid(values, g))
    assert err.value.code == "NONFINITE_VOXELS"


@pytest.mark.parametrize("voxel", [0.5, 1.0, 4.0])
def test_any_voxel_size_is_resampled_and_the_result_is_on_the_map_grid(voxel: float) -> None:
    n = {0.5: 60, 1.0: 36, 4.0: 10}[voxel]
    grid, _ = chain_map((n, n, n), voxel_size=voxel, resolution=max(6.0, 3 * voxel), margin=0.0,
                        atoms=int((n * voxel) ** 3 / 30))
    e = estimate(grid)
    assert e.local.geometry == grid.geometry and e.mask.geometry == grid.geometry
    assert e.global_class in CLASSES and 1.0 < e.global_resolution < 40.0
    assert any("resampled" in note for note in e.notes) == (voxel != 1.0)
    assert any("padded" in note for note in e.notes) == (n * voxel < models.CUBE)


def test_fourier_resampling_keeps_a_band_limited_map_on_the_same_box() -> None:
    centres = lambda n: (np.arange(n) + 0.5) / n  # noqa: E731  (fractions of the box, x, y, z)
    wave = lambda nx, ny: (np.cos(2 * np.pi * 3 * centres(nx))[:, None, None]  # noqa: E731
                           * np.sin(2 * np.pi * 2 * centres(ny))[None, :, None] * np.ones((1, 1, 5)))
    up = fourier_resample(wave(20, 16), (30, 24, 5))  # finer voxels: nothing blurred, centres in the same box
    np.testing.assert_allclose(up, wave(30, 24), atol=1e-6)
    np.testing.assert_allclose(fourier_resample(up, (20, 16, 5)), wave(20, 16), atol=1e-6)


def test_masked_solvent_is_outside_the_mask_and_patches_of_it_are_skipped() -> None:
    grid, _ = chain_map((80, 40, 40), resolution=4.0, margin=0.0, atoms=3000, seed=2)
    values = grid.values.copy()
    values[36:] = 0.0  # solvent masked to zero: more than a patch of it along x
    e = estimate(Grid(values, grid.geometry))
    assert e.mask.values[37:].max() == 0 and e.mask.values[:30].mean() > 0.05
    assert np.all(e.local.values[70:] == np.float32(e.global_resolution))  # no patch reached it
    assert np.isfinite(e.local.values).all()


def test_the_sharper_zone_is_estimated_sharper() -> None:
    h1, h2, zone = zoned_half_maps((64, 40, 40), noise=0.3, seed=5)
    e = estimate(Grid(((h1.values + h2.values) / 2).astype(np.float32), h1.geometry))
    assert np.median(e.local.values[zone == 0]) < np.median(e.local.values[zone == 1])


def test_command_line(tmp_path) -> None:
    grid, _ = chain_map((40, 36, 32), resolution=5.0, margin=0.0, atoms=2000)
    from nemap.io.mrc import write_mrc

    write_mrc(tmp_path / "m.mrc", grid.values, grid.geometry)
    run = lambda *a: subprocess.run([sys.executable, "-m", "nemap", "-q", *map(str, a)], capture_output=True,  # noqa: E731
                                    text=True, cwd=REPO)
    import json

    r = run("resolution", tmp_path / "m.mrc", "--json", "-o", tmp_path / "local.mrc", "--mask-out",
            tmp_path / "mask.mrc")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"global_class", "global_resolution", "model"} <= set(out) and out["model"] == "local"
    assert (tmp_path / "local.mrc").is_file() and (tmp_path / "mask.mrc").is_file()
    assert out["notes"] and not any(note in r.stderr for note in out["notes"])  # -q: no notes on stderr
    told = subprocess.run([sys.executable, "-m", "nemap", "resolution", str(tmp_path / "m.mrc")], capture_output=True,
                          text=True, cwd=REPO)
    assert all(note in told.stderr for note in out["notes"]), told.stderr
    bad = run("resolution", tmp_path / "m.mrc", "--model", "nope")
    assert bad.returncode == 1 and "no resolution model 'nope'" in bad.stderr and "Traceback" not in bad.stderr
    write_mrc(tmp_path / "image.mrc", np.ones((32, 32, 1), np.float32) + np.arange(32)[:, None, None],
              Geometry((32, 32, 1), (1.0, 1.0, 1.0)))
    flat = run("resolution", tmp_path / "image.mrc")
    assert flat.returncode == 1 and "Traceback" not in flat.stderr and len(flat.stderr.strip().splitlines()) == 1
    assert "image.mrc" in flat.stderr and "2-D image" in flat.stderr
    listed = run("resolution", "--list-models")
    assert listed.returncode == 0 and listed.stdout.startswith(("cnn3d", "dnn", "local"))
    assert all('"voxel_size": ' in line for line in listed.stdout.splitlines())


def test_store_in_a_nemap_file_and_the_graph_uses_it(tmp_path) -> None:
    import nemap
    from nemap.fit.fit_map import fit_map
    from nemap.fit.options import options_for
    from nemap.tools.resolution import estimate_file, store_estimate

    grid, _ = chain_map((40, 36, 32), resolution=4.0, margin=0.0, atoms=2000, seed=2)
    nemap.write(tmp_path / "m.nemap", fit_map(grid, options_for("spline")))
    with nemap.open(tmp_path / "m.nemap") as m:
        before = m.evaluate(np.asarray(m.geometry.origin) + [[5.0, 6.0, 7.0]])[0]
    result = estimate_file(tmp_path / "m.nemap")
    store_estimate(tmp_path / "m.nemap", result)
    with nemap.open(tmp_path / "m.nemap", verify=True) as m:
        assert m.evidence.local_resolution["method"] == "learned:local"
        assert m.evaluate(np.asarray(m.geometry.origin) + [[5.0, 6.0, 7.0]])[0] == pytest.approx(before)
        coarse = m.evidence.local_resolution_grid
        known = np.argwhere(coarse > 0)
        assert len(known) > 0
        a = np.asarray(m.evidence.local_resolution["index_to_physical"])
        np.testing.assert_allclose(m.local_resolution(known * np.diag(a[:, :3]) + a[:, 3]),
                                   coarse[tuple(known.T)], rtol=1e-6)
        g = m.graph(4.0, sigma=1.0)
        assert "local resolution" in g.stats["edge_rule"]


@pytest.mark.parametrize("shape, what", [((32, 32, 1), "a 2-D image"), ((4, 4, 4), "too small")])
def test_a_2d_image_and_a_tiny_map_are_refused_in_one_line(shape, what) -> None:
    values = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with pytest.raises(NemapError, match=what) as err:
        estimate(Grid(values, Geometry(shape, (1.0, 1.0, 1.0))), name="x.mrc")
    assert err.value.code == "GRID_TOO_SMALL" and "\n" not in str(err.value) and "x.mrc" in str(err.value)


def test_a_map_without_solvent_is_estimated_with_a_warning_and_an_unmasked_one_has_its_noise_subtracted() -> None:
    from nemap.errors import NemapWarning

    tight, _ = chain_map((40, 36, 32), resolution=5.0, margin=0.0, atoms=6000)  # protein-like density everywhere
    with pytest.warns(NemapWarning, match="noise could not be measured"):
        e = estimate(tight, name="tight.mrc")
    assert e.global_class in CLASSES and any("no solvent" in n for n in e.notes)
    assert e.signal_to_noise is None and e.summary()["band_signal_to_noise"] is None  # nothing measured
    grid, _ = chain_map((48, 48, 48), resolution=6.0, atoms=200, margin=12.0, seed=4)
    noise = float(grid.values.max()) * np.random.default_rng(1).standard_normal(grid.values.shape)
    e = estimate(Grid((grid.values + 0.03 * noise).astype(np.float32), grid.geometry))
    assert any("noise measured in the solvent" in n for n in e.notes)
    grid, _ = chain_map((48, 48, 48), resolution=6.0, atoms=600, margin=8.0, seed=4)  # patches of most molecule
    ratios = [estimate(Grid((grid.values + a * noise).astype(np.float32), grid.geometry)).summary()[
        "band_signal_to_noise"] for a in (0.03, 0.1, 0.3)]
    assert ratios[0] > 5 * ratios[1] > 25 * ratios[2] > 0  # 11× the noise power each: about 11× lower


def test_the_estimate_comes_with_its_calibrated_interval() -> None:
    grid, _ = chain_map((40, 36, 32), resolution=5.0, margin=0.0, atoms=2000, seed=3)
    _, recipe = models.load("local")
    e = estimate(grid)
    lo, hi = e.interval
    assert lo < e.global_resolution < hi
    cal = recipe["interval"]
    assert cal["coverage"] == 0.9 and cal["log_ratio_low"] < 0 < cal["log_ratio_high"]
    assert e.summary()["global_resolution_interval"] == [lo, hi]
    assert hi == pytest.approx(e.global_resolution / np.exp(cal["log_ratio_low"]))


def test_the_noise_of_a_large_box_is_neither_molecule_nor_detail() -> None:
    """A small molecule in a large noisy box: the solvent's patches are skipped and kept out of the mask (read as
    molecule, subtracted noise pulled the estimate to high resolution)."""
    grid, atoms = chain_map((96, 96, 96), resolution=8.0, atoms=150, margin=34.0, seed=6)
    rng = np.random.default_rng(2)
    noisy = Grid((grid.values + 0.03 * float(grid.values.max()) * rng.standard_normal(grid.values.shape)
                  ).astype(np.float32), grid.geometry)
    e = estimate(noisy)
    assert e.mask.values.mean() < 0.1  # the molecule fills a few % of the box
    clean = estimate(grid)
    assert abs(e.global_resolution - clean.global_resolution) < 0.2 * clean.global_resolution


def test_a_box_of_molecule_masked_in_its_gaps_is_read_as_masked_not_as_solvent() -> None:
    """Under half the box exactly 0 (noise.is_masked says no), in whole regions: a mask. Taken for unmasked, the
    molecule was measured as solvent and its signal subtracted as noise (a 3 Å map read 9.9 Å)."""
    grid, _ = chain_map((40, 40, 40), resolution=3.0, margin=0.0, atoms=2000, seed=3)
    assert 0.3 < np.mean(grid.values == 0) < 0.5
    e = estimate(grid)
    assert any(n.startswith("solvent masked") for n in e.notes)
    assert e.global_resolution < 5.0


def test_scattered_zeros_of_a_quantized_map_are_not_a_mask() -> None:
    grid, _ = chain_map((48, 48, 48), resolution=5.0, atoms=150, margin=12.0, seed=6)
    noisy = grid.values / grid.values.max() * 20 + np.random.default_rng(2).normal(0, 1.2, grid.values.shape)
    quantized = np.round(noisy).astype(np.float32)  # integer levels, as a mode-0 MRC stores them
    assert np.mean(quantized == 0) > 0.2
    e = estimate(Grid(quantized, grid.geometry))
    assert any(n.startswith("noise measured in the solvent") for n in e.notes)


def test_an_estimate_at_the_floor_of_the_training_range_has_an_interval_down_to_nyquist() -> None:
    from nemap.resolution.estimate import below_floor

    recipe = {"data": {"train": {"resolution_range": [2.5, 20.0]}}}
    fine = Grid(np.zeros((8, 8, 8), np.float32), Geometry((8, 8, 8), (0.5, 0.5, 0.6), (0.0, 0.0, 0.0)))
    notes: list[str] = []
    assert below_floor(3.0, (2.4, 3.8), recipe, fine, notes) == (1.2, 3.8)  # 2 × the largest voxel
    assert "floor of what the model tells apart" in notes[0]
    assert below_floor(3.2, (2.5, 4.0), recipe, fine, []) == (2.5, 4.0)  # above 1.25 × 2.5 Å: calibrated
    coarse = Grid(np.zeros((8, 8, 8), np.float32), Geometry((8, 8, 8), (1.5,) * 3, (0.0, 0.0, 0.0)))
    assert below_floor(3.0, (2.4, 3.8), recipe, coarse, []) == (2.4, 3.8)  # its voxels hold nothing finer


def test_a_2_angstrom_map_is_read_again_by_the_fine_model_and_its_interval_holds_it(shared_data) -> None:
    from training import whole_maps

    grid, _, _ = whole_maps.simulate(whole_maps.Case(2.0, "white", voxel=0.5))
    e = estimate(grid)
    assert e.model == "local+fine" and any("read again by fine at 0.5 Å voxels" in n for n in e.notes)
    assert abs(e.global_resolution - 2.0) < 0.5  # `local` alone reads it 2.9-3.0 Å (its floor)
    assert e.interval[0] <= 2.0 <= e.interval[1]
    first = float(re.search(r"local reads ([0-9.]+) Å, within fine's range", " ".join(e.notes)).group(1))
    lo, hi = interval(first, models.recipe_of("local"))  # the first reading's interval is held too (the note
    assert e.interval[0] <= lo * 1.01 and e.interval[1] >= hi * 0.99  # gives that reading to 0.01 Å)
    alone = estimate(grid, model="fine")  # on its own, its noise measured at 0.5 Å, not carried from 1 Å
    assert alone.model == "fine" and alone.global_resolution == pytest.approx(e.global_resolution, rel=0.01)
    assert alone.local.values.shape == grid.values.shape


def test_a_reading_read_again_has_an_interval_that_holds_both_readings_intervals() -> None:
    from nemap.resolution.estimate import spanning_both

    assert spanning_both((2.0, 3.0), (2.6, 4.1)) == (2.0, 4.1)  # fine's reading finer than local's
    assert spanning_both((2.0, 3.0), (1.8, 2.9)) == (1.8, 3.0)
    assert spanning_both((2.0, 3.0), None) == (2.0, 3.0)  # not read again: its own interval
    assert spanning_both(None, (2.6, 4.1)) is None  # weights without an interval


def _fake_fine(monkeypatch, answer: float) -> list:
    """The fine model replaced by one whose reading is ``answer`` Å; the calls to ``read`` it gets."""
    from nemap.resolution import estimate as est

    recipe = {"data": {"train": {"voxel_size": 0.5, "resolution_range": [1.25, 4.0]}}}
    calls: list = []
    monkeypatch.setattr(est, "available", lambda: ["fine", "local"])
    monkeypatch.setattr(est, "load", lambda name: (None, recipe))
    monkeypatch.setattr(est, "read", lambda grid, net, kind, voxel, *rest: calls.append(voxel) or est.Reading(
        answer, np.full(grid.values.shape, answer, np.float32), np.ones(grid.values.shape, bool)))
    return calls


@pytest.mark.parametrize("voxel, first, answer, model, calls", [
    (0.5, 3.0, 2.1, "local+fine", [0.5]),  # at local's floor, on fine voxels: fine answers
    (1.0, 3.9, 3.4, "local+fine", [0.5]),  # within fine's 1.25-4 Å, where it reads better: fine answers
    (0.5, 3.0, 4.6, "local", [0.5]),  # fine reads beyond its 1.25-4 Å: local's reading kept
    (0.5, 4.1, 2.1, "local", []),  # beyond fine's range: not read again
    (1.5, 3.0, 2.1, "local", [])])  # 3 Å Nyquist: nothing finer than local's 2.5 Å to read
def test_the_fine_model_reads_only_maps_within_its_range_that_hold_finer_detail(monkeypatch, voxel, first, answer,
                                                                                model, calls) -> None:
    from nemap.resolution.estimate import read_finer
    from nemap.resolution.reading import Reading

    made = _fake_fine(monkeypatch, answer)
    grid = Grid(np.zeros((8, 8, 8), np.float32), Geometry((8, 8, 8), (voxel,) * 3, (0.0, 0.0, 0.0)))
    recipe = {"data": {"train": {"voxel_size": 1.0, "resolution_range": [2.5, 20.0]}}}
    notes: list[str] = []
    first_reading = Reading(first, np.full((8, 8, 8), first, np.float32), np.ones((8, 8, 8), bool))
    reading, used, name = read_finer(grid, first_reading, recipe, np.zeros((8, 8, 8), bool), False, "m", notes)
    assert name == model and made == calls
    assert reading.global_resolution == (answer if model == "local+fine" else first)
    assert np.all(reading.local == reading.global_resolution)
    assert used["data"]["train"]["voxel_size"] == (0.5 if model == "local+fine" else 1.0)
    assert bool(notes) == bool(calls)


def test_the_fine_model_reads_a_cube_of_at_most_64_angstrom_around_the_molecule(monkeypatch) -> None:
    """Time: a 256³ map at 0.5 Å would cost the fine model 8× a 128³ one. The rest keeps local's reading."""
    from nemap.resolution.estimate import fine_box, read_finer
    from nemap.resolution.reading import Reading

    _fake_fine(monkeypatch, 2.0)
    shape = (200, 100, 140)
    grid = Grid(np.zeros(shape, np.float32), Geometry(shape, (0.5,) * 3, (0.0, 0.0, 0.0)))
    inside = np.zeros(shape, bool)
    inside[150:190, 40:60, 0:20] = True  # near the x end and the z start: the cube is kept inside the map
    first = Reading(3.0, np.full(shape, 3.0, np.float32), inside)
    assert fine_box(grid, first) == (slice(72, 200), slice(0, 100), slice(0, 128))
    notes: list[str] = []
    reading, _, name = read_finer(grid, first, {"data": {"train": {"resolution_range": [2.5, 20]}}},
                                  np.zeros(shape, bool), False, "m", notes)
    assert name == "local+fine" and "128×100×128 voxels around the molecule's centre" in notes[0]
    assert np.all(reading.local[72:, :, :128] == 2.0) and np.all(reading.local[:72] == 3.0)
    assert np.all(reading.inside[72:, :, :128]) and not reading.inside[:72].any()
    small = Grid(np.zeros((40, 40, 40), np.float32), Geometry((40, 40, 40), (1.0,) * 3, (0.0, 0.0, 0.0)))
    assert fine_box(small, Reading(3.0)) == (slice(0, 40),) * 3  # under 64 Å: all of it


def test_flat_solvent_is_what_the_3x3x3_filters_find_with_or_without_them() -> None:
    from scipy import ndimage

    from nemap.resolution.reading import flat_solvent

    rng = np.random.default_rng(5)
    noisy = rng.standard_normal((20, 18, 16)).astype(np.float32)
    masked = noisy.copy()
    masked[:, :, :6] = 0.0
    blocks = noisy.copy()  # few voxels equal their x-neighbours: only their neighbourhoods are compared
    blocks[4:9, 5:10, 6:11] = 1.5
    blocks[-3:, :4, -4:] = -2.0  # against the box's faces: edges replicated
    for values in (noisy, masked, np.round(noisy).astype(np.float32), blocks):  # none, a slab, levels, blocks
        full = ndimage.maximum_filter(values, size=3, mode="nearest") == ndimage.minimum_filter(values, size=3,
                                                                                                 mode="nearest")
        np.testing.assert_array_equal(flat_solvent(values), full)
    assert flat_solvent(masked)[:, :, :5].all() and not flat_solvent(noisy).any()
    assert flat_solvent(blocks)[5:8, 6:9, 7:10].all() and flat_solvent(blocks)[-2:, :3, -3:].all()


def test_the_recipe_maps_are_scored_against_their_own_labels(shared_data, monkeypatch) -> None:
    """``benchmarks.resolution_models.recipe_maps`` scores what the estimator answers against each drawn map's own
    labels: an estimator answering the truth scores perfectly, one answering twice it scores its error."""
    import benchmarks.resolution_models as rm
    from nemap.resolution.estimate import Estimate
    from training import resolution_data

    monkeypatch.setattr(rm, "RECIPE_EDGE", 40)
    data = resolution_data.build(3, 1, "test", edge=40, keep_noise=True)
    order = iter(range(3))

    def answer(factor: float):
        def fake(grid: Grid, name: str = "the map") -> Estimate:
            i = next(order)
            g = float(data["global"][i]) * factor
            local = Grid(data["local"][i].astype(np.float32) * factor, grid.geometry)
            mask = Grid(data["masks"][i].astype(np.float32), grid.geometry)
            return Estimate(g, "high", local, mask, "local", interval=(g / 1.1, g * 1.1),
                            signal_to_noise=(None, 5.0, 500.0)[i])
        return fake

    monkeypatch.setattr(rm, "estimate", answer(1.0))
    right = rm.recipe_maps(3)
    assert right["global_rmse"] < 1e-2 and right["class_accuracy"] == 1.0 and right["interval_coverage"] == 1.0
    assert right["mask_iou"] == 1.0 and (right["local_rmse_2_8"] or 0) < 1e-2 and right["answered_by"] == {"local": 3}
    by_ratio = right["by"]["measured signal/noise, all"]  # grouped by what each estimate measured
    assert {k: v["maps"] for k, v in by_ratio.items()} == {"not measured": 1, "0–10": 1, "100–1000": 1}
    order = iter(range(3))
    monkeypatch.setattr(rm, "estimate", answer(2.0))
    wrong = rm.recipe_maps(3)
    assert abs(wrong["global_rmse"] - np.sqrt(np.mean(data["global"].astype(np.float64) ** 2))) < 1e-2
    assert wrong["interval_coverage"] == 0.0
