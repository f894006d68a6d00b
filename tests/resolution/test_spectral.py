"""Spectral subtraction of measured noise (nemap.resolution.spectral) and the monogenic baseline
(nemap.resolution.monogenic) on synthetic maps with known signal and noise."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from fixtures.synthetic_maps import chain_map
from nemap.errors import NemapError
from nemap.format.geometry import Grid
from nemap.resolution import spectral
from nemap.resolution.fsc import frequency_squared
from nemap.resolution.monogenic import ladder, monogenic_local_resolution
from nemap.resolution.noise import solvent_voxels


def band_limited(shape: tuple[int, int, int], cutoff: float, seed: int = 0) -> np.ndarray:
    """A random field with no power beyond ``cutoff`` voxel⁻¹, unit SD."""
    f = scipy.fft.rfftn(np.random.default_rng(seed).standard_normal(shape))
    v = scipy.fft.irfftn(f * (frequency_squared(shape) <= cutoff ** 2), s=shape)
    return v / v.std()


def test_white_noise_has_its_variance_in_every_shell_whatever_the_box() -> None:
    rng = np.random.default_rng(1)
    for shape in ((32, 32, 32), (64, 48, 40)):
        power = spectral.shell_power(2.0 * rng.standard_normal(shape), 1.0)
        assert np.all(np.abs(power[6:-3] / 4.0 - 1) < 0.25)  # shells of a few hundred samples and more


def test_subtraction_removes_noise_beyond_the_signal_and_leaves_a_clean_map_alone() -> None:
    rng = np.random.default_rng(2)
    signal = band_limited((32, 32, 32), 0.12)
    for noise in (0.5 * rng.standard_normal(signal.shape),  # white
                  0.5 * band_limited(signal.shape, 0.3, seed=3)):  # coloured
        measured = spectral.shell_power(noise, 1.0)
        cleaned = spectral.subtract_noise(signal + noise, measured, 1.0)
        before, after = np.std(signal + noise - signal), np.std(cleaned - signal)
        assert after < 0.5 * before
    np.testing.assert_allclose(spectral.subtract_noise(signal, np.zeros(40), 1.0), signal, atol=1e-5)


def test_noise_measured_in_the_solvent_matches_the_noise_spectrum() -> None:
    rng = np.random.default_rng(4)
    grid, _ = chain_map((48, 48, 48), resolution=5.0, atoms=150, margin=14.0, seed=3)
    noise = 0.05 * float(grid.values.max()) * rng.standard_normal(grid.values.shape)
    noisy = grid.values + noise
    solvent = solvent_voxels(noisy, 1.0)
    assert solvent is not None and 0.2 < solvent.mean() < 0.95
    measured = spectral.solvent_power(noisy, solvent, 1.0, spacing=1 / 32)
    truth = spectral.shell_power(noise, 1.0, spacing=1 / 32)
    assert np.all(np.abs(measured[4:20] / truth[4:20] - 1) < 0.3)


def test_monogenic_reads_the_sharper_map_sharper_and_refuses_a_masked_one() -> None:
    rng = np.random.default_rng(5)
    found = []
    for resolution in (4.0, 10.0):
        grid, _ = chain_map((56, 56, 56), resolution=resolution, atoms=300, margin=14.0, seed=1)
        noisy = grid.values + 0.03 * float(grid.values.max()) * rng.standard_normal(grid.values.shape)
        result = monogenic_local_resolution(Grid(noisy.astype(np.float32), grid.geometry))
        assert result.local.geometry == grid.geometry and 0.1 < result.solvent_share < 0.95
        assert ladder(1.0)[-1] >= 2.0 and result.local.values.min() >= ladder(1.0)[-1] - 1e-6
        found.append(result.global_resolution)
    assert found[0] < found[1]
    masked, _ = chain_map((40, 40, 40), resolution=5.0, atoms=100, margin=10.0)  # molmap: exact zeros around it
    with pytest.raises(NemapError, match="no solvent") as err:
        monogenic_local_resolution(masked, name="m.mrc")
    assert err.value.code == "NO_SOLVENT"


def test_the_monogenic_baseline_from_the_command_line(tmp_path) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    from nemap.io.mrc import write_mrc

    grid, _ = chain_map((48, 48, 48), resolution=6.0, atoms=200, margin=12.0, seed=4)
    noisy = grid.values + 0.03 * float(grid.values.max()) * np.random.default_rng(1).standard_normal(grid.values.shape)
    write_mrc(tmp_path / "noisy.mrc", noisy.astype(np.float32), grid.geometry)
    write_mrc(tmp_path / "masked.mrc", grid.values, grid.geometry)
    run = lambda *a: subprocess.run([sys.executable, "-m", "nemap", "-q", "resolution", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    r = run(tmp_path / "noisy.mrc", "--model", "monogenic", "--json", "-o", tmp_path / "local.mrc")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == "monogenic" and out["local_resolution"]["min"] <= out["global_resolution"]
    assert (tmp_path / "local.mrc").is_file()
    bad = run(tmp_path / "masked.mrc", "--model", "monogenic")
    assert bad.returncode == 1 and "no solvent" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("voxel", [0.8, 0.9, (0.8, 0.9, 1.0)])
def test_noise_measured_on_a_maps_own_voxels_is_what_the_map_resampled_finer_holds(voxel) -> None:
    """The fine model's noise comes from the whole map at its own voxels (the map resampled whole to 0.5 Å has 8×
    the voxels of 1 Å): within 2 % inside the map's band, and what the band's corners hold beyond."""
    from nemap.resolution.reading import fourier_resample

    rng = np.random.default_rng(3)
    d = np.broadcast_to(np.asarray(voxel, dtype=np.float64), (3,))
    n = (90, 84, 80)
    values = rng.standard_normal(n)
    solvent = np.zeros(n, bool)
    solvent[:, :, :40] = True
    measured = spectral.solvent_power(values, solvent, d, spacing=1 / 16)
    fine = tuple(int(round(k * v / 0.5)) for k, v in zip(n, d))
    resampled = fourier_resample(values.astype(np.float32), fine)
    kept = np.zeros(fine, bool)
    kept[:, :, :int(round(40 * d[2] / 0.5))] = True
    direct = spectral.solvent_power(resampled, kept, 0.5, spacing=1 / 16)
    converted = spectral.resampled_power(measured, (32, 32, 32), d, 0.5)
    band = int(np.floor(0.5 / d.max() * 16)) - 1  # shells wholly inside the map's own band
    np.testing.assert_allclose(converted[1:band], direct[1:band], rtol=0.02)
    beyond = slice(band + 1, len(converted))
    assert np.all(np.abs(converted[beyond] - direct[beyond]) <= 0.25 * direct[1:band].mean())
    assert converted[-1] == 0 and direct[-1] < 1e-3 * direct[1]


def test_the_solvent_found_with_coarse_statistics_is_the_one_three_full_rounds_find() -> None:
    """With smoothing, the first two rounds (median and SD only) run on voxels 2 Å apart: the solvent differs
    from three rounds on every voxel in under 0.5 % of the box."""
    from scipy import ndimage

    from nemap.resolution import noise as nz

    rng = np.random.default_rng(6)
    grid, _ = chain_map((64, 64, 64), resolution=3.0, atoms=300, margin=16.0, seed=4)
    noisy = (grid.values + 0.05 * float(grid.values.max()) * rng.standard_normal(grid.values.shape)).astype(
        np.float32)
    found = nz.solvent_voxels(noisy, 1.0, smooth=1.5)
    v = ndimage.gaussian_filter(noisy, 1.5, mode="nearest")
    centre, sd = float(np.median(v)), 1.4826 * float(np.median(np.abs(v - np.median(v))))
    for _ in range(3):
        keep = nz._away(v, noisy != 0, centre, sd, np.ones(3), True)
        centre, sd = float(np.median(v[keep])), float(v[keep].std())
    assert found is not None and 0.2 < found.mean() < 0.9
    assert np.mean(found != keep) < 0.005
