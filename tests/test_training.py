"""The training scripts of the shipped estimators run (at toy size) and are reproducible from their seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_training_data_is_reproducible_and_labelled(shared_data) -> None:
    from training import resolution_data as rd

    a, b = rd.build(3, 7, "train"), rd.build(3, 7, "train")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert set(rd.TRAIN_MODELS).isdisjoint(rd.TEST_MODELS)
    local = a["local"].astype(np.float32)
    assert local.min() >= rd.LOW - 1e-2 and local.max() <= rd.HIGH * 1.3 + 0.1
    for i in range(3):
        inside = local[i][a["masks"][i]] if a["masks"][i].any() else local[i]
        assert abs(a["global"][i] - np.median(inside)) < 1e-2
        m = a["maps"][i].astype(np.float32)
        assert abs(m.mean()) < 1e-2 and abs(m.std() - 1) < 1e-2
    assert set(a) >= {"noise_kind", "mask_kind", "voxel", "base", "snr", "bfactor"}


def test_training_data_covers_every_noise_mask_and_voxel_kind_and_sample_i_depends_only_on_its_seed(
        shared_data) -> None:
    from training import resolution_data as rd

    many = rd.build(60, 11, "train")
    assert set(many["noise_kind"]) == set(range(len(rd.NOISE_KINDS)))
    assert set(many["mask_kind"]) == set(range(len(rd.MASK_KINDS)))
    assert many["voxel"].max() > 1.0 and many["bfactor"].min() < 0 < many["bfactor"].max()
    clean = many["noise_kind"] == rd.NOISE_KINDS.index("clean")
    post = many["noise_kind"] == rd.NOISE_KINDS.index("postprocessed")
    assert np.all(np.isinf(many["snr"][clean])) and np.all(np.isfinite(many["snr"][~clean & ~post]))
    assert np.all((many["look"][post] >= rd.LOOK[0]) & (many["look"][post] <= rd.LOOK[1]))
    assert np.all(many["look"][~post] == 0) and np.all(many["bfactor"][post] == 0)
    for i in np.nonzero(post)[0]:  # one resolution everywhere: the FSC's, where the filter is
        np.testing.assert_allclose(many["local"][i].astype(np.float32), many["base"][i], rtol=2e-3)
    few = rd.build(5, 11, "train")  # another chunking of the same seeds: the same samples
    np.testing.assert_array_equal(few["maps"], many["maps"][:5])


def test_patches_at_finer_voxels_are_the_recipe_in_voxels_with_labels_in_angstrom(shared_data, monkeypatch) -> None:
    """At 0.5 Å voxels the recipe runs on the molecule magnified twice, with its resolution range in voxels; what
    comes back (resolutions, voxel sizes, B-factors) is in Å (Å²), within the range asked for."""
    from training import resolution_data as rd

    fine = rd.build(12, 7, "train", voxel=0.5, resolution_range=(1.25, 4.0))
    assert np.all((fine["base"] >= 1.25) & (fine["base"] <= 4.0))
    local = fine["local"].astype(np.float32)
    assert local.min() >= 1.25 - 1e-2 and local.max() <= 4.0 * 1.3 + 0.05
    assert np.all((fine["voxel"] >= 0.5) & (fine["voxel"] <= 1.5)) and fine["voxel"].min() == 0.5
    assert 0 < np.abs(fine["bfactor"]).max() <= 100 * 0.5 ** 2 + 1e-3  # −100…60 voxels², 0.25 Å² each
    for i in range(12):
        inside = local[i][fine["masks"][i]] if fine["masks"][i].any() else local[i]
        assert abs(fine["global"][i] - np.median(inside)) < 1e-2
    seen = []
    monkeypatch.setattr(rd, "make_sample", lambda models, rng, protocol, low, high, edge, keep:
                        seen.append((models, low, high)))
    rd._samples((rd.TEST_MODELS, 7, range(1), False, 0.5, 2.5, 8.0, rd.CUBE, False))
    (models, low, high), = seen
    for (xyz, z), (xyz1, z1) in zip(models, rd.load_models(rd.TEST_MODELS)):
        np.testing.assert_allclose(xyz, 2 * xyz1)
        np.testing.assert_array_equal(z, z1)
    assert (low, high) == (2.5, 8.0)


def test_a_low_passed_patch_is_cut_from_a_low_passed_box_not_wrapped_around(shared_data, monkeypatch) -> None:
    """Low-passed on the patch itself, a 10–20 Å patch's opposite faces came out alike (correlation 0.99: the
    transform wraps the patch around); cut from a box low-passed as a whole, they are as unlike as density 31 Å
    apart is."""
    from training import resolution_data as rd

    monkeypatch.setattr(rd, "NOISE_ODDS", tuple(float(k == "filtered") for k in rd.NOISE_KINDS))
    monkeypatch.setattr(rd, "MASK_ODDS", tuple(float(k == "none") for k in rd.MASK_KINDS))
    monkeypatch.setattr(rd, "OFF_CENTRE_FRACTION", 0.0)
    monkeypatch.setattr(rd, "LOW", 10.0)
    models = rd.load_models(rd.TEST_MODELS)
    alike = []
    for i in range(8):
        m = rd.make_sample(models, np.random.default_rng([7, i]))[0]
        alike += [np.corrcoef(np.take(m, 0, a).ravel(), np.take(m, -1, a).ravel())[0, 1] for a in range(3)]
    assert np.mean(alike) < 0.5


def test_a_wider_sample_is_the_same_draw_at_a_wider_field_of_view_with_its_noise_kept_if_asked(shared_data,
                                                                                              monkeypatch) -> None:
    """``edge`` widens the box around the same centre (its middle is the patch's molecule, not another draw's), and
    ``keep_noise`` leaves an unmasked map's noise in instead of subtracting it as the estimator would."""
    from training import resolution_data as rd

    monkeypatch.setattr(rd, "NOISE_ODDS", tuple(float(k == "clean") for k in rd.NOISE_KINDS))
    monkeypatch.setattr(rd, "MASK_ODDS", tuple(float(k == "none") for k in rd.MASK_KINDS))
    monkeypatch.setattr(rd, "COARSE_FRACTION", 0.0)
    models = rd.load_models(rd.TEST_MODELS)
    patch, _, mask, info = rd.make_sample(models, np.random.default_rng([5, 0]))
    wide, _, wide_mask, wide_info = rd.make_sample(models, np.random.default_rng([5, 0]), edge=48)
    assert wide.shape == (48,) * 3 and info["base"] == wide_info["base"]
    middle = (slice(8, 40),) * 3
    assert np.array_equal(wide_mask[middle], mask)  # the same molecule, centred alike
    assert np.corrcoef(wide[middle].ravel(), patch.ravel())[0, 1] > 0.95
    monkeypatch.setattr(rd, "NOISE_ODDS", tuple(float(k == "white") for k in rd.NOISE_KINDS))
    subtracted = rd.make_sample(models, np.random.default_rng([5, 1]), edge=48)[0]
    kept = rd.make_sample(models, np.random.default_rng([5, 1]), edge=48, keep_noise=True)[0]
    solvent = ~rd.make_sample(models, np.random.default_rng([5, 1]), edge=48)[2]
    assert kept[solvent].std() > 2 * subtracted[solvent].std()  # white noise left in the solvent


@pytest.mark.parametrize("model", ["local", "cnn3d"])
def test_training_runs_and_writes_a_recorded_weight_file(model: str, tmp_path, shared_data) -> None:
    import h5py

    def run(*args: str) -> None:
        r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO)
        assert r.returncode == 0, r.stderr[-2000:]

    run("training.resolution_data", "--out", str(tmp_path), "--count", "6", "--split", "train")
    run("training.resolution_data", "--out", str(tmp_path), "--count", "4", "--split", "test", "--seed", "1")
    run("training.train_resolution", "--data", str(tmp_path), "--model", model, "--minutes", "0.02",
        "--out", str(tmp_path / "w.h5"), "--calibration-count", "8")
    with h5py.File(tmp_path / "w.h5", "r") as f:
        recipe = json.loads(f.attrs["recipe"])
        assert f.attrs["model"] == model and len(f.attrs["sha256"]) == 64
    assert recipe["data"]["train"]["count"] == 6 and recipe["test"]["maps"] == 4 and recipe["steps"] >= 1
    assert len(recipe["data_sha256"]["train"]) == 64
    assert recipe["interval"]["calibration"]["count"] == 8 and 0 <= recipe["test"]["interval_coverage"] <= 1
    assert set(recipe["test"]["by"]) >= {"noise", "mask", "band", "content"}


def test_a_model_of_finer_voxels_is_trained_in_voxels_and_scored_in_angstrom(tmp_path, shared_data) -> None:
    import h5py

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO)

    fine = ("--voxel", "0.5", "--resolution-range", "1.25", "4")
    assert run("training.resolution_data", "--out", str(tmp_path), "--count", "6", "--split", "train", *fine
               ).returncode == 0
    assert run("training.resolution_data", "--out", str(tmp_path), "--count", "4", "--split", "test", "--seed", "1",
               *fine).returncode == 0
    made = json.loads((tmp_path / "train.json").read_text())
    assert made["voxel_size"] == 0.5 and made["resolution_range"] == [1.25, 4.0]
    r = run("training.train_resolution", "--data", str(tmp_path), "--model", "local", "--minutes", "0.02",
            "--out", str(tmp_path / "w.h5"), "--calibration-count", "8")
    assert r.returncode == 0, r.stderr[-2000:]
    with h5py.File(tmp_path / "w.h5", "r") as f:
        recipe = json.loads(f.attrs["recipe"])
    assert set(recipe["test"]["by"]["voxel"]) <= {"0.5 Å", "0.5–1.5 Å"}
    refused = run("training.train_resolution", "--data", str(tmp_path), "--model", "cnn3d", "--minutes", "0.01",
                  "--out", str(tmp_path / "c.h5"))
    assert refused.returncode != 0 and "need a model of local resolution" in refused.stderr


def test_a_model_answers_in_its_voxels_and_is_scored_in_angstrom() -> None:
    """A model that reads 4 voxels everywhere reads 2 Å at 0.5 Å voxels."""
    import torch

    from training.train_resolution import per_sample

    class Four(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            shape = (x.shape[0],) + tuple(x.shape[2:])
            four = float(np.log(4.0))  # its local and global heads agree
            return torch.full(shape, four), torch.ones(shape), torch.full((x.shape[0],), four)

    n = 8
    data = {"maps": np.zeros((2, n, n, n), np.float16), "local": np.full((2, n, n, n), 2.0, np.float16),
            "masks": np.ones((2, n, n, n), bool)}
    p = per_sample(Four(), data, voxel=0.5)
    np.testing.assert_allclose(p["global"], 2.0, rtol=1e-6)  # float32 smoothing and blending
    assert p["sq"].sum() < 1e-9 and p["n"].sum() == 2 * n ** 3  # local 2 Å everywhere: no error
    np.testing.assert_allclose(per_sample(Four(), data)["global"], 4.0, rtol=1e-6)


def test_the_sampling_interval_says_how_far_a_figure_moves_with_the_draw_of_its_samples() -> None:
    """Equal local errors everywhere: no spread; errors 10 % of truth: little. One sample far off among 100: its figure
    moves with whether it is drawn."""
    from training.train_resolution import sampling_interval, scores

    truth = np.linspace(3.0, 15.0, 100)
    even = {"global": truth * 1.1, "sq": np.full(100, 4.0), "n": np.full(100, 4.0), "inter": np.ones(100),
            "union": np.ones(100)}
    spans = sampling_interval(even, truth)
    assert spans["local_rmse_2_8"] == pytest.approx([1.0, 1.0])
    assert spans["global_rmse"][1] - spans["global_rmse"][0] < 0.3 * scores(even, truth)["global_rmse"]
    odd = {**even, "global": truth.copy()}
    odd["global"][7] = 40.0
    low, high = sampling_interval(odd, truth)["global_rmse"]
    assert low < scores(odd, truth)["global_rmse"] < high and low < 0.5 * high
    assert sampling_interval(odd, truth) == sampling_interval(odd, truth)  # a fixed seed
    assert sampling_interval({**even, "n": np.zeros(100)}, truth)["local_rmse_2_8"] is None


def test_the_ratio_interval_says_how_far_a_group_ratio_moves_with_the_draw() -> None:
    """Errors of 2 Å in one group and 1 Å in the reference: 2× on every redraw. One reference sample far off: the ratio
    moves with whether it is drawn, around the figure of the whole set. Every noise kind against the clean ones, every
    mask kind against the unmasked ones; an absent group has none, and a redraw without a rare group counts for
    nothing."""
    from training.resolution_data import MASK_KINDS, NOISE_KINDS
    from training.train_resolution import ratio_interval, ratio_intervals

    truth = np.linspace(3.0, 15.0, 120)
    group = np.arange(120) % 2 == 0
    p = {"global": truth + np.where(group, 2.0, 1.0)}
    assert ratio_interval(p, truth, group, ~group) == pytest.approx([2.0, 2.0])
    p["global"][1] = truth[1] + 12.0  # a reference sample
    low, high = ratio_interval(p, truth, group, ~group)
    whole = 2.0 / np.sqrt((59 + 144) / 60)
    assert low < whole < high and high > 1.3 * low
    assert ratio_interval(p, truth, np.zeros(120, bool), ~group) is None
    few = np.arange(120) < 2  # redraws without any of them count for nothing, not as 0 or NaN
    assert np.isfinite(ratio_interval(p, truth, ~few, few)).all()
    noise = np.where(group, NOISE_KINDS.index("coloured"), NOISE_KINDS.index("clean")).astype(np.int8)
    mask = np.full(120, MASK_KINDS.index("zone"), np.int8)
    spans = ratio_intervals(p, {"global": truth, "noise_kind": noise, "mask_kind": mask})
    assert set(spans["noise"]) == {"coloured"} and spans["noise"]["coloured"] == [low, high]
    assert spans["mask"] == {}  # no unmasked patch to compare with


def test_the_reported_loss_scores_the_local_map_the_estimator_reports() -> None:
    """``--reported-loss``: the torch local map is ``models.local_map`` (smoothing with replicated edges, the blend),
    gradients reach both heads, and a local head that is right only after smoothing costs (almost) nothing."""
    import torch

    from nemap.resolution import models
    from training.train_resolution import losses, reported_local

    rng = np.random.default_rng(4)
    head = torch.tensor(rng.normal(1.5, 0.3, (2, 12, 13, 14)).astype(np.float32), requires_grad=True)
    glob = torch.tensor([1.2, 2.0], requires_grad=True)
    out = reported_local(head, glob)
    np.testing.assert_allclose(out.detach().numpy(), models.local_map(head.detach().numpy(), glob.detach().numpy()),
                               atol=1e-6)
    out.sum().backward()
    assert float(head.grad.abs().min()) > 0 and np.allclose(glob.grad.numpy(), 0.5 * 12 * 13 * 14)

    class Fixed(torch.nn.Module):  # local head +0.2 and -0.2 in alternate planes, global head right: smoothed, right
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            shape = (x.shape[0],) + tuple(x.shape[2:])
            wiggle = 0.2 * (1 - 2 * (torch.arange(shape[1]) % 2)).float().view(1, -1, 1, 1)
            return np.log(4.0) + wiggle.expand(shape), torch.full(shape, 10.0), torch.full((x.shape[0],), np.log(4.0))

    maps, local = torch.zeros(2, 16, 16, 16), torch.full((2, 16, 16, 16), 4.0)
    masks, truth = torch.ones(2, 16, 16, 16, dtype=torch.bool), torch.full((2,), 4.0)
    plain = losses(Fixed(), "local", maps, local, masks, truth)[1]["local"]
    reported = losses(Fixed(), "local", maps, local, masks, truth, reported=True)[1]["local"]
    assert plain == pytest.approx(0.04, rel=1e-5) and reported < plain / 50  # what is left: the replicated edges


@pytest.mark.parametrize("resolution", [4.0, 8.0])
def test_a_postprocessed_simulation_has_half_maps_whose_masked_fsc_crosses_0143_at_its_resolution(
        resolution: float, shared_data) -> None:
    from nemap.format.geometry import Grid
    from nemap.resolution.fsc import fsc
    from training import whole_maps
    from training.resolution_data import envelope

    grid, _, halves = whole_maps.simulate(whole_maps.Case(resolution, "postprocessed"), halves=True)
    g = grid.geometry
    mask = envelope(whole_maps.molecule()[0], g.grid_shape, np.asarray(g.origin), 1.0)
    measured = fsc(*halves, Grid(mask.astype(np.float32), g)).resolution()[0]  # as RELION reports it
    assert abs(measured - resolution) < 0.1 * resolution, measured
    h1 = np.abs(np.fft.fft(halves[0].values - halves[1].values, axis=0)).mean(axis=(1, 2))
    assert h1[len(h1) // 2 - 4:len(h1) // 2 + 4].mean() > 0.5 * h1[1:5].mean()  # the halves' noise is white
    s = np.abs(np.fft.rfftn(grid.values)) ** 2  # nothing beyond the low-pass edge (1/R + one shell)
    f2 = sum(np.square(np.fft.fftfreq(n) if a < 2 else np.fft.rfftfreq(n)).reshape(
        [-1 if b == a else 1 for b in range(3)]) for a, n in enumerate(grid.values.shape))
    assert s[f2 > (1 / resolution + 1.5 / grid.values.shape[0]) ** 2].max() < 1e-6 * s.max()


def test_post_processing_weights_by_the_fsc_and_undoes_the_half_maps_fall() -> None:
    from scipy import ndimage

    from training.resolution_data import post_processed

    rng = np.random.default_rng(0)
    density = ndimage.gaussian_filter(rng.standard_normal((32, 32, 32)), 1.0)
    signal, noise, (h1, h2) = post_processed(density, np.ones(density.shape), 4.0, 1.0, rng)
    f_in, f_out = np.fft.rfftn(density), np.fft.rfftn(signal)
    assert abs(f_out[1, 0, 0] / f_in[1, 0, 0] - 1) < 0.05  # 32 Å: FSC ≈ 1, weight ≈ 1, the B-factor fall undone
    k = np.sqrt(sum(np.square(np.fft.fftfreq(32) if a < 2 else np.fft.rfftfreq(32)).reshape(
        [-1 if b == a else 1 for b in range(3)]) for a in range(3)))
    made = np.abs(np.fft.rfftn(signal + noise))
    assert made[k > 1 / 4.0 + 1.5 / 32].max() < 1e-6 * made.max()  # low-passed at 4 Å
    near = (k > 0.2) & (k < 0.3)  # around 1/R: the halves agree about as much as an FSC of 0.143 says
    c = np.sum(np.fft.rfftn(h1)[near] * np.conj(np.fft.rfftn(h2)[near])).real / np.sqrt(
        np.sum(np.abs(np.fft.rfftn(h1)[near]) ** 2) * np.sum(np.abs(np.fft.rfftn(h2)[near]) ** 2))
    assert 0.02 < c < 0.35, c


def test_fine_tuning_starts_from_a_weight_file_and_records_it(tmp_path, shared_data) -> None:
    import h5py

    from nemap.resolution import models

    def run(*args: str) -> dict:
        r = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout)

    run_data = ("training.resolution_data", "--out", str(tmp_path), "--count")
    subprocess.run([sys.executable, "-m", *run_data, "4", "--split", "train"], cwd=REPO, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", *run_data, "4", "--split", "test", "--seed", "1"], cwd=REPO, check=True,
                   capture_output=True)
    train = ("training.train_resolution", "--data", str(tmp_path), "--minutes", "0.01", "--calibration-count", "4")
    first = run(*train, "--out", str(tmp_path / "a.h5"), "--width", "4")
    second = run(*train, "--out", str(tmp_path / "b.h5"), "--init", str(tmp_path / "a.h5"))  # default --width 8
    with h5py.File(tmp_path / "b.h5", "r") as f:
        recipe = json.loads(f.attrs["recipe"])
    assert recipe["init"]["sha256"] == first["sha256"] != second["sha256"]
    assert recipe["init"]["recipe"]["data"]["train"]["count"] == 4
    assert models.config_of(tmp_path / "b.h5") == {"width": 4}  # the starting file's architecture
    models.read(tmp_path / "b.h5")  # and it loads
    again = run("training.train_resolution", "--recalibrate", str(tmp_path / "b.h5"), "--out", str(tmp_path / "c.h5"))
    assert again["sha256"] == second["sha256"]  # the same parameters, measured again as the estimator reports
    _, remade = models.read(tmp_path / "c.h5")
    assert remade["recalibrated"]["replaced"]["test"] == {k: v for k, v in recipe["test"].items() if k != "by"}
    assert remade["recalibrated"]["reported"]["local_to_global"] == models.LOCAL_TO_GLOBAL
    assert remade["test"]["maps"] == 4 and remade["interval"]["calibration"]["count"] == 4
    assert remade["init"] == recipe["init"] and models.config_of(tmp_path / "c.h5") == {"width": 4}
    wider = run("training.train_resolution", "--recalibrate", str(tmp_path / "c.h5"), "--calibration-count", "6",
                "--out", str(tmp_path / "d.h5"))
    assert wider["sha256"] == second["sha256"]
    assert models.read(tmp_path / "d.h5")[1]["interval"]["calibration"]["count"] == 6  # more calibration patches
    bare = subprocess.run([sys.executable, "-m", "training.train_resolution"], capture_output=True, text=True, cwd=REPO)
    assert bare.returncode == 2 and "--data is required" in bare.stderr


def test_a_twin_is_made_on_the_real_maps_grid_frame_and_mask() -> None:
    from fixtures.synthetic_maps import random_chain
    from nemap.format.geometry import Geometry
    from nemap.resolution import synthetic
    from training import whole_maps

    geometry = Geometry((36, 32, 40), (1.25,) * 3, (40.0, -12.0, 7.5))  # an origin far from 0: the frame matters
    lo, hi = geometry.extent
    xyz = random_chain(150, lo + 8.0, hi - 8.0, seed=2)
    z = np.full(len(xyz), 6)
    keep = synthetic.atom_mask(xyz, geometry.grid_shape, np.asarray(geometry.origin), 1.25, radius=4.0)
    twin = whole_maps.twin(geometry, (xyz, z), 6.0, keep, seed=1)
    assert twin.geometry == geometry and not twin.values[~keep].any() and twin.values[keep].std() > 0
    molmap = synthetic.levels(xyz, z, geometry.grid_shape, np.asarray(geometry.origin), 1.25, np.array([6.0]))[0]
    assert np.corrcoef(twin.values[keep], molmap[keep])[0, 1] > 0.5  # the atoms where the map's frame puts them
    shifted = synthetic.levels(xyz + 6.0, z, geometry.grid_shape, np.asarray(geometry.origin), 1.25, np.array([6.0]))[0]
    assert np.corrcoef(twin.values[keep], shifted[keep])[0, 1] < 0.5
    with pytest.raises(ValueError, match="cubic"):
        whole_maps.twin(Geometry((36, 32, 40), (1.25, 1.25, 1.5)), (xyz, z), 6.0, keep)


def test_patches_of_solvent_only_are_scored_apart_from_patches_holding_molecule() -> None:
    from training.train_resolution import breakdown

    masks = np.zeros((3, 4, 4, 4), bool)
    masks[0, 1:3, 1:3, 1:3] = masks[1, 0, 0, 0] = True  # patch 2: solvent only
    truth = np.array([4.0, 8.0, 12.0], np.float32)
    p = {"global": np.array([5.0, 8.0, 4.0]), "sq": np.zeros(3), "n": np.ones(3), "inter": np.ones(3),
         "union": np.ones(3)}
    content = breakdown(p, {"global": truth, "masks": masks})["content"]
    assert content["molecule"]["maps"] == 2 and content["solvent only"]["maps"] == 1
    assert content["molecule"]["global_rmse"] == pytest.approx(np.sqrt(0.5))
    assert content["solvent only"]["global_rmse"] == pytest.approx(8.0)
