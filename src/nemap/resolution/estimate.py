"""Resolution of a single map by a learned estimator (no half maps): global resolution and class, local
resolution and molecular mask, each on the map's own grid.

The map is resampled to 1 Å per voxel (linear interpolation of the voxels; the models were trained at
1 Å, so 2.5 Å is the finest resolution they tell apart), cut into CUBE³ patches every CUBE/2 voxels (a map
smaller than a patch is padded with its mean, and says so), each patch normalized to zero mean and unit
standard deviation, and predicted; overlapping predictions are averaged with a tent window. The global
resolution is the median of the local resolution inside the predicted mask (everywhere when the mask is
empty, or the model predicts none); its class is high (< 5 Å), medium (5–10 Å) or low (> 10 Å). A classifier
(``dnn``, ``cnn3d``) gives one class per map: the mean of its patches' class probabilities, its global
resolution the probability-weighted class centre (3.75, 7.5, 12.5 Å), and no local map.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from nemap.format.errors import NemapError
from nemap.format.geometry import Grid
from nemap.resolution.models import CLASS_CENTRES, CLASSES, CUBE, KINDS, LOCAL_BINS, load, resolution_class

log = logging.getLogger("nemap")

DEFAULT_MODEL = "local"


@dataclass
class Estimate:
    """``global_resolution`` Å, ``global_class``, ``local`` (Grid, Å) and ``mask`` (Grid, 0/1) on the map's
    grid, the model's name and what was done to the map (``notes``)."""

    global_resolution: float
    global_class: str
    local: Grid | None
    mask: Grid | None
    model: str
    notes: list[str] = field(default_factory=list)
    class_probabilities: list[float] | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "global_class": self.global_class,
                               "global_resolution": self.global_resolution}
        if self.class_probabilities is not None:
            out["class_probabilities"] = dict(zip(CLASSES, self.class_probabilities))
        if self.local is not None:
            inside = self.local.values[self.mask.values > 0] if self.mask is not None else self.local.values.ravel()
            out["local_resolution"] = {"min": float(inside.min()), "median": float(np.median(inside)),
                                       "max": float(inside.max())} if inside.size else None
        if self.mask is not None:
            out["mask_fraction"] = float(self.mask.values.mean())
        out["notes"] = self.notes
        return out


def classify(resolution: float) -> str:
    return CLASSES[int(resolution_class(resolution))]


def check_map(grid: Grid, name: str) -> None:
    v = grid.values
    if not np.isfinite(v).all():
        raise NemapError(f"{name} has NaN or infinite voxels", code="NONFINITE_VOXELS")
    if float(v.max() - v.min()) == 0:
        raise NemapError(f"{name} is constant ({float(v.flat[0]):g} everywhere): it has no resolution",
                         code="CONSTANT_MAP")


def to_one_angstrom(grid: Grid, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The map at 1 Å per voxel (linear) and the zoom factors used (x, y, z)."""
    zoom = np.asarray(grid.geometry.voxel_size, dtype=np.float64)
    if np.allclose(zoom, 1.0, atol=1e-3):
        return grid.values.astype(np.float32), np.ones(3)
    notes.append(f"resampled from {tuple(round(v, 4) for v in grid.geometry.voxel_size)} Å to 1 Å voxels")
    shape = np.maximum(np.round(np.asarray(grid.geometry.grid_shape) * zoom).astype(int), 1)
    return ndimage.zoom(grid.values.astype(np.float32), shape / np.asarray(grid.geometry.grid_shape), order=1,
                        mode="nearest", grid_mode=True), shape / np.asarray(grid.geometry.grid_shape)


def starts(n: int) -> list[int]:
    """Patch starts along an axis of n ≥ CUBE voxels: every CUBE/2, the last flush with the end."""
    s = list(range(0, n - CUBE + 1, CUBE // 2))
    return s if s[-1] == n - CUBE else s + [n - CUBE]


def patches(values: np.ndarray) -> tuple[list[tuple[int, int, int]], Any]:
    """Patch corners and a function giving the normalized patches [B, 1, n, n, n] of a batch of corners."""
    import torch

    corners = [(i, j, k) for i in starts(values.shape[0]) for j in starts(values.shape[1])
               for k in starts(values.shape[2])]

    def batch(cs: list[tuple[int, int, int]]) -> Any:
        p = np.stack([values[i:i + CUBE, j:j + CUBE, k:k + CUBE] for i, j, k in cs])
        p = (p - p.mean(axis=(1, 2, 3), keepdims=True)) / (p.std(axis=(1, 2, 3), keepdims=True) + 1e-8)
        return torch.as_tensor(p.astype(np.float32))[:, None]

    return corners, batch


def predict(model: Any, kind: str, values: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None,
                                                                np.ndarray | None]:
    """On a 1 Å map of at least CUBE voxels per axis: local resolution (Å), mask probability, class
    probabilities (the mean over patches) — whichever the model gives."""
    import torch

    tent = np.minimum(np.arange(CUBE) + 0.5, CUBE - np.arange(CUBE) - 0.5)
    window = (tent[:, None, None] * tent[None, :, None] * tent[None, None, :]).astype(np.float32)
    acc_r, acc_m, acc_w = (np.zeros(values.shape, np.float32) for _ in range(3))
    probabilities = []
    corners, batch_of = patches(values)
    centres = np.log(np.sqrt(np.asarray(LOCAL_BINS[:-1]) * np.asarray(LOCAL_BINS[1:])))
    with torch.inference_mode():
        for b in range(0, len(corners), 16):
            cs = corners[b:b + 16]
            out = model(batch_of(cs))
            if kind == "class":
                probabilities.append(torch.softmax(out, 1).numpy())
                continue
            if kind == "bins":
                logr, m = centres[out.argmax(1).numpy()], np.ones((len(cs),) + (CUBE,) * 3, np.float32)
            else:
                logr, m = out[0].numpy(), torch.sigmoid(out[1]).numpy()
            for (i, j, k), r, mm in zip(cs, logr, m):
                box = (slice(i, i + CUBE), slice(j, j + CUBE), slice(k, k + CUBE))
                acc_r[box] += window * r
                acc_m[box] += window * mm
                acc_w[box] += window
    if kind == "class":
        return None, None, np.concatenate(probabilities).mean(axis=0)
    return np.exp(acc_r / acc_w), (acc_m / acc_w if kind == "local" else None), None


def _on_grid(values: np.ndarray, grid: Grid, zoom: np.ndarray) -> np.ndarray:
    """A 1 Å prediction cut to the resampled map and resampled back onto the map's grid."""
    shape = tuple(min(n, int(round(g * z))) for n, g, z in zip(values.shape, grid.geometry.grid_shape, zoom))
    values = values[:shape[0], :shape[1], :shape[2]]
    back = np.asarray(grid.geometry.grid_shape) / np.asarray(values.shape)
    if not np.allclose(back, 1.0):
        values = ndimage.zoom(values, back, order=1, mode="nearest", grid_mode=True)
    return values.astype(np.float32)


def estimate(grid: Grid, model: str = DEFAULT_MODEL, name: str = "the map") -> Estimate:
    """The learned estimate of ``grid``'s resolution (see the module docstring)."""
    check_map(grid, name)
    net, _ = load(model)
    kind = KINDS[model] if model in KINDS else "local"
    notes: list[str] = []
    values, zoom = to_one_angstrom(grid, notes)
    if (np.asarray(values.shape) < CUBE).any():
        notes.append(f"{tuple(values.shape)} voxels at 1 Å is smaller than the model's {CUBE}³ input: padded "
                     "with the map's mean")
        values = np.pad(values, [(0, max(0, CUBE - n)) for n in values.shape], constant_values=float(values.mean()))
    local, mask, probabilities = predict(net, kind, values)
    if probabilities is not None:  # a classifier: one value per map
        g = float(probabilities @ np.asarray(CLASS_CENTRES))
        return Estimate(g, CLASSES[int(np.argmax(probabilities))], None, None, model, notes,
                        [float(p) for p in probabilities])
    local = _on_grid(local, grid, zoom)
    inside = _on_grid(mask, grid, zoom) > 0.5 if mask is not None else np.ones(local.shape, bool)
    g = float(np.median(local[inside] if inside.any() else local))
    return Estimate(g, classify(g), Grid(local, grid.geometry),
                    Grid(inside.astype(np.float32), grid.geometry) if mask is not None else None, model, notes)
