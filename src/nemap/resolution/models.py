"""Learned resolution estimators (PyTorch) and their weight files (HDF5: no pickles).

The seed paper's three (002, scaled to a 2-core CPU and a 10 MB budget; each class says how): ``dnn`` and
``cnn3d`` classify a patch as high (< 5 Å), medium (5–10 Å) or low (> 10 Å) resolution; ``unet10`` classifies
every voxel into ten resolution bins. ``local`` (the default, CryoRes-style): a small 3D U-Net on CUBE³ patches at 1
Å per voxel that predicts, per
voxel, the local resolution (log Å) and the molecular mask (logit), and from its deepest features the patch's
global resolution (log Å); trained with L_global + λ·L_local + L_mask on simulated maps with exact labels
(training/resolution_data.py, training/train_resolution.py).

A weight file holds one dataset per parameter (float32, named as in the module's state dict) and root
attributes: ``model`` (the architecture's name), ``config`` (JSON of its constructor arguments), ``recipe``
(JSON: training data, seed, steps, time, figures) and ``sha256`` (of the parameters, in name order, as
little-endian float32), checked on loading.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from nemap.errors import FormatError

CUBE = 32  # voxels per patch edge, 1 Å each
WEIGHTS = Path(__file__).resolve().parent / "weights"


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv3d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class LocalResolutionNet(nn.Module):
    """Map patch [B, 1, n, n, n] (zero mean, unit std) → local log-resolution [B, n, n, n], mask logits
    [B, n, n, n] and global log-resolution [B]; n a multiple of 4."""

    def __init__(self, width: int = 8):
        super().__init__()
        w = width
        self.enc1, self.enc2, self.enc3 = _block(1, w), _block(w, 2 * w), _block(2 * w, 4 * w)
        self.dec2, self.dec1 = _block(6 * w, 2 * w), _block(3 * w, w)
        self.local = nn.Conv3d(w, 1, 1)
        self.mask = nn.Conv3d(w, 1, 1)
        self.glob = nn.Sequential(nn.Linear(4 * w, 4 * w), nn.ReLU(inplace=True), nn.Linear(4 * w, 1))
        self.offset = float(np.log(6.0))  # outputs are log Å around 6 Å

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e1 = self.enc1(x)
        e2 = self.enc2(nn.functional.max_pool3d(e1, 2))
        e3 = self.enc3(nn.functional.max_pool3d(e2, 2))
        d2 = self.dec2(torch.cat([nn.functional.interpolate(e3, scale_factor=2.0, mode="trilinear"), e2], 1))
        d1 = self.dec1(torch.cat([nn.functional.interpolate(d2, scale_factor=2.0, mode="trilinear"), e1], 1))
        g = self.glob(e3.mean(dim=(2, 3, 4)))[:, 0]
        return self.local(d1)[:, 0] + self.offset, self.mask(d1)[:, 0], g + self.offset


LOCAL_SMOOTH = 2.0  # voxels (the model's): SD of the Gaussian a patch's local log-resolution is smoothed by
LOCAL_TO_GLOBAL = 0.5  # then taken this far (in log Å) towards the patch's global head


def local_map(log_local: np.ndarray, log_global: np.ndarray) -> np.ndarray:
    """The local log-resolution a ``LocalResolutionNet`` reports: its local head, [B, n, n, n] patches or one map's
    field of them (the last three axes x, y, z), smoothed by a Gaussian of LOCAL_SMOOTH voxels (edges replicated),
    then blended halfway with its global head ([B], or the map's field of patch heads; log Å both; float32). The
    local head's voxel-to-voxel detail is mostly error: chosen on 400 fresh patches of the training models (local
    RMSE 1.08 → 0.97 Å), the rule takes the held-out patches' from 0.91 to 0.81 Å, where the global head alone
    would give 0.88 Å (docs/resolution.md)."""
    values = np.asarray(log_local, dtype=np.float32)
    smooth = ndimage.gaussian_filter(values, (0,) * (values.ndim - 3) + (LOCAL_SMOOTH,) * 3, mode="nearest")
    head = np.asarray(log_global, dtype=np.float32)
    smooth *= 1 - LOCAL_TO_GLOBAL
    smooth += LOCAL_TO_GLOBAL * head.reshape(head.shape + (1,) * (smooth.ndim - head.ndim))
    return smooth


LOCAL_BINS = (2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.5, 10.0, 12.0, 15.0)  # Å: the ten classes of ``unet10``


class SeedDense(nn.Module):
    """The seed paper's dense classifier (002: input → 1000 → 100 ReLU → 3 classes), scaled to fit: the CUBE³
    patch averaged to 16³ (2 Å voxels) → ``hidden`` → ``hidden2`` → 3 (the seed's 64³ → 1000 → 100 network
    has 262M parameters, 1 GB)."""

    def __init__(self, hidden: int = 128, hidden2: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear((CUBE // 2) ** 3, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden2), nn.ReLU(inplace=True), nn.Linear(hidden2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(nn.functional.avg_pool3d(x, 2))


class SeedCNN(nn.Module):
    """The seed paper's 3D CNN classifier (002: convolutions of 7³, 5³, 5³ kernels, each followed by 2× max
    pooling, ELU, ELU, ReLU; a tanh dense layer with dropout 0.4; 3 classes), with ``width``, 2·width,
    4·width filters and a ``dense``-wide dense layer instead of 32, 64, 128 and 1024 (8.4M parameters)."""

    def __init__(self, width: int = 8, dense: int = 128):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv3d(1, w, 7, padding=3), nn.ELU(inplace=True), nn.MaxPool3d(2),
            nn.Conv3d(w, 2 * w, 5, padding=2), nn.ELU(inplace=True), nn.MaxPool3d(2),
            nn.Conv3d(2 * w, 4 * w, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool3d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * (CUBE // 8) ** 3, dense), nn.Tanh(),
                                  nn.Dropout(0.4), nn.Linear(dense, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SeedUNet(nn.Module):
    """The seed paper's 3D U-Net local classifier (002: per-voxel classes of resolution, 3³ convolutions, ReLU,
    spatial dropout 0.5, max pooling, up-sampling and skip concatenation) with two levels of ``width``,
    2·width, 4·width filters instead of five levels of 64 … 1024, and ten classes of LOCAL_BINS."""

    def __init__(self, width: int = 8):
        super().__init__()
        w = width
        self.enc1, self.enc2, self.root = _block(1, w), _block(w, 2 * w), _block(2 * w, 4 * w)
        self.drop = nn.Dropout3d(0.5)
        self.dec2, self.dec1 = _block(6 * w, 2 * w), _block(3 * w, w)
        self.out = nn.Conv3d(w, len(LOCAL_BINS) - 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(nn.functional.max_pool3d(e1, 2))
        r = self.drop(self.root(nn.functional.max_pool3d(e2, 2)))
        d2 = self.dec2(torch.cat([nn.functional.interpolate(r, scale_factor=2.0), e2], 1))
        d1 = self.dec1(torch.cat([nn.functional.interpolate(d2, scale_factor=2.0), e1], 1))
        return self.out(d1)


ARCHITECTURES = {"local": LocalResolutionNet, "dnn": SeedDense, "cnn3d": SeedCNN, "unet10": SeedUNet}
KINDS = {"local": "local", "dnn": "class", "cnn3d": "class", "unet10": "bins"}


def model_voxel(recipe: dict[str, Any]) -> float:
    """The voxel size (Å) a model reads and answers at: its training patches' (1 Å unless its recipe says)."""
    return float(recipe.get("data", {}).get("train", {}).get("voxel_size", 1.0))


def training_range(recipe: dict[str, Any]) -> tuple[float, float]:
    """The base resolutions (Å) a model was trained on ((0, inf) when its recipe does not say)."""
    span = recipe.get("data", {}).get("train", {}).get("resolution_range") or [0.0, float("inf")]
    return float(span[0]), float(span[1])


def name_of(model: nn.Module) -> str:
    """``model``'s architecture name (ARCHITECTURES), whatever its weight file is called."""
    return next(name for name, arch in ARCHITECTURES.items() if isinstance(model, arch))


def kind_of(model: nn.Module) -> str:
    """What ``model``'s outputs are (KINDS) by its architecture."""
    return KINDS[name_of(model)]


def parameters_digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(np.ascontiguousarray(state[name].detach().cpu().numpy(), dtype="<f4").tobytes())
    return h.hexdigest()


def save(model: nn.Module, name: str, config: dict[str, Any], recipe: dict[str, Any], path: Path) -> str:
    """Write a weight file (see the module docstring); returns the parameters' SHA-256."""
    import h5py

    state = model.state_dict()
    digest = parameters_digest(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        for key in sorted(state):
            f.create_dataset(key, data=state[key].detach().cpu().numpy().astype("<f4"))
        f.attrs["model"], f.attrs["config"] = name, json.dumps(config)
        f.attrs["recipe"], f.attrs["sha256"] = json.dumps(recipe), digest
    tmp.replace(path)
    return digest


def available() -> list[str]:
    """Names of the weight files shipped with the package."""
    return sorted(p.stem for p in WEIGHTS.glob("*.h5"))


def weight_file(name: str) -> Path:
    """The shipped weight file of the model ``name``; FormatError (NO_MODEL) when there is none."""
    path = WEIGHTS / f"{name}.h5"
    if not path.is_file():
        raise FormatError(f"no resolution model {name!r}; shipped: {', '.join(available()) or 'none'}",
                          path=path, code="NO_MODEL")
    return path


def load(name: str) -> tuple[nn.Module, dict[str, Any]]:
    """The model ``name`` with its shipped weights, in eval mode, and its recipe; FormatError when the name is
    unknown, the file is missing or its digest does not match."""
    return read(weight_file(name))


def recipe_of(name: str) -> dict[str, Any]:
    """The recipe stored with the model ``name`` (training data, seed, figures), its weights left unread."""
    import h5py

    with h5py.File(weight_file(name), "r") as f:
        return json.loads(f.attrs["recipe"])


def config_of(path: Path) -> dict[str, Any]:
    """The constructor arguments stored in the weight file ``path``."""
    import h5py

    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["config"])


def read(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The model of the weight file ``path``, in eval mode, and its recipe (FormatError as ``load``)."""
    import h5py

    with h5py.File(path, "r") as f:  # opened once: every estimate loads its model
        arch = ARCHITECTURES.get(str(f.attrs["model"]))
        if arch is None:
            raise FormatError(f"unknown architecture {f.attrs['model']!r}", path=path, code="NO_MODEL")
        model = arch(**json.loads(f.attrs["config"]))
        state = {k: torch.as_tensor(f[k][()]) for k in model.state_dict()}
        recipe, digest = json.loads(f.attrs["recipe"]), str(f.attrs["sha256"])
    if parameters_digest(state) != digest:
        raise FormatError("the weights do not match their SHA-256 (damaged file)", path=path, code="NO_MODEL")
    model.load_state_dict(state)
    return model.eval().to(memory_format=torch.channels_last_3d), recipe  # 2.3× faster 3D convolutions on CPU
