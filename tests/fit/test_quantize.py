"""Quantized storage (NEMAP_quantized): the bound holds at every voxel, the certificate is the FSC an independent
computation finds, the noise estimate says how it was made, and bad tolerances or maps get a clear answer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nemap
from fixtures.synthetic_maps import chain_map
from nemap.errors import ArgumentError
from nemap.fit.fit_map import fit_map
from nemap.fit.options import options_for
from nemap.format.geometry import Geometry, Grid
from nemap.resolution import fsc as fsc_module
from nemap.resolution.noise import estimate_noise, from_half_maps

NOISE = 0.05  # of the peak


@pytest.fixture(scope="module")
def unmasked() -> tuple[Grid, float]:
    """A molecule in a box with white noise everywhere (an unmasked map) and its noise SD."""
    grid, _ = chain_map((40, 36, 32), resolution=3.0, seed=3)
    sd = NOISE * float(grid.values.max())
    values = grid.values + sd * np.random.default_rng(3).standard_normal(grid.values.shape)
    return Grid(values.astype(np.float32), grid.geometry), sd


def _decoded(content: nemap.NeuralMapContent, tmp_path, name: str = "q.nemap") -> tuple[np.ndarray, dict]:
    nemap.write(tmp_path / name, content)
    with nemap.open(tmp_path / name) as m:
        return m.sample().values.astype(np.float64), m.certificate


def _independent_floor(source: np.ndarray, decoded: np.ndarray, voxel: float, resolution: float) -> float:
    """min FSC(decoded, source) over the shells up to the resolution, by resolution/fsc.py (not the certifier)."""
    geometry = Geometry(source.shape, (voxel,) * 3, (0.0, 0.0, 0.0))
    curve = fsc_module.fsc(Grid(source.astype(np.float32), geometry), Grid(decoded.astype(np.float32), geometry))
    inside = (curve.frequency > 0) & (curve.frequency <= 1.0 / resolution + 1e-9)
    return float(curve.fsc[inside].min())


def test_the_invisible_default_keeps_its_bound_and_its_certificate_is_the_real_fsc(unmasked, tmp_path) -> None:
    grid, sd = unmasked
    content = fit_map(grid, options_for("spline"), resolution=3.0)
    member = content.quantized.member
    assert member["noise"]["method"] == "solvent"
    assert member["noise"]["sd"] == pytest.approx(sd, rel=0.1)  # the solvent estimate finds the noise put in
    assert member["error_bound"] == pytest.approx(member["noise"]["sd"] / 20)
    decoded, certificate = _decoded(content, tmp_path)
    error = np.abs(decoded - grid.values)
    assert 0 < error.max() <= member["error_bound"] * (1 + 1e-6)
    floor = _independent_floor(grid.values, decoded, 1.0, 3.0)
    assert certificate["fsc_floor"] >= 0.999 and floor == pytest.approx(certificate["fsc_floor"], abs=2e-5)


def test_an_fsc_floor_is_kept_within_the_tolerance_and_buys_a_smaller_file(unmasked, tmp_path) -> None:
    grid, _ = unmasked
    default = fit_map(grid, options_for("spline"), resolution=3.0)
    loose = fit_map(grid, options_for("spline", tolerance=1.9, fsc_floor=0.99), resolution=3.0)
    bound, sd = loose.quantized.member["error_bound"], loose.quantized.member["noise"]["sd"]
    assert bound <= 1.9 * sd * (1 + 1e-9)
    decoded, certificate = _decoded(loose, tmp_path)
    assert np.abs(decoded - grid.values).max() <= bound * (1 + 1e-6)
    assert _independent_floor(grid.values, decoded, 1.0, 3.0) >= 0.99 and certificate["fsc_floor"] >= 0.99
    sizes = [c.quantized.streams.size for c in (default, loose)]
    assert sizes[1] < 0.6 * sizes[0]


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), 1e9])
def test_a_bad_tolerance_is_refused_before_any_work(bad: float) -> None:
    with pytest.raises(ArgumentError, match="tolerance") as info:
        options_for("spline", tolerance=bad)
    assert info.value.parameter == "tolerance"


@pytest.mark.parametrize("bad", [0.2, 1.0, 1.5, float("nan")])
def test_a_bad_fsc_floor_is_refused(bad: float) -> None:
    with pytest.raises(ArgumentError, match="fsc_floor"):
        options_for("spline", fsc_floor=bad)


def test_a_floor_no_quantization_can_keep_is_one_clear_error(unmasked) -> None:
    grid, _ = unmasked
    with pytest.raises(nemap.NemapError, match="raise the tolerance or lower the floor"):
        fit_map(grid, options_for("spline", tolerance=10, fsc_floor=0.999999), resolution=3.0)


@pytest.mark.parametrize("shape", [(16, 16, 16), (20, 3, 12)])
def test_maps_without_measurable_noise_get_the_stated_fallback(shape, tmp_path) -> None:
    """A constant map, and one too thin to tell: sd 0, method fallback, a warning that says what was used."""
    geometry = Geometry(shape, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    values = np.full(shape, 2.5, np.float32) if shape[1] > 3 else \
        np.random.default_rng(0).random(shape).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        content = fit_map(Grid(values, geometry), options_for("spline"))
    assert any("taken as" in str(w.message) for w in caught)
    assert content.quantized.member["noise"] == {**content.quantized.member["noise"], "sd": 0.0, "method": "fallback"}
    decoded, _ = _decoded(content, tmp_path)
    assert np.isfinite(decoded).all()
    assert np.abs(decoded - values).max() <= content.quantized.member["error_bound"] * (1 + 1e-6)


@pytest.mark.parametrize("margin", [3, 6])
def test_noise_of_a_masked_map_comes_from_its_outer_shells(margin: int) -> None:
    """A soft mask (cosine edge of 4 voxels, ``margin`` voxels beyond the molecule): 30–45 % of the box exactly 0;
    the zeros are not solvent, so the noise comes from the shells beyond the resolution (the mask's edge adds
    some power there: the estimate is a little high, never 0)."""
    from scipy import ndimage

    grid, _ = chain_map((48, 48, 48), resolution=3.0, seed=4)
    sd = NOISE * float(grid.values.max())
    inside = ndimage.binary_dilation(grid.values > 0.05 * grid.values.max(), iterations=margin)
    distance = ndimage.distance_transform_edt(~inside)
    mask = np.where(distance < 4, 0.5 + 0.5 * np.cos(np.pi * distance / 4), 0.0)
    values = (grid.values + sd * np.random.default_rng(4).standard_normal(grid.values.shape)) * mask
    assert 0.25 < np.mean(values == 0) < 0.5
    found = estimate_noise(values, (1.0, 1.0, 1.0), resolution=3.0)
    assert found.method == "outer-shell" and "not 0" in found.description
    assert sd <= found.sd <= 1.45 * sd


def test_noise_from_half_maps_is_the_sd_of_their_half_difference() -> None:
    rng = np.random.default_rng(5)
    h1, h2 = rng.standard_normal((2, 12, 10, 9))
    found = from_half_maps(h1, h2)
    assert found.method == "half-maps" and found.sd == pytest.approx(float(np.std((h1 - h2) / 2)), rel=1e-9)


def _full_space(values: np.ndarray, decoded: np.ndarray, spacing: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    """FSC(decoded, values) and each shell's share of the largest shell's power (shell 0 left out of the largest),
    over the full Fourier space with NumPy: shell = ⌊|s| / spacing + ½⌋, voxels of 1 Å."""
    s = np.sqrt(sum(np.square(np.fft.fftfreq(n)).reshape([-1 if a == b else 1 for b in range(3)])
                    for a, n in enumerate(values.shape)))
    shell = np.floor(s / spacing + 0.5).astype(int).ravel()
    fs, fd = np.fft.fftn(values).ravel(), np.fft.fftn(decoded).ravel()
    keep = shell < count
    power, other, cross = (np.bincount(shell[keep], w[keep], count)
                           for w in (np.abs(fs) ** 2, np.abs(fd) ** 2, (fd * np.conj(fs)).real))
    return cross / np.sqrt(power * other), power / power[1:].max()


def test_the_certificate_covers_every_shell_up_to_the_resolution(unmasked) -> None:
    """Resolution exactly on a shell's frequency: that shell is in (≤, not <); FSC and power shares as NumPy
    finds them over the full space."""
    from nemap.format.kinds.quantized import decode_voxels

    grid, _ = unmasked
    values = grid.values.astype(np.float64)
    spacing = fsc_module.shells(values.shape, (1.0, 1.0, 1.0)).spacing
    content = fit_map(grid, options_for("spline", tolerance=3.0, fsc_floor=0.9), resolution=1.0 / (9 * spacing))
    certificate, table = content.quantized.member["certificate"], content.quantized.certificate
    decoded = decode_voxels(content.quantized, values.shape, (0, 0, 0), values.shape)
    fsc, share = _full_space(values, decoded, spacing, table.shape[0])
    assert certificate["shells"] == 9
    np.testing.assert_allclose(table[:, 1], fsc, atol=1e-9)
    np.testing.assert_allclose(table[:, 2], share, rtol=1e-6, atol=1e-12)
    assert certificate["fsc_floor"] == pytest.approx(fsc[1:10].min(), abs=1e-9)


def test_the_powered_floor_leaves_out_only_the_shells_without_power() -> None:
    """A map low-passed far below Nyquist (shells 10–14 hold 8·10⁻⁴ … 10⁻⁶ of the power): the floor over all shells
    is set by empty shells, the powered floor by the shells holding ≥ 10⁻⁴."""
    from nemap.fit.kinds.quantized import quantize_within

    grid, _ = chain_map((40, 36, 32), resolution=3.0, seed=3)
    values = grid.values.astype(np.float64)
    s = np.sqrt(fsc_module.frequency_squared(values.shape, 1.0))
    values = np.fft.irfftn(np.fft.rfftn(values) * np.exp(-0.5 * (s / 0.1) ** 2), values.shape, axes=(0, 1, 2))
    spacing = fsc_module.shells(values.shape, (1.0, 1.0, 1.0)).spacing
    q = quantize_within(values, 1.0, 0.01 * values.max(), 1.0 / (14 * spacing))
    fsc, share = _full_space(values, q.decoded, spacing, q.table.shape[0])
    inside = (np.arange(fsc.size) >= 1) & (np.arange(fsc.size) <= 14)
    powered = inside & (share >= q.certificate["power_fraction"])
    assert 0 < powered.sum() < inside.sum() and np.any(inside & (share >= 1e-4) & (share < 1e-3))
    assert q.certificate["fsc_floor"] == pytest.approx(fsc[inside].min(), abs=1e-9)
    assert q.certificate["fsc_floor_powered"] == pytest.approx(fsc[powered].min(), abs=1e-9)
    assert q.certificate["fsc_floor"] < 0.5 < q.certificate["fsc_floor_powered"]
