"""FSC against an independent full-space NumPy computation, thresholds, masks and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import nemap
from fixtures.half_maps import half_maps
from nemap.errors import ArgumentError, NemapError
from nemap.format.geometry import Geometry, Grid
from nemap.resolution.fsc import crossing, fsc


def independent_fsc(a: np.ndarray, b: np.ndarray, voxel_size, spacing: float, count: int) -> np.ndarray:
    """Full complex FFT, shells by explicit masks: Re Σ F1 F2* / √(Σ|F1|² Σ|F2|²)."""
    f1, f2 = np.fft.fftn(a), np.fft.fftn(b)
    s = np.sqrt(sum(np.fft.fftfreq(n, d)[tuple(slice(None) if i == k else None for i in range(3))] ** 2
                    for k, (n, d) in enumerate(zip(a.shape, voxel_size))))
    shell = np.floor(s / spacing + 0.5)
    out = []
    for k in range(count):
        sel = shell == k
        out.append(np.real(np.sum(f1[sel] * np.conj(f2[sel]))) / np.sqrt(np.sum(np.abs(f1[sel]) ** 2)
                                                                           * np.sum(np.abs(f2[sel]) ** 2)))
    return np.array(out)


@pytest.mark.parametrize("shape,voxel", [((24, 24, 24), (1.0, 1.0, 1.0)), ((30, 21, 16), (1.1, 0.9, 1.3)),
                                         ((25, 20, 17), (1.0, 1.0, 1.0))])
def test_fsc_equals_an_independent_full_space_computation(shape, voxel) -> None:
    h1, h2, _ = half_maps(shape, voxel, noise=1.5, seed=3)
    curve = fsc(h1, h2)
    spacing = curve.frequency[1]
    assert spacing == pytest.approx(1 / max(n * d for n, d in zip(shape, voxel)))
    assert curve.frequency[-1] <= 1 / (2 * max(voxel)) + 1e-12  # up to the lowest Nyquist frequency
    expected = independent_fsc(h1.values.astype(np.float64), h2.values.astype(np.float64), voxel, spacing,
                               len(curve.frequency))
    np.testing.assert_allclose(curve.fsc, expected, atol=1e-6, rtol=0)
    assert curve.fsc[0] == pytest.approx(1.0)


def test_crossing_interpolates_between_shells_and_reports_a_curve_that_never_drops() -> None:
    f = np.array([0.0, 0.1, 0.2, 0.3])
    s, crossed = crossing(f, np.array([1.0, 0.8, 0.4, 0.1]), 0.5)
    assert crossed and s == pytest.approx(0.1 + 0.1 * (0.8 - 0.5) / (0.8 - 0.4))
    assert crossing(f, np.array([1.0, 0.9, 0.8, 0.7]), 0.5) == (0.3, False)


def test_more_noise_means_worse_resolution_and_identical_maps_warn() -> None:
    res = [fsc(*half_maps(noise=n, seed=1)[:2]).resolution(0.143)[0] for n in (0.5, 2.0, 6.0)]
    assert res[0] < res[1] < res[2]
    h1, _, _ = half_maps(noise=1.0)
    with pytest.warns(nemap.NemapWarning, match="identical"):
        curve = fsc(h1, h1)
    assert np.allclose(curve.fsc, 1.0) and curve.resolution(0.143)[1] is False


def test_mask_gives_masked_randomized_and_corrected_curves() -> None:
    h1, h2, _ = half_maps((32, 32, 32), noise=2.0, seed=2)
    inside = np.linalg.norm(np.indices(h1.values.shape) - 15.5, axis=0) < 12
    mask = Grid(inside.astype(np.float32), h1.geometry)
    curve = fsc(h1, h2, mask)
    k = int(round(curve.randomized_from / curve.frequency[1]))
    assert curve.fsc[k - 1] >= 0.143 > curve.fsc[k]  # phases randomized from where the unmasked FSC drops
    np.testing.assert_array_equal(curve.corrected[:k], curve.masked[:k])
    beyond = slice(k, None)
    expected = (curve.masked[beyond] - curve.randomized[beyond]) / (1 - curve.randomized[beyond])
    np.testing.assert_allclose(curve.corrected[beyond], expected)
    assert np.abs(curve.randomized[k + 2:]).max() < 0.3  # random phases decorrelate the halves
    summary = curve.summary()
    assert summary["masked"] and set(summary["curve"]) == {"frequency", "resolution", "fsc", "fsc_masked",
                                                           "fsc_randomized", "fsc_corrected"}


def test_bad_input_is_refused_with_a_reason() -> None:
    h1, h2, _ = half_maps((20, 18, 16))
    other = Grid(h2.values, Geometry((20, 18, 16), (1.1, 1.0, 1.0)))
    with pytest.raises(NemapError, match="voxel sizes") as err:
        fsc(h1, other, names=("a.mrc", "b.mrc"))
    assert err.value.code == "GRIDS_DIFFER" and "a.mrc" in str(err.value) and "b.mrc" in str(err.value)
    shifted = Grid(h2.values, Geometry((20, 18, 16), (1.0, 1.0, 1.0), (5.0, 0.0, 0.0)))
    with pytest.raises(NemapError, match="origins"):
        fsc(h1, shifted)
    with pytest.raises(NemapError, match="grid shapes"):
        fsc(h1, Grid(h2.values[:-1], Geometry((19, 18, 16), (1.0, 1.0, 1.0))))
    nan = h2.values.copy()
    nan[3, 3, 3] = np.nan
    with pytest.raises(NemapError, match="NaN") as err:
        fsc(h1, Grid(nan, h2.geometry))
    assert err.value.code == "NONFINITE_VOXELS"
    for bad, match in ((np.zeros((20, 18, 16)), "zero everywhere"), (np.full((20, 18, 16), 2.0), "outside")):
        with pytest.raises(NemapError, match=match) as err:
            fsc(h1, h2, Grid(bad.astype(np.float32), h1.geometry), mask_name="m.mrc")
        assert err.value.code == "BAD_MASK" and "m.mrc" in str(err.value)
    with pytest.raises(NemapError, match="mask"):
        fsc(h1, h2, Grid(np.ones((19, 18, 16), np.float32), Geometry((19, 18, 16), (1.0, 1.0, 1.0))))
    thin = Grid(np.ones((20, 1, 16), np.float32), Geometry((20, 1, 16), (1.0, 1.0, 1.0)))
    with pytest.raises(NemapError, match="fewer than 4 voxels") as err:
        fsc(thin, thin)
    assert err.value.code == "GRID_TOO_SMALL"
    with pytest.raises(ArgumentError, match="randomize_below"):
        fsc(h1, h2, randomize_below=1.5)
