"""The warning that the measured noise is as strong as the signal in the band a map was read to
(nemap.resolution.estimate.noise_dominates, reading.signal_to_noise)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nemap.errors import NemapWarning
from nemap.resolution import spectral
from nemap.resolution.estimate import band_signal_to_noise, noise_dominates
from nemap.resolution.models import CUBE
from nemap.resolution.reading import signal_to_noise


def test_signal_to_noise_per_shell_is_the_molecule_patches_power_over_the_noise() -> None:
    """A smooth blob in unit white noise: far above the noise in the first shells, about 0 (P − N ≈ 0) where the
    blob (cut off at the patch's faces) has no power left; no patch of at least half molecule: NaN."""
    rng = np.random.default_rng(0)
    blob = np.zeros((64, 64, 64))
    blob[32, 32, 32] = 1.0
    blob = 2e4 * ndimage.gaussian_filter(blob, 4.0)
    values = (blob + rng.standard_normal(blob.shape)).astype(np.float32)
    solvent = np.ones(blob.shape, bool)
    solvent[8:56, 8:56, 8:56] = False
    noise = spectral.solvent_power(values, solvent, 1.0, spacing=1.0 / CUBE)
    ratio = signal_to_noise(values, solvent, noise)
    assert ratio.shape == (CUBE,) and np.isnan(ratio[0])
    assert ratio[1] > 10 and ratio[2] > 10
    assert np.all(np.abs(ratio[16:28]) < 0.3)  # to Nyquist (shell 16) and into the corners
    assert np.all(np.isnan(signal_to_noise(values, np.ones(blob.shape, bool), noise)))


def test_a_warning_when_the_median_shell_up_to_the_estimate_is_noise_dominated() -> None:
    """Signal 20× the noise in shells 1–4 (to 8 Å in a 32 Å patch), 0.2× beyond: an 8-Å estimate reads only the
    strong shells; a 3-Å one reads to shell 10, most of it noise."""
    ratio = np.full(CUBE, 0.2)
    ratio[0], ratio[1:5] = np.nan, 20.0
    notes: list[str] = []
    assert band_signal_to_noise(ratio, 1.0, 8.0) == 20.0 and band_signal_to_noise(ratio, 1.0, 3.0) == 0.2
    assert band_signal_to_noise(None, 1.0, 3.0) is None and band_signal_to_noise(ratio * np.nan, 1.0, 3.0) is None
    noise_dominates(band_signal_to_noise(ratio, 1.0, 8.0), 8.0, "map.mrc", notes)
    assert notes == []
    with pytest.warns(NemapWarning, match="map.mrc: the noise measured in the solvent is as strong as the signal"):
        noise_dominates(band_signal_to_noise(ratio, 1.0, 3.0), 3.0, "map.mrc", notes)
    assert notes == ["noise-dominated up to 3.00 Å: median signal/noise power 0.20 per shell"]
    # masked, or no solvent: nothing measured, nothing said
    noise_dominates(band_signal_to_noise(None, 1.0, 3.0), 3.0, "map.mrc", notes)
    assert len(notes) == 1
    # a 16 Å patch of 0.5 Å voxels: shells 1–5, mostly signal
    noise_dominates(band_signal_to_noise(ratio, 0.5, 3.0), 3.0, "map.mrc", notes)
    assert len(notes) == 1
