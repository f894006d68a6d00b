"""Simulated maps with a resolution that varies in space: molmap at each level, exact labels."""

from __future__ import annotations

import numpy as np
import pytest

from nemap.format.geometry import Geometry
from nemap.resolution import synthetic
from nemap.tools.simulate import gaussian_sum


@pytest.mark.parametrize("resolution,tolerance", [(4.0, 0.015), (6.0, 2e-3), (10.0, 5e-3)])  # 3σ padding
def test_levels_are_molmap_where_molmap_is_band_limited(resolution: float, tolerance: float) -> None:
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-6, 38, (300, 3))  # atoms outside the box contribute too
    z = rng.choice([6.0, 7.0, 8.0], 300)
    g = Geometry((32, 30, 28), (1.0, 1.0, 1.0), (0.5, -1.0, 2.0))
    level = synthetic.levels(xyz, z, g.grid_shape, np.asarray(g.origin), 1.0, np.array([resolution]))[0]
    molmap = gaussian_sum(g, xyz, z, synthetic.SIGMA_FACTOR * resolution)
    assert np.abs(level - molmap).max() < tolerance * molmap.max()


def test_voxel_size_scales_the_density() -> None:
    rng = np.random.default_rng(3)
    xyz = rng.uniform(4, 20, (50, 3))
    z = np.full(50, 6.0)
    g = Geometry((24, 24, 24), (1.0, 1.0, 1.0))
    fine = Geometry((48, 48, 48), (0.5, 0.5, 0.5))
    a = synthetic.levels(xyz, z, g.grid_shape, np.zeros(3), 1.0, np.array([6.0]))[0]
    b = synthetic.levels(xyz, z, fine.grid_shape, np.zeros(3), 0.5, np.array([6.0]))[0]
    np.testing.assert_allclose(b[::2, ::2, ::2], a, atol=1e-4 * a.max())


def test_the_map_follows_its_field_and_the_field_is_the_label() -> None:
    rng = np.random.default_rng(1)
    shape = (24, 24, 24)
    field = synthetic.smooth_field(shape, rng, 3.0, 9.0, 6.0)
    assert abs(field.min() - 3.0) < 1e-9 and abs(field.max() - 9.0) < 1e-9
    ladder = np.array([2.0, 4.0, 8.0, 16.0])
    levels = rng.standard_normal((4,) + shape).astype(np.float32)
    np.testing.assert_allclose(synthetic.follow_field(levels, ladder, np.full(shape, 4.0)), levels[1], atol=1e-6)
    halfway = np.full(shape, np.sqrt(4.0 * 8.0))  # halfway in log R
    np.testing.assert_allclose(synthetic.follow_field(levels, ladder, halfway), 0.5 * (levels[1] + levels[2]),
                               atol=1e-5)


def test_coloured_noise_and_mask() -> None:
    n = synthetic.coloured_noise((32, 32, 32), np.random.default_rng(2), 1.5)
    assert abs(n.std() - 1) < 1e-3 and np.corrcoef(n[:-1].ravel(), n[1:].ravel())[0, 1] > 0.5
    mask = synthetic.atom_mask(np.array([[10.0, 10.0, 10.0]]), (20, 20, 20), np.zeros(3), 1.0, radius=2.5)
    assert mask[10, 10, 10] and mask[12, 10, 10] and not mask[13, 10, 10] and mask.sum() == 81
