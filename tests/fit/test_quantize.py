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
