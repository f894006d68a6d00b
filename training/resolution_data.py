"""Training and test data for the learned resolution estimators, made by our own simulator from a seed.

    python -m training.resolution_data --out DIR [--count 4000] [--seed 0] [--split train|test] [--extra-models SDIST]

Each sample is a CUBE³ patch at 1 Å per voxel (x, y, z) of a simulated map with exact labels:
- an atomic model (../shared/data/models_for_simulation; TRAIN_MODELS for training, TEST_MODELS never used in
  training; with --extra-models, also the 50 protein chains that the MDAnalysisTests 2.11.0 source archive
  ships for its DSSP tests, ``pip download --no-deps mdanalysistests==2.11.0``, SHA-256 in EXTRA_SHA256),
  randomly rotated, cropped around a random atom (random crops of large complexes);
- a base resolution drawn log-uniformly in [LOW, HIGH] Å and a smooth resolution field around it (up to
  ±VARIATION in log R, correlation length 6–14 voxels): every voxel's label is the field's value there
  (molmap blur followed per voxel, ``nemap.resolution.synthetic``);
- a B-factor (sharpening or blurring) of −30 … +40 Å² applied to the signal up to 2 Å;
- coloured noise (correlation 0.5–2 voxels) at a signal-to-noise ratio of 0.3–20 (std of the signal inside the
  molecule over the noise std);
- with probability MASKED_FRACTION, solvent masked to zero: half of these outside a soft envelope, half outside
  a hard zone of 2.5–5 Å around the atoms (as deposited maps and ChimeraX's ``volume zone`` do);
- with probability COARSE_FRACTION, sampled at a voxel size v between 1 Å and min(1.8 Å, R/2) and brought to
  1 Å as the estimator does (Fourier resampling): the spectrum beyond 1/(2v) Å⁻¹ is removed;
- labels: local resolution (Å) per voxel, the molecular mask, and the global resolution (median of the local
  resolution inside the mask) with its class (high < 5 Å ≤ medium ≤ 10 Å < low).
Voxel sizes: the set is at 1 Å; the estimator resamples any map to 1 Å in Fourier space (so 2.5 Å is the
finest resolution it can see: LOW; a map of coarser voxels is the COARSE_FRACTION case). Writes DIR/SPLIT.npz
(float16 maps, float16 labels, bool masks) and DIR/SPLIT.json (recipe).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft
from scipy import ndimage
from scipy.spatial.transform import Rotation

from nemap.io.models import read_model
from nemap.resolution import synthetic
from nemap.resolution.fsc import frequency_squared

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "models_for_simulation"
TRAIN_MODELS = ["1hvr.pdb", "4E43.pdb", "19hc.pdb.gz", "6msm.pdb.bz2", "6z6u.pdb", "5PTI.cif.gz"]
TEST_MODELS = ["1a28.pdb.gz", "3KPR.cif.gz"]
CUBE = 32
LOW, HIGH = 2.5, 15.0
VARIATION = 0.35
LADDER = np.exp(np.linspace(np.log(LOW * 0.7), np.log(HIGH * 1.45), 12))
MASKED_FRACTION = 0.4
COARSE_FRACTION = 0.3
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


def make_sample(models: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, seed_protocol: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(map, local resolution Å, mask), each CUBE³. ``seed_protocol``: as the seed paper simulated its maps —
    one of SEED_RESOLUTIONS everywhere, no noise, no B-factor, no mask, 1 Å voxels."""
    xyz, z = models[rng.integers(len(models))]
    xyz = Rotation.random(random_state=rng.integers(2**31)).apply(xyz)
    centre = xyz[rng.integers(len(xyz))] + rng.normal(0, 3.0, 3)
    shape = (CUBE,) * 3
    origin = centre - (CUBE - 1) / 2
    near = np.all(np.abs(xyz - centre) < CUBE / 2 + 20, axis=1)
    if seed_protocol:
        return _seed_sample(xyz[near], z[near], float(rng.choice(SEED_RESOLUTIONS)), shape, origin)
    base = float(np.exp(rng.uniform(np.log(LOW), np.log(HIGH))))
    spread = float(np.exp(rng.uniform(0, VARIATION)))
    field = synthetic.smooth_field(shape, rng, max(LOW, base / spread), min(HIGH * 1.3, base * spread),
                                   float(rng.uniform(6, 14)))
    used = LADDER[max(0, np.searchsorted(LADDER, field.min()) - 1):np.searchsorted(LADDER, field.max()) + 1]
    bfactor = float(rng.uniform(-30, 40))
    levels = synthetic.levels(xyz[near], z[near], shape, origin, 1.0, used)
    signal = synthetic.follow_field(levels, used, field)
    signal = _apply_bfactor(signal, bfactor)
    mask = synthetic.atom_mask(xyz[near], shape, origin, 1.0)
    inside = signal[mask] if mask.any() else signal.ravel()
    snr = float(np.exp(rng.uniform(np.log(0.3), np.log(20))))
    noisy = signal + synthetic.coloured_noise(shape, rng, float(rng.uniform(0.5, 2.0))) * (inside.std() + 1e-6) / snr
    if rng.uniform() < COARSE_FRACTION and base > 2.0:
        noisy = nyquist_cut(noisy, float(rng.uniform(1.0, min(1.8, base / 2))))
    if rng.uniform() < MASKED_FRACTION:
        noisy = noisy * solvent_mask(xyz[near], mask, shape, origin, rng)
    return noisy.astype(np.float32), field.astype(np.float32), mask


def _seed_sample(xyz: np.ndarray, z: np.ndarray, resolution: float, shape: tuple[int, int, int],
                 origin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    signal = synthetic.levels(xyz, z, shape, origin, 1.0, np.array([resolution]))[0]
    return signal, np.full(shape, resolution, np.float32), synthetic.atom_mask(xyz, shape, origin, 1.0)


def solvent_mask(xyz: np.ndarray, mask: np.ndarray, shape: tuple[int, int, int], origin: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """A soft envelope around the molecular mask, or a hard zone of 2.5–5 Å around the atoms (half each)."""
    if rng.uniform() < 0.5:
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


def _apply_bfactor(values: np.ndarray, bfactor: float) -> np.ndarray:
    """exp(−B s²/4) applied up to 2 Å (s in Å⁻¹ at 1 Å voxels), flat beyond."""
    f = scipy.fft.rfftn(values)
    s2 = frequency_squared(values.shape)
    return scipy.fft.irfftn(f * np.exp(-bfactor * np.minimum(s2, 0.25) / 4), s=values.shape)


def build(count: int, seed: int, split: str, extra: list[Path] | None = None, seed_protocol: bool = False
          ) -> dict[str, np.ndarray]:
    """``count`` samples of the split; ``extra`` model files join the training models; ``seed_protocol``: see
    ``make_sample``."""
    rng = np.random.default_rng(seed)
    models = load_models(TRAIN_MODELS + [str(p) for p in extra or []] if split == "train" else TEST_MODELS)
    maps = np.empty((count,) + (CUBE,) * 3, np.float16)
    local = np.empty_like(maps)
    masks = np.empty((count,) + (CUBE,) * 3, bool)
    t0 = time.perf_counter()
    for i in range(count):
        m, r, k = make_sample(models, rng, seed_protocol)
        maps[i] = normalize(m)
        local[i], masks[i] = r, k
        if (i + 1) % 500 == 0:
            print(f"{split}: {i + 1}/{count} samples, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    glob = np.array([np.median(local[i][masks[i]]) if masks[i].any() else np.median(local[i]) for i in range(count)])
    return {"maps": maps, "local": local, "masks": masks, "global": glob.astype(np.float32)}


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
    ap.add_argument("--extra-models", type=Path, default=None, metavar="SDIST",
                    help=f"{EXTRA_SDIST}: add its DSSP test chains to the training models")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    extra = extra_models(args.extra_models, args.out / "models") if args.extra_models and args.split == "train" else []
    data = build(args.count, args.seed, args.split, [args.out / "models" / n for n in extra])
    np.savez(args.out / f"{args.split}.npz", **data)
    recipe = {"count": args.count, "seed": args.seed, "split": args.split, "cube": CUBE, "voxel_size": 1.0,
              "resolution_range": [LOW, HIGH], "variation": VARIATION, "masked_fraction": MASKED_FRACTION,
              "coarse_fraction": COARSE_FRACTION,
              "models": TRAIN_MODELS if args.split == "train" else TEST_MODELS,
              "extra_models": {"archive": EXTRA_SDIST, "sha256": EXTRA_SHA256, "files": extra} if extra else None}
    (args.out / f"{args.split}.json").write_text(json.dumps(recipe, indent=1))


if __name__ == "__main__":
    main()
