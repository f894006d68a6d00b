"""Whole simulated maps of a held-out model, as users hand them to ``nemap resolution``: a box with solvent around
a molecule, at a nominal resolution everywhere, with one kind of noise, mask and voxel size (the test cases of
``benchmarks/resolution_models.py``; never used in training).

The molecule: the atoms of a held-out model (``resolution_data.TEST_MODELS``) within RADIUS Å of its centre,
in a cubic box of EDGE Å (solvent all around). Density: ``nemap.resolution.synthetic.levels`` (molmap,
band-limited) at the nominal resolution R on the box's own voxels. Noise, as ``noise_kind``: ``white`` (SD a
fraction of the density's peak, over the whole band: an unfiltered map), ``coloured`` (the same SD, correlated
over 1 Å), ``filtered`` (white, then map and noise low-passed at R), ``clean``, ``postprocessed`` (as deposited
maps are made, ``resolution_data.post_processed``: two half maps of molmap density at LOOK·R, fallen by a B-factor,
plus white noise, their FSC inside the molecule's soft envelope 0.143 at R; their average FSC-weighted, sharpened
and low-passed at R; ``level`` unused). Mask: ``none``, ``soft`` (``resolution_data.envelope``: Gaussian-edged,
about 3 Å beyond the atoms), ``zone`` (0 beyond 3 Å from any atom). Half maps: for ``postprocessed`` the two the
map was made from, for the others the same density with two independent noises of √2 times the map's; never
filtered or weighted (as half maps are deposited), masked as the map is.

``twin`` makes a real map's simulated twin from its deposited model, on its grid and mask, as deposited maps are
made: what the estimators should read on that map were it as sharp as its deposited resolution says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nemap.format.geometry import Geometry, Grid
from nemap.resolution import synthetic
from training.resolution_data import TEST_MODELS, envelope, load_models, low_pass, post_processed

EDGE = 64.0  # Å
RADIUS = 22.0  # Å
LOOK = 0.8  # postprocessed maps: how sharp they look (molmap at LOOK × the resolution)


@dataclass(frozen=True)
class Case:
    resolution: float  # Å, nominal
    noise: str = "white"
    mask: str = "none"
    voxel: float = 1.0  # Å
    level: float = 0.03  # noise SD over the density's peak

    @property
    def label(self) -> str:
        return f"{self.resolution:g} Å, {self.noise} noise, mask {self.mask}, {self.voxel:g} Å voxels"


def molecule(model: str = TEST_MODELS[0]) -> tuple[np.ndarray, np.ndarray]:
    """The atoms (Å, centred) and atomic numbers within RADIUS Å of the model's centre."""
    (xyz, z), = load_models([model])
    keep = np.linalg.norm(xyz, axis=1) <= RADIUS
    return xyz[keep] - xyz[keep].mean(axis=0), z[keep]


def noise_of(case: Case, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit-SD noise of the case's kind (before any low-pass)."""
    if case.noise == "coloured":
        return synthetic.coloured_noise(shape, rng, 1.0 / case.voxel)
    return rng.standard_normal(shape)


def look_density(atoms: tuple[np.ndarray, np.ndarray], shape: tuple[int, ...], origin: np.ndarray, voxel: float,
                 resolution: float) -> np.ndarray:
    """A post-processed map's density before its noise: molmap of ``atoms`` (Å, x, y, z; atomic numbers) at
    LOOK·``resolution`` Å on ``shape`` voxels of ``voxel`` Å from ``origin`` (float64)."""
    return synthetic.levels(*atoms, shape, origin, voxel, np.array([resolution * LOOK]))[0].astype(np.float64)


def simulate(case: Case, seed: int = 0, atoms: tuple[np.ndarray, np.ndarray] | None = None, halves: bool = False
             ) -> tuple[Grid, np.ndarray, tuple[Grid, Grid] | None]:
    """The case's map, the molecular mask (bool: within 2.5 Å of an atom) and, with ``halves``, two half maps."""
    rng = np.random.default_rng(seed)
    xyz, z = atoms if atoms is not None else molecule()
    n = int(round(EDGE / case.voxel))
    shape = (n, n, n)
    origin = -np.full(3, (n - 1) / 2 * case.voxel)
    if case.noise == "postprocessed":  # the map post-processed, its half maps raw (as deposited)
        density = look_density((xyz, z), shape, origin, case.voxel, case.resolution)
        mask = envelope(xyz, shape, origin, case.voxel)
        signal, noise, pair = post_processed(density, mask, case.resolution, case.voxel, rng)
        noisy = [signal + noise, *pair]
    else:
        density = synthetic.levels(xyz, z, shape, origin, case.voxel, np.array([case.resolution]))[0]
        sd = 0.0 if case.noise == "clean" else case.level * float(density.max())
        noises = [sd * noise_of(case, shape, rng) for _ in range(3 if halves else 1)]
        noisy = [density + noises[0]]
        if case.noise == "filtered":  # the map filtered; its half maps are not
            noisy = [low_pass(noisy[0], case.resolution, case.voxel)]
        noisy += [density + 2 ** 0.5 * n for n in noises[1:]]
    near = synthetic.atom_mask(xyz, shape, origin, case.voxel)
    if case.mask != "none":
        cut = (synthetic.atom_mask(xyz, shape, origin, case.voxel, radius=3.0).astype(np.float64)
               if case.mask == "zone" else envelope(xyz, shape, origin, case.voxel))
        noisy = [m * cut for m in noisy]
    geometry = Geometry(shape, (case.voxel,) * 3, tuple(origin))
    grids = [Grid(m.astype(np.float32), geometry) for m in noisy]
    return grids[0], near, (grids[1], grids[2]) if halves else None


def twin(geometry: Geometry, atoms: tuple[np.ndarray, np.ndarray], resolution: float, keep: np.ndarray,
         seed: int = 0) -> Grid:
    """A real map's simulated twin: its deposited model (atoms in Å, x, y, z, in the map's frame; atomic numbers)
    made into a map on the real map's ``geometry`` (cubic voxels) as deposited maps are made (``post_processed``:
    molmap at LOOK·R, half maps whose FSC inside the model's envelope crosses 0.143 at ``resolution`` Å,
    FSC-weighted, sharpened and low-passed at it), then set to 0 where ``keep`` (bool, the real map's grid) is
    False — where the real map was masked."""
    voxel = float(geometry.voxel_size[0])
    if not np.allclose(geometry.voxel_size, voxel):
        raise ValueError("a twin needs cubic voxels")
    shape = tuple(geometry.grid_shape)
    origin = np.asarray(geometry.origin)
    density = look_density(atoms, shape, origin, voxel, resolution)
    mask = envelope(atoms[0], shape, origin, voxel)
    signal, noise, _ = post_processed(density, mask, resolution, voxel, np.random.default_rng(seed))
    return Grid(((signal + noise) * keep).astype(np.float32), geometry)
