"""Training and test data for the learned resolution estimators, made by our own simulator from a seed.

    python -m training.resolution_data --out DIR [--count 4000] [--seed 0] [--split train|test] [--extra-models SDIST]
                                       [--voxel 1] [--resolution-range 2.5 20]

Each sample is a CUBE³ patch at 1 Å per voxel (x, y, z) of a simulated map with exact labels:
- an atomic model (../shared/data/models_for_simulation; TRAIN_MODELS for training, TEST_MODELS never used in
  training; with --extra-models, also the 50 protein chains that the MDAnalysisTests 2.11.0 source archive
  ships for its DSSP tests, ``pip download --no-deps mdanalysistests==2.11.0``, SHA-256 in EXTRA_SHA256),
  randomly rotated, cropped around a random atom (random crops of large complexes) or, with probability
  OFF_CENTRE_FRACTION, 10–50 Å away from it (the molecule's edge, or solvent only: what most patches of a large
  unmasked box hold);
- a base resolution drawn log-uniformly in [LOW, HIGH] Å and a smooth resolution field around it (up to
  ±VARIATION in log R, correlation length 6–14 voxels): every voxel's label is the field's value there
  (molmap blur followed per voxel, ``nemap.resolution.synthetic``);
- noise of one of NOISE_KINDS at a signal-to-noise ratio of 0.3–20 (SD of the signal inside the molecule over the
  noise SD): white over the whole band (an unfiltered map), coloured (correlation 0.5–2 voxels), white with map
  and noise low-passed at the base resolution (a filtered map), or none; then sharpening (B of −100 … 0 Å²,
  SHARPEN_FRACTION) or blurring (0 … 60 Å², BLUR_FRACTION) of map and noise alike, up to the base resolution
  (flat beyond, so noise beyond the resolution is boosted as sharpening boosts it);
- or (``postprocessed``) a map as deposited maps are made, one resolution R everywhere: molmap at LOOK × R (how
  sharp it looks after sharpening), noise per shell as much as a half-map FSC falling to 0.143 at R implies, FSC
  weighting and a low-pass at R (``postprocess``). Its label is R in the deposited sense (where the half maps'
  FSC crosses 0.143), which for such a map is finer than its look: the other kinds label molmap's nominal
  resolution, which for them is where the density's look and its low-pass agree;
- with probability COARSE_FRACTION, sampled at a voxel size v between 1 Å and min(COARSE_MAX, R/2) Å and brought
  to 1 Å as the estimator does (Fourier resampling): the spectrum beyond 1/(2v) Å⁻¹ is removed;
- solvent left as it is (MASK_KINDS "none": a full box, noise everywhere — then the noise is subtracted as the
  estimator subtracts the noise it measures in a map's solvent, ``nemap.resolution.spectral``, here with the
  sample's own noise spectrum) or set to zero outside a soft envelope (``soft``) or outside a hard zone of
  2.5–5 Å around the atoms (``zone``, as deposited maps and ChimeraX's ``volume zone`` do);
- every step in Fourier space above (low-pass, post-processing, B-factor, coarse voxels) on a box MARGIN voxels
  wider each side than the patch, which is then cut from its middle (done on the patch, the transform wrapped
  around its edges and the ringing made low-passed patches look sharper than low-passed maps do);
- labels: local resolution (Å) per voxel, the molecular mask, and the global resolution (median of the local
  resolution inside the mask) with its class (high < 5 Å ≤ medium ≤ 10 Å < low).
Voxel sizes: the set is at 1 Å; the estimator resamples any map to 1 Å in Fourier space (so 2.5 Å is the
finest resolution it can see: LOW; a map of coarser voxels is the COARSE_FRACTION case). With ``--voxel v`` (the
``fine`` model's set: 0.5 Å, 1.25–4 Å) the whole recipe above is in voxels and the molecules are magnified 1/v
times: a patch is then exactly the patch of that many Å at v Å per voxel, resolutions, B-factors, zones and
distances scaled with it (labels stored in Å). ``build(edge=64, keep_noise=True)`` draws the same recipe as
64³ maps with their noise left in (``benchmarks/resolution_models.py`` reads them end to end). Writes DIR/SPLIT.npz
(float16 maps, float16 labels, bool masks, and per sample its noise and mask kind, voxel size, base
resolution, SNR (NaN for post-processed maps), B-factor and look (0 unless post-processed)) and DIR/SPLIT.json
(recipe).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
from scipy import ndimage
from scipy.spatial.transform import Rotation

from nemap.io.models import read_model
from nemap.resolution import spectral, synthetic
from nemap.resolution.fsc import frequency_squared

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "models_for_simulation"
TRAIN_MODELS = ["1hvr.pdb", "4E43.pdb", "19hc.pdb.gz", "6msm.pdb.bz2", "6z6u.pdb", "5PTI.cif.gz"]
TEST_MODELS = ["1a28.pdb.gz", "3KPR.cif.gz"]
CUBE = 32
MARGIN = 8  # voxels around the patch in which its Fourier-space steps are done (``make_sample``)
LOW, HIGH = 2.5, 20.0
VARIATION = 0.35


def ladder(low: float, high: float) -> np.ndarray:
    """The resolutions (voxels) of the molmap levels a field between ``low`` and ``high`` is interpolated from."""
    return np.exp(np.linspace(np.log(low * 0.7), np.log(high * 1.45), 12))


COARSE_FRACTION = 0.3
COARSE_MAX = 3.0  # Å: the coarsest voxels simulated (never above R/2)
EXTRA_SDIST = "mdanalysistests-2.11.0.tar.gz"
EXTRA_SHA256 = "5edeb5b01805da728b202103aa8d2b5974a37f1005ab1fe0150ed7d59702d2ea"
EXTRA_MEMBERS = "MDAnalysisTests/data/dssp/"
EXTRA_SKIP = ("1mr1D_failing.pdb.gz", "wrong_hydrogens.pdb.gz")  # a duplicate chain; a 37-atom fragment


def extra_models(sdist: Path, folder: Path) -> list[str]:
    """Unpack the DSSP test chains of the MDAnalysisTests source archive into ``folder`` (checked by SHA-256);
    their file names."""
    import hashlib
    import tarfile

    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != EXTRA_SHA256:
        raise SystemExit(f"{sdist}: SHA-256 {digest} is not that of {EXTRA_SDIST}")
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if EXTRA_MEMBERS in member.name and name.endswith(".pdb.gz") and name not in EXTRA_SKIP:
                (folder / name).write_bytes(tar.extractfile(member).read())
                names.append(name)
    return sorted(names)
def load_models(names: list[str], folder: Path = SHARED_MODELS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Heavy atoms (Å, centred) and atomic numbers of each model (a name may be a full path)."""
    out = []
    for name in names:
        atoms = read_model(folder / name)
        keep = ~atoms.is_hydrogen
        xyz = atoms.xyz[keep]
        out.append((xyz - xyz.mean(axis=0), atoms.atomic_number[keep]))
    return out


SEED_RESOLUTIONS = (2.5, 7.5, 12.5)  # Å: the seed paper's (002) three simulated resolutions


NOISE_KINDS = ("white", "coloured", "filtered", "clean", "postprocessed")  # filtered: noise and map low-passed at
# the resolution; postprocessed: as deposited maps are made (``postprocess``)
NOISE_ODDS = (0.25, 0.2, 0.15, 0.1, 0.3)
LOOK = (0.5, 1.3)  # post-processed maps: molmap at this times the resolution, before the FSC weighting
MASK_KINDS = ("none", "soft", "zone")  # none: a full box, noise everywhere
MASK_ODDS = (0.45, 0.25, 0.3)
OFF_CENTRE_FRACTION, OFF_CENTRE_A = 0.2, (10.0, 50.0)  # patches centred this far (Å) from an atom
SHARPEN_FRACTION, BLUR_FRACTION = 0.3, 0.2  # B-factors of −(0–100) / +(0–60) Å² applied up to the resolution


def make_sample(models: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, seed_protocol: bool = False,
                low: float = LOW, high: float = HIGH, edge: int = CUBE, keep_noise: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(map, local resolution, mask, what was done), each array ``edge``³ (default CUBE³: a patch), every length in
    voxels (Å for models at their own size; ``build`` magnifies them for finer voxels); base resolutions
    log-uniform in [``low``, ``high``] voxels. ``keep_noise``: an unmasked map keeps its noise (a map as a user
    has it, for the estimator to measure) instead of having it subtracted as the estimator would. ``seed_protocol``:
    as the seed paper simulated its maps — one of SEED_RESOLUTIONS everywhere, no noise, no B-factor, no mask, 1 Å
    voxels. Every step in Fourier space (low-pass, post-processing, B-factor, coarse voxels) is done on a box MARGIN
    voxels wider each side than the patch and the patch cut from its middle: done on the patch itself, it wraps
    around its edges, and the ringing made a low-passed patch look sharper than a low-passed map does (the model
    trained on it read low-passed maps 1.2–1.3× coarse)."""
    xyz, z = models[rng.integers(len(models))]
    xyz = Rotation.random(random_state=rng.integers(2**31)).apply(xyz)
    centre = xyz[rng.integers(len(xyz))] + rng.normal(0, 3.0, 3)
    home = centre  # on the molecule: an off-centre patch takes its noise level from here
    off_centre = not seed_protocol and rng.uniform() < OFF_CENTRE_FRACTION  # the molecule's edge, or solvent only
    if off_centre:
        step = rng.normal(size=3)
        centre = centre + step / np.linalg.norm(step) * rng.uniform(*OFF_CENTRE_A)
    if seed_protocol:
        origin, near = _around(xyz, centre, edge)
        r = float(rng.choice(SEED_RESOLUTIONS))
        m, f, k = _seed_sample(xyz[near], z[near], r, (edge,) * 3, origin)
        return m, f, k, {"noise": "clean", "mask": "none", "voxel": 1.0, "base": r, "snr": float("inf")}
    work = edge + 2 * MARGIN
    origin, near = _around(xyz, centre, work)
    shape = (work,) * 3
    base = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    kind = NOISE_KINDS[rng.choice(len(NOISE_KINDS), p=NOISE_ODDS)]
    mask = synthetic.atom_mask(xyz[near], shape, origin, 1.0)
    if kind == "postprocessed":
        field, signal, noise, info = _postprocessed(xyz, z, near, origin, home, base, rng, off_centre, work)
    else:
        spread = float(np.exp(rng.uniform(0, VARIATION)))
        field = synthetic.smooth_field(shape, rng, max(low, base / spread), min(high * 1.3, base * spread),
                                       float(rng.uniform(6, 14)))
        steps = ladder(low, high)
        used = steps[max(0, np.searchsorted(steps, field.min()) - 1):np.searchsorted(steps, field.max()) + 1]
        levels = synthetic.levels(xyz[near], z[near], shape, origin, 1.0, used)
        signal = synthetic.follow_field(levels, used, field)
        reference = _signal_sd(xyz, z, home, work) if off_centre else None  # the SD the noise is scaled by
        signal, noise, info = _noise(kind, signal, mask, base, rng, reference)
        signal, noise, info["bfactor"] = _bfactor(signal, noise, base, rng)
    info["voxel"] = 1.0
    if rng.uniform() < COARSE_FRACTION and base > 2.0:
        info["voxel"] = float(rng.uniform(1.0, min(COARSE_MAX, base / 2)))
        signal, noise = nyquist_cut(signal, info["voxel"]), nyquist_cut(noise, info["voxel"])
    patch = (slice(MARGIN, MARGIN + edge),) * 3
    signal, noise, field, mask = signal[patch], noise[patch], field[patch], mask[patch]
    origin = origin + MARGIN
    info["mask"] = MASK_KINDS[rng.choice(len(MASK_KINDS), p=MASK_ODDS)]
    noisy = signal + noise
    if info["mask"] != "none":
        noisy = noisy * solvent_mask(xyz[near], mask, (edge,) * 3, origin, rng, info["mask"])
    elif not keep_noise:  # the estimator's first step on a map with solvent: its noise subtracted
        noisy = spectral.subtract_noise(noisy, spectral.shell_power(noise, 1.0), 1.0)
    info["base"] = base
    return noisy.astype(np.float32), field.astype(np.float32), mask, info


def _around(xyz: np.ndarray, centre: np.ndarray, edge: int) -> tuple[np.ndarray, np.ndarray]:
    """The origin (Å) of the box of ``edge`` voxels centred at ``centre`` and the atoms (bool) that reach into it."""
    return centre - (edge - 1) / 2, np.all(np.abs(xyz - centre) < edge / 2 + 20, axis=1)


def _centre_signal(xyz: np.ndarray, z: np.ndarray, centre: np.ndarray, work: int, resolution: float = 6.0
                   ) -> np.ndarray:
    """The signal (molmap at ``resolution`` Å) of the ``work``³ box centred at ``centre`` (Å, x, y, z)."""
    origin, near = _around(xyz, centre, work)
    return synthetic.levels(xyz[near], z[near], (work,) * 3, origin, 1.0, np.array([resolution]))[0]


def _signal_sd(xyz: np.ndarray, z: np.ndarray, centre: np.ndarray, work: int) -> float:
    """The SD inside the molecular mask of the ``work``³ box centred at ``centre`` at 6 Å (a scale for the noise of
    a patch that holds little or no molecule)."""
    signal = _centre_signal(xyz, z, centre, work)
    origin, near = _around(xyz, centre, work)
    mask = synthetic.atom_mask(xyz[near], (work,) * 3, origin, 1.0)
    return float(signal[mask].std()) if mask.any() else float(signal.std())


def _noise(kind: str, signal: np.ndarray, mask: np.ndarray, base: float, rng: np.random.Generator,
           reference: float | None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The signal and a noise of ``kind`` (white, coloured, filtered, clean) at an SNR of 0.3–20 (signal SD inside
    the mask, or ``reference`` when given, over the noise SD; before any low-pass)."""
    inside = signal[mask] if mask.any() else signal.ravel()
    scale = reference if reference is not None else float(inside.std())
    snr = float(np.exp(rng.uniform(np.log(0.3), np.log(20))))
    if kind == "clean":
        return signal, np.zeros_like(signal), {"noise": kind, "snr": float("inf")}
    unit = (synthetic.coloured_noise(signal.shape, rng, float(rng.uniform(0.5, 2.0))) if kind == "coloured"
            else rng.standard_normal(signal.shape).astype(np.float32))
    noise = unit * (scale + 1e-6) / snr
    if kind == "filtered":
        signal, noise = low_pass(signal, base), low_pass(noise, base)
    return signal, noise, {"noise": kind, "snr": snr}


def _postprocessed(xyz: np.ndarray, z: np.ndarray, near: np.ndarray, origin: np.ndarray, home: np.ndarray,
                   base: float, rng: np.random.Generator, off_centre: bool, work: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """A patch of a post-processed map (``post_processed``) at ``base`` Å everywhere: molmap at base × LOOK (how
    sharp the density looks once sharpened); an off-centre patch gets the noise of the patch at ``home`` (on the
    molecule), and the mask share of that patch. Arrays ``work``³."""
    shape = (work,) * 3
    look = float(rng.uniform(*LOOK))
    signal = synthetic.levels(xyz[near], z[near], shape, origin, 1.0, np.array([base * look]))[0].astype(np.float64)
    reference = _centre_signal(xyz, z, home, work, base * look) if off_centre else None
    at, atoms = (origin, near) if not off_centre else _around(xyz, home, work)
    signal, noise, _ = post_processed(signal, envelope(xyz[atoms], shape, at, 1.0), base, 1.0, rng, reference)
    info = {"noise": "postprocessed", "snr": float("nan"), "bfactor": 0.0, "look": look}
    return np.full(shape, base, np.float32), signal, noise, info


def _bfactor(signal: np.ndarray, noise: np.ndarray, base: float, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, float]:
    """Sharpening (B < 0) or blurring (B > 0) of map and noise alike, up to the resolution (flat beyond)."""
    u = rng.uniform()
    b = (-rng.uniform(0, 100) if u < SHARPEN_FRACTION else
         rng.uniform(0, 60) if u < SHARPEN_FRACTION + BLUR_FRACTION else 0.0)
    if b == 0:
        return signal, noise, 0.0
    return _apply_bfactor(signal, b, base), _apply_bfactor(noise, b, base), float(b)


def low_pass(values: np.ndarray, resolution: float, voxel: float = 1.0, edge: float | None = None) -> np.ndarray:
    """``values`` (``voxel`` Å voxels) low-passed at ``resolution`` Å: a raised-cosine edge from 0.9/R to 1.1/R
    Å⁻¹, or with ``edge`` (Å⁻¹) from 1/R − edge to 1/R + edge (RELION's post-processing: one Fourier shell)."""
    return scipy.fft.irfftn(scipy.fft.rfftn(values) * low_pass_factor(values.shape, resolution, voxel, edge),
                            s=values.shape)


def low_pass_factor(shape: tuple[int, ...], resolution: float, voxel: float = 1.0, edge: float | None = None
                    ) -> np.ndarray:
    """``low_pass``'s raised-cosine factor on the real-FFT half space of ``shape``."""
    s = np.sqrt(frequency_squared(shape, voxel))
    if edge is None:
        t = np.clip((s * resolution - 0.9) / 0.2, 0, 1)
    else:
        t = np.clip((s - 1.0 / resolution + edge) / (2 * edge), 0, 1)
    return 0.5 * (1 + np.cos(np.pi * t))


FSC_AT_R = 0.143  # the half-map FSC at a map's resolution (the deposited convention)
HALF_MAP_B = 8.0  # Å² per Å² of resolution: a post-processed map's half maps fall by a B-factor of HALF_MAP_B·R²


def envelope(xyz: np.ndarray, shape: tuple[int, ...], origin: np.ndarray, voxel: float) -> np.ndarray:
    """The molecule's soft envelope on ``shape`` voxels of ``voxel`` Å from ``origin`` (Å, x, y, z): 1 within 4 Å
    of an atom (``xyz``, Å), Gaussian-edged (SD 1.5 Å), 0 far away (float64): a mask as RELION's are made."""
    inside = synthetic.atom_mask(xyz, shape, origin, voxel, radius=4.0).astype(float)
    return np.clip(ndimage.gaussian_filter(inside, 1.5 / voxel) * 1.2, 0, 1)


def post_processed(density: np.ndarray, mask: np.ndarray, resolution: float, voxel: float, rng: np.random.Generator,
                   reference: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """A map made from the clean ``density`` (``voxel`` Å voxels) as deposited maps are (RELION's post-processing):
    (its signal, its noise, the two half maps it was made from); the map is signal + noise.

    Each half is the density fallen by a B-factor of HALF_MAP_B·R² (as refined half maps are) plus white noise of
    the variance that puts their FSC inside a soft mask at FSC_AT_R at 1/``resolution`` Å⁻¹: σ² = S·(1 − FSC_AT_R)
    / (FSC_AT_R·f), S the least power per shell of the fallen density (of ``reference``'s, when given: the patch on
    the molecule, for one beside it) up to 1/R (a small molecule's spectrum has dips), f the mean square of
    ``mask`` (soft, 0–1: ``envelope``); so their FSC falls as the signal does, not the noise. The map is their
    average weighted per shell by √(2·FSC/(1 + FSC)) (that FSC: S / (S + f·σ²)), sharpened by the B-factor the
    halves fell by (what RELION's Guinier fit finds) and low-passed at the resolution over one Fourier shell either
    side."""
    spacing = 1.0 / (max(density.shape) * voxel)
    index, _ = spectral.shell_index(density.shape, voxel, spacing)
    s2 = frequency_squared(density.shape, voxel)
    fall = np.exp(-HALF_MAP_B * resolution ** 2 * s2 / 4)
    fallen = scipy.fft.irfftn(scipy.fft.rfftn(density) * fall, s=density.shape)
    scale = fallen if reference is None else scipy.fft.irfftn(scipy.fft.rfftn(reference) * fall, s=density.shape)
    power = spectral.shell_power(scale, voxel, spacing=spacing)
    at_r = 1.0 / (resolution * spacing)  # shells
    floor = min(float(np.interp(at_r, np.arange(len(power)), power)), float(power[1:int(at_r) + 1].min()))
    share = max(float(np.mean(mask ** 2)), 1e-3)
    variance = floor * (1 - FSC_AT_R) / (FSC_AT_R * share)
    noises = [np.sqrt(variance) * rng.standard_normal(density.shape) for _ in range(2)]
    fsc = power / (power + share * variance)
    weight = np.sqrt(2 * fsc / (1 + fsc))[np.minimum(index, len(power) - 1)]
    sharpen = np.exp(HALF_MAP_B * resolution ** 2 * np.minimum(s2, resolution ** -2) / 4)  # flat beyond 1/R
    factor = weight * sharpen * low_pass_factor(density.shape, resolution, voxel, edge=spacing)

    def made(v: np.ndarray) -> np.ndarray:
        return scipy.fft.irfftn(scipy.fft.rfftn(v) * factor, s=v.shape)

    return made(fallen), made((noises[0] + noises[1]) / 2), (fallen + noises[0], fallen + noises[1])


def _seed_sample(xyz: np.ndarray, z: np.ndarray, resolution: float, shape: tuple[int, int, int],
                 origin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    signal = synthetic.levels(xyz, z, shape, origin, 1.0, np.array([resolution]))[0]
    return signal, np.full(shape, resolution, np.float32), synthetic.atom_mask(xyz, shape, origin, 1.0)


def solvent_mask(xyz: np.ndarray, mask: np.ndarray, shape: tuple[int, int, int], origin: np.ndarray,
                 rng: np.random.Generator, kind: str) -> np.ndarray:
    """A soft envelope around the molecular mask (``soft``), or a hard zone of 2.5–5 Å around the atoms
    (``zone``)."""
    if kind == "soft":
        return np.clip(ndimage.gaussian_filter(mask.astype(np.float32), 1.5) * 1.5, 0, 1)
    return synthetic.atom_mask(xyz, shape, origin, 1.0, radius=float(rng.uniform(2.5, 5.0))).astype(np.float32)


def nyquist_cut(values: np.ndarray, voxel: float) -> np.ndarray:
    """A 1 Å map as it is after sampling at ``voxel`` Å and Fourier resampling to 1 Å: every frequency
    beyond 1/(2·voxel) Å⁻¹ along any axis removed."""
    f = scipy.fft.rfftn(values)
    axes = [np.abs(np.fft.fftfreq(n)) for n in values.shape[:2]] + [np.fft.rfftfreq(values.shape[2])]
    keep = ((axes[0][:, None, None] <= 0.5 / voxel) & (axes[1][None, :, None] <= 0.5 / voxel)
            & (axes[2][None, None, :] <= 0.5 / voxel))
    return scipy.fft.irfftn(f * keep, s=values.shape)


def _apply_bfactor(values: np.ndarray, bfactor: float, resolution: float) -> np.ndarray:
    """exp(−B s²/4) applied up to ``resolution`` Å (s in Å⁻¹ at 1 Å voxels), flat beyond."""
    f = scipy.fft.rfftn(values)
    s2 = frequency_squared(values.shape)
    return scipy.fft.irfftn(f * np.exp(-bfactor * np.minimum(s2, 1 / resolution ** 2) / 4), s=values.shape)


def build(count: int, seed: int, split: str, extra: list[Path] | None = None, seed_protocol: bool = False,
          voxel: float = 1.0, resolution_range: tuple[float, float] = (LOW, HIGH), edge: int = CUBE,
          keep_noise: bool = False) -> dict[str, np.ndarray]:
    """``count`` samples of the split (sample i drawn from the generator seeded by (seed, i), on every core);
    ``extra`` model files join the training models; ``seed_protocol``: see ``make_sample``. Patches of ``voxel`` Å
    (the recipe is in voxels: a finer voxel is the molecule magnified, so every length the recipe draws is that
    many voxels) with base resolutions in ``resolution_range`` Å; labels, base resolutions and voxel sizes in Å.
    ``edge``, ``keep_noise``: see ``make_sample`` (the benchmark's maps drawn by this recipe: 64³, noise left
    in)."""
    import contextlib
    from concurrent.futures import ProcessPoolExecutor

    from nemap.machine import cores

    names = TRAIN_MODELS + [str(p) for p in extra or []] if split == "train" else TEST_MODELS
    maps = np.empty((count,) + (edge,) * 3, np.float16)
    local = np.empty_like(maps)
    masks = np.empty((count,) + (edge,) * 3, bool)
    infos = []
    t0 = time.perf_counter()
    chunks = [range(a, min(count, a + 100)) for a in range(0, count, 100)]
    workers = min(cores(), len(chunks))
    low, high = (r / voxel for r in resolution_range)
    jobs = [(names, seed, chunk, seed_protocol, voxel, low, high, edge, keep_noise) for chunk in chunks]
    with ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        for chunk, samples in zip(chunks, (pool.map if pool else map)(_samples, jobs)):
            for i, (m, r, k, info) in zip(chunk, samples):
                maps[i] = normalize(m)
                local[i], masks[i] = r * voxel, k
                infos.append({**info, **{key: info[key] * voxel ** power for key, power in UNITS.items()
                                         if key in info}})
            if chunk[-1] + 1 == count or (chunk[-1] + 1) % 1000 == 0:
                print(f"{split}: {chunk[-1] + 1}/{count} samples, {time.perf_counter() - t0:.0f} s", file=sys.stderr,
                      flush=True)
    glob = np.array([np.median(local[i][masks[i]]) if masks[i].any() else np.median(local[i]) for i in range(count)])
    return {"maps": maps, "local": local, "masks": masks, "global": glob.astype(np.float32),
            "noise_kind": np.array([NOISE_KINDS.index(x["noise"]) for x in infos], np.int8),
            "mask_kind": np.array([MASK_KINDS.index(x["mask"]) for x in infos], np.int8),
            **{key: np.array([x.get(key, 0.0) for x in infos], np.float32) for key in ("voxel", "base", "snr",
                                                                                        "bfactor", "look")}}


UNITS = {"voxel": 1, "base": 1, "bfactor": 2}  # info keys in voxels (or voxels²): × voxel size^power is Å (Å²)
_MODELS: dict[tuple[str, ...], list] = {}  # per process: the models of a split, loaded once


def _samples(job: tuple[list[str], int, range, bool, float, float, float, int, bool]) -> list:
    names, seed, chunk, seed_protocol, voxel, low, high, edge, keep_noise = job
    if tuple(names) not in _MODELS:
        _MODELS[tuple(names)] = load_models(names)
    models = [(xyz / voxel, z) for xyz, z in _MODELS[tuple(names)]] if voxel != 1.0 else _MODELS[tuple(names)]
    return [make_sample(models, np.random.default_rng([seed, i]), seed_protocol, low, high, edge, keep_noise)
            for i in chunk]


def normalize(values: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation (what the estimator does to every patch)."""
    v = values.astype(np.float64)
    return ((v - v.mean()) / (v.std() + 1e-8)).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=["train", "test"], default="train")
    ap.add_argument("--voxel", type=float, default=1.0, help="the patches' voxel size (Å): the recipe in voxels, the "
                    "molecules magnified (default 1)")
    ap.add_argument("--resolution-range", type=float, nargs=2, default=(LOW, HIGH), metavar=("LOW", "HIGH"),
                    help=f"base resolutions (Å; default {LOW:g} {HIGH:g})")
    ap.add_argument("--extra-models", type=Path, default=None, metavar="SDIST",
                    help=f"{EXTRA_SDIST}: add its DSSP test chains to the training models")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    extra = extra_models(args.extra_models, args.out / "models") if args.extra_models and args.split == "train" else []
    data = build(args.count, args.seed, args.split, [args.out / "models" / n for n in extra], voxel=args.voxel,
                 resolution_range=tuple(args.resolution_range))
    np.savez(args.out / f"{args.split}.npz", **data)
    recipe = {"command": " ".join(["python -m training.resolution_data", *(sys.argv[1:] if argv is None else argv)]),
              "count": args.count, "seed": args.seed, "split": args.split, "cube": CUBE, "margin": MARGIN,
              "voxel_size": args.voxel, "resolution_range": list(args.resolution_range), "variation": VARIATION,
              "noise_kinds": dict(zip(NOISE_KINDS, NOISE_ODDS)), "mask_kinds": dict(zip(MASK_KINDS, MASK_ODDS)),
              "postprocessed": {"look": LOOK, "half_map_b_per_r2": HALF_MAP_B, "fsc_at_resolution": FSC_AT_R},
              "sharpen_fraction": SHARPEN_FRACTION, "blur_fraction": BLUR_FRACTION,
              "coarse_fraction": COARSE_FRACTION, "coarse_max": COARSE_MAX, "noise_subtracted": "mask none",
              "off_centre": {"fraction": OFF_CENTRE_FRACTION, "distance": OFF_CENTRE_A},
              "models": TRAIN_MODELS if args.split == "train" else TEST_MODELS,
              "extra_models": {"archive": EXTRA_SDIST, "sha256": EXTRA_SHA256, "files": extra} if extra else None}
    (args.out / f"{args.split}.json").write_text(json.dumps(recipe, indent=1))


if __name__ == "__main__":
    main()
