"""Local resolution in windows: zones blurred differently are told apart, and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.half_maps import half_maps, zoned_half_maps
from nemap.errors import ArgumentError, NemapError
from nemap.format.geometry import Grid
from nemap.resolution import locres
from nemap.resolution.fsc import fsc
from nemap.resolution.locres import local_resolution, soft_sphere


@pytest.mark.parametrize("noise", [0.5, 1.5])
def test_the_sharper_zone_has_the_better_local_resolution(noise: float) -> None:
    h1, h2, zone = zoned_half_maps(noise=noise, seed=4)
    result = local_resolution(h1, h2)
    v = result.grid.values
    assert result.grid.geometry == h1.geometry and np.isfinite(v).all() and (v > 0).all()
    sharp, blurred = np.median(v[zone == 0]), np.median(v[zone == 1])
    assert sharp + 0.3 < blurred
    # windows well inside each zone (edge windows reach the solvent margin), at the coarse centres
    xs = result.centre_start[0] + result.step * np.arange(result.coarse.shape[0])
    assert np.nanmedian(result.coarse[(xs > 8) & (xs < 24)]) < np.nanmedian(result.coarse[(xs > 40) & (xs < 56)])


@pytest.mark.parametrize(("resolution", "noise"), [(8.0, 0.05), (12.0, 0.2)])
def test_a_low_resolution_map_with_weak_noise_reads_near_its_fsc(resolution: float, noise: float) -> None:
    """Unwhitened, each window spread the strong low-frequency signal both halves share into every shell and read
    0.6× the halves' FSC resolution (2.1 Å at 8 Å, 2.6 Å at 12 Å)."""
    h1, h2, _ = half_maps((40, 40, 40), resolution=resolution, noise=noise, seed=3)
    whole = fsc(h1, h2).resolution(0.143)[0]
    assert np.median(local_resolution(h1, h2).coarse) == pytest.approx(whole, rel=0.25)


def test_whitening_keeps_the_fsc_of_the_whole_halves() -> None:
    h1, h2, _ = half_maps((32, 28, 24), resolution=4.0, noise=1.0, seed=6)
    w1, w2 = locres.whitened(h1.values.astype(np.float64), h2.values.astype(np.float64), h1.geometry.voxel_size)
    before = fsc(h1, h2).fsc
    after = fsc(Grid(w1.astype(np.float32), h1.geometry), Grid(w2.astype(np.float32), h1.geometry)).fsc
    np.testing.assert_allclose(after, before, atol=1e-4)
    assert not np.allclose(w1, h1.values)


def test_one_window_is_the_fsc_of_the_windowed_halves() -> None:
    h1, h2, _ = half_maps((24, 24, 24), noise=1.0, seed=5)
    box = 20
    got = locres.window_resolutions(h1.values.astype(np.float64), h2.values.astype(np.float64),
                                    np.array([[12, 12, 12]]), box, h1.geometry.voxel_size, 0.143)
    sphere = soft_sphere(box).astype(np.float32)
    cut = tuple(slice(2, 22) for _ in range(3))
    windowed = [Grid(h.values[cut] * sphere, h1.geometry.__class__((box,) * 3, h1.geometry.voxel_size))
                for h in (h1, h2)]
    assert got[0] == pytest.approx(fsc(*windowed).resolution(0.143)[0], rel=1e-9)


def test_a_mask_limits_the_windows_and_zeroes_the_outside() -> None:
    h1, h2, _ = zoned_half_maps(noise=0.5)
    inside = np.zeros(h1.values.shape, np.float32)
    inside[10:50, 6:26, 6:26] = 1
    result = local_resolution(h1, h2, Grid(inside, h1.geometry), step=4)
    assert (result.grid.values[inside == 0] == 0).all() and (result.grid.values[inside == 1] > 0).all()
    assert np.isnan(result.coarse).any() and np.isfinite(result.coarse).any()
    geo = result.coarse_geometry()
    assert geo.voxel_size == (4.0, 4.0, 4.0) and geo.grid_shape == result.coarse.shape


def test_bad_windows_and_steps_are_refused() -> None:
    h1, h2, _ = half_maps((24, 20, 18))
    with pytest.raises(NemapError, match="larger than the box") as err:
        local_resolution(h1, h2, window=40.0)
    assert err.value.code == "GRID_TOO_SMALL"
    for window in (0.0, -5.0, float("nan")):
        with pytest.raises(ArgumentError, match="window"):
            local_resolution(h1, h2, window=window)
    with pytest.raises(ArgumentError, match="step"):
        local_resolution(h1, h2, step=0)
    with pytest.raises(ArgumentError, match="threshold"):
        local_resolution(h1, h2, threshold=0.0)


def _brute_force_fsc_resolution(a: np.ndarray, b: np.ndarray, voxel: float, threshold: float) -> float:
    """An independent FSC (full complex FFT, one explicit loop per shell, nearest shell, halves up) and the Å where
    it first drops below ``threshold``, linear between shells."""
    n = a.shape[0]
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    f = np.fft.fftfreq(n, voxel)
    radius = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
    spacing = 1.0 / (n * voxel)
    shell = np.floor(radius / spacing + 0.5).astype(int)
    count = int(np.floor((1.0 / (2 * voxel)) / spacing + 1e-9)) + 1
    curve = []
    for k in range(count):
        sel = shell == k
        num = np.real(np.sum(fa[sel] * np.conj(fb[sel])))
        curve.append(num / np.sqrt(np.sum(np.abs(fa[sel]) ** 2) * np.sum(np.abs(fb[sel]) ** 2)))
    for k in range(1, count):
        if curve[k] < threshold:
            t = (curve[k - 1] - threshold) / (curve[k - 1] - curve[k])
            return 1.0 / ((k - 1 + t) * spacing)
    return 1.0 / ((count - 1) * spacing)


def test_window_resolutions_equal_an_independent_fsc_at_several_centres() -> None:
    """Each window's resolution is the FSC of the soft-sphere-windowed halves, computed here without nemap's FSC."""
    h1, h2, _ = zoned_half_maps(noise=1.0, seed=9)
    box = 20
    sphere = soft_sphere(box)
    for centre in ([16, 16, 16], [32, 14, 18], [47, 17, 15]):
        got = locres.window_resolutions(h1.values.astype(np.float64), h2.values.astype(np.float64),
                                        np.array([centre]), box, h1.geometry.voxel_size, 0.143)[0]
        cut = tuple(slice(c - box // 2, c + box // 2) for c in centre)
        want = _brute_force_fsc_resolution(h1.values[cut] * sphere, h2.values[cut] * sphere,
                                           h1.geometry.voxel_size[0], 0.143)
        assert got == pytest.approx(want, rel=1e-6), centre
