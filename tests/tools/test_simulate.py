"""The molmap-equivalent simulator (`nemap simulate`), against a brute-force analytic sum."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import gemmi
import numpy as np
import pytest

from nemap.format.geometry import Geometry
from nemap.io.mrc import read_mrc
from nemap.tools.simulate import SIGMA_FACTOR, gaussian_sum, molmap_geometry, read_atoms, simulate


def brute_force(geometry: Geometry, xyz: np.ndarray, z: np.ndarray, sigma: float) -> np.ndarray:
    """Every atom against every voxel centre (float64), kept where |index − c| ≤ 5σ/Δ on all axes."""
    axes = [geometry.origin[a] + np.arange(geometry.grid_shape[a]) * geometry.voxel_size[a] for a in range(3)]
    p = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    d = p[:, None, :] - xyz[None, :, :]
    inside = np.all(np.abs(d) / np.asarray(geometry.voxel_size) <= 5 * sigma / np.asarray(geometry.voxel_size), axis=2)
    rho = np.sum(z * np.exp(-np.sum(d * d, axis=2) / (2 * sigma ** 2)) * inside, axis=1)
    return (rho * (2 * math.pi) ** -1.5 * sigma ** -3).reshape(geometry.grid_shape)


@pytest.mark.parametrize("voxel", [(0.5, 0.5, 0.5), (0.4, 0.7, 0.55)])
def test_matches_the_analytic_sum(voxel) -> None:
    rng = np.random.default_rng(1)
    xyz = rng.uniform(-3.0, 5.0, (40, 3))
    z = rng.choice([1.0, 6.0, 7.0, 8.0, 16.0], 40)
    geometry = Geometry((23, 17, 19), voxel, (-4.0, -2.5, -3.0))  # some atoms' cubes are clipped by the box
    got = gaussian_sum(geometry, xyz, z, sigma=0.225 * 2.0)
    want = brute_force(geometry, xyz, z, 0.225 * 2.0)
    assert got.dtype == np.float32 and got.shape == geometry.grid_shape
    assert np.max(np.abs(got - want)) <= 1e-6 * want.max()


def test_molmap_grid_and_normalization() -> None:
    rng = np.random.default_rng(2)
    xyz = rng.uniform(0.0, 12.0, (30, 3))
    z = np.full(30, 6.0)
    grid = simulate(xyz, z, resolution=3.0)
    g = grid.geometry
    assert g.voxel_size == (1.0, 1.0, 1.0)  # R/3
    assert np.allclose(g.origin, xyz.min(axis=0) - 9.0)  # padding 3R
    assert g.grid_shape == tuple(math.ceil((h - a + 18.0) / 1.0) for a, h in zip(xyz.min(0), xyz.max(0)))
    # each atom integrates to Z: the voxel sum times the voxel volume is Σ Z (σ = 0.675 voxel is enough)
    assert float(grid.values.sum(dtype=np.float64)) == pytest.approx(z.sum(), rel=2e-3)
    assert SIGMA_FACTOR == pytest.approx(0.22508, abs=1e-5)
    wide = simulate(xyz, z, resolution=3.0, sigma_factor=0.425)  # FWHM = R: lower, smoother peaks
    assert wide.values.max() < grid.values.max()


def test_atoms_off_the_grid_add_nothing() -> None:
    geometry = Geometry((8, 8, 8), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    far = np.array([[30.0, 3.0, 3.0], [-12.0, 3.0, 3.0], [3.0, 3.0, 40.0]])
    assert not gaussian_sum(geometry, far, np.ones(3), sigma=0.5).any()
    near = np.array([[8.5, 3.0, 3.0]])  # just past the last voxel: its cube still reaches the grid
    assert gaussian_sum(geometry, near, np.ones(1), sigma=0.5)[7, 3, 3] > 0


def _write_model(path: Path, xyz: np.ndarray, elements: list[str]) -> None:
    st = gemmi.Structure()
    model = gemmi.Model("1")
    chain = gemmi.Chain("A")
    for i, (p, el) in enumerate(zip(xyz, elements)):
        res = gemmi.Residue()
        res.name, res.seqid = "UNK", gemmi.SeqId(i + 1, " ")
        atom = gemmi.Atom()
        atom.name, atom.element, atom.pos, atom.occ = el, gemmi.Element(el), gemmi.Position(*p), 1.0
        res.add_atom(atom)
        chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    st.write_pdb(str(path))


def test_command_line_writes_the_simulated_map(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    xyz = rng.uniform(0.0, 10.0, (25, 3)).round(3)
    elements = ["C", "N", "O", "S", "C"] * 5
    model = tmp_path / "m.pdb"
    _write_model(model, xyz, elements)
    got_xyz, got_z = read_atoms(model)
    assert np.allclose(got_xyz, xyz, atol=1e-3) and list(got_z[:5]) == [6, 7, 8, 16, 6]

    out = tmp_path / "m.mrc"
    cmd = [sys.executable, "-m", "nemap", "simulate", str(model), str(out), "--resolution", "2.4"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    grid = read_mrc(out)
    want = simulate(got_xyz, got_z, 2.4)
    assert grid.geometry.grid_shape == want.geometry.grid_shape
    assert np.allclose(grid.geometry.origin, want.geometry.origin, atol=1e-4)  # placed on the model
    assert np.allclose(grid.geometry.voxel_size, 0.8, atol=1e-6)
    assert np.array_equal(grid.values, want.values)

    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 1 and "use --force" in again.stderr and "Traceback" not in again.stderr
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\nloop_\n_atom_site.id\n")
    r = subprocess.run(cmd[:4] + [str(bad), str(tmp_path / "b.mrc"), "--resolution", "2"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and str(bad) in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_shared_model_integrates_to_its_electrons(shared_data: Path) -> None:
    model = shared_data / "models_for_simulation" / "5PTI.cif.gz"
    xyz, z = read_atoms(model)
    grid = simulate(xyz, z, resolution=2.0)
    g = molmap_geometry(xyz, 2.0)
    assert grid.geometry == g and len(xyz) > 400
    volume = float(np.prod(g.voxel_size))
    assert float(grid.values.sum(dtype=np.float64)) * volume == pytest.approx(z.sum(), rel=2e-3)
