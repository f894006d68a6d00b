"""Train a learned resolution estimator on simulated maps and write its shipped weight file.

    python -m training.train_resolution --data DIR [--model local] [--minutes 20] [--seed 0] [--lr 2e-3] [--out PATH]

DIR holds train.npz and test.npz from ``python -m training.resolution_data`` (the recipe of each is stored
in the weight file). Adam (lr 2e-3 unless --lr, cosine to 0 over the time budget), batches of 16 patches with random
flips and axis permutations; loss L_global + L_local + L_mask: squared error of the global log-resolution,
squared error of the local log-resolution inside the mask, binary cross-entropy of the mask. Every figure of
the held-out test set (models never used in training) is measured at the end and stored in the recipe.
Default output: src/nemap/resolution/weights/MODEL.h5.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nemap.resolution import models
from nemap.resolution.models import resolution_class


def augment(x: torch.Tensor, *labels: torch.Tensor, rng: np.random.Generator) -> list[torch.Tensor]:
    """The same random flips and axis permutation for the maps [B, n, n, n] and their labels."""
    perm = [0] + list(1 + rng.permutation(3))
    flips = [a for a in (1, 2, 3) if rng.uniform() < 0.5]
    out = []
    for t in (x, *labels):
        t = t.permute(*perm)
        out.append(t.flip(flips) if flips else t)
    return out


def losses(model: torch.nn.Module, kind: str, maps: torch.Tensor, local: torch.Tensor, masks: torch.Tensor,
           glob: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one batch: ``local`` models L_global + L_local + L_mask; ``class`` models cross-entropy of the
    global class; ``bins`` models per-voxel cross-entropy of the ten resolution bins."""
    if kind == "class":
        target = torch.as_tensor(resolution_class(glob.numpy()), dtype=torch.long)
        loss = torch.nn.functional.cross_entropy(model(maps[:, None]), target)
        return loss, {"class": loss.item()}
    if kind == "bins":
        target = torch.as_tensor(bin_of(local.numpy()), dtype=torch.long)
        loss = torch.nn.functional.cross_entropy(model(maps[:, None]), target)
        return loss, {"bins": loss.item()}
    pred_local, pred_mask, pred_glob = model(maps[:, None])
    inside = masks.float()
    l_local = (((pred_local - torch.log(local)) ** 2) * inside).sum() / inside.sum().clamp(min=1)
    l_mask = torch.nn.functional.binary_cross_entropy_with_logits(pred_mask, inside)
    l_glob = ((pred_glob - torch.log(glob)) ** 2).mean()
    total = l_glob + l_local + l_mask
    return total, {"global": l_glob.item(), "local": l_local.item(), "mask": l_mask.item()}


def bin_of(local: np.ndarray) -> np.ndarray:
    """The ``unet10`` class (0–9) of local resolutions (Å)."""
    return np.clip(np.digitize(local, models.LOCAL_BINS[1:-1]), 0, len(models.LOCAL_BINS) - 2)


def predictions(model: torch.nn.Module, kind: str, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None,
                                                                        np.ndarray | None]:
    """(global resolution Å [B], local resolution Å [B, n, n, n] or None, mask [B, n, n, n] or None)."""
    if kind == "class":
        p = torch.softmax(model(x[:, None]), 1).numpy()
        return p @ np.asarray(models.CLASS_CENTRES), None, None
    if kind == "bins":
        centres = np.sqrt(np.asarray(models.LOCAL_BINS[:-1]) * np.asarray(models.LOCAL_BINS[1:]))
        local = centres[model(x[:, None]).argmax(1).numpy()]
        return np.median(local.reshape(len(local), -1), axis=1), local, None
    pl, pm, _ = model(x[:, None])
    local, mask = np.exp(pl.numpy()), pm.numpy() > 0
    glob = [np.median(local[i][mask[i]] if mask[i].any() else local[i]) for i in range(len(local))]
    return np.asarray(glob), local, mask


def evaluate(model: torch.nn.Module, data: dict[str, np.ndarray], kind: str = "local", batch: int = 32
             ) -> dict[str, float]:
    """Class accuracy and global RMSE (Å) of the global estimate (as the estimator reports it), local RMSE
    (Å, inside the true mask, true resolution 2–8 Å) and mask IoU where the model predicts them."""
    model.eval()
    g_pred, l_err, inter, union = [], [], 0, 0
    with torch.inference_mode():
        for s in range(0, len(data["maps"]), batch):
            glob, local, mask = predictions(model, kind, torch.as_tensor(data["maps"][s:s + batch].astype(np.float32)))
            g_pred.append(glob)
            true_local, true_mask = data["local"][s:s + batch].astype(np.float32), data["masks"][s:s + batch]
            if local is not None:
                band = true_mask & (true_local >= 2) & (true_local <= 8)
                l_err.append((local - true_local)[band] ** 2)
            if mask is not None:
                inter += int((mask & true_mask).sum())
                union += int((mask | true_mask).sum())
    g = np.concatenate(g_pred)
    g_true = data["global"]
    errors = np.concatenate(l_err) if l_err else np.zeros(0)
    return {"class_accuracy": float(np.mean(resolution_class(g) == resolution_class(g_true))),
            "global_rmse": float(np.sqrt(np.mean((g - g_true) ** 2))),
            "local_rmse_2_8": float(np.sqrt(errors.mean())) if errors.size else None,
            "mask_iou": inter / union if union else None, "maps": int(len(g_true))}


def train(data_dir: Path, name: str, minutes: float, seed: int, width: int = 8, lr: float = 2e-3
          ) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_set = dict(np.load(data_dir / "train.npz"))
    test_set = dict(np.load(data_dir / "test.npz"))
    model = models.ARCHITECTURES[name](**({"width": width} if name != "dnn" else {}))
    model = model.to(memory_format=torch.channels_last_3d)  # 2.3× faster 3D convolutions on CPU (oneDNN)
    kind = models.KINDS[name]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    budget, t0, step, log = minutes * 60, time.perf_counter(), 0, []
    n = len(train_set["maps"])
    while (elapsed := time.perf_counter() - t0) < budget:
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(elapsed / budget, 1.0)))
        idx = rng.integers(n, size=16)
        x, loc, msk = augment(*(torch.as_tensor(train_set[k][idx].astype(np.float32 if k != "masks" else bool))
                                for k in ("maps", "local", "masks")), rng=rng)
        model.train()
        loss, parts = losses(model, kind, x, loc, msk, torch.as_tensor(train_set["global"][idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            log.append({"step": step, "seconds": round(elapsed, 1), **parts})
            print(f"step {step} ({elapsed:.0f} s): {parts}", file=sys.stderr, flush=True)
    figures = evaluate(model, test_set, kind)
    recipe = {"data": {k: json.loads((data_dir / f"{k}.json").read_text()) for k in ("train", "test")},
              "seed": seed, "steps": step, "minutes": minutes, "batch": 16, "optimizer": f"Adam {lr:g}, cosine to 0",
              "loss": "L_global + L_local + L_mask", "test": figures, "log_tail": log[-5:],
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    return model, recipe


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="local", choices=list(models.ARCHITECTURES))
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3, help="Adam's initial learning rate")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    model, recipe = train(args.data, args.model, args.minutes, args.seed, args.width, args.lr)
    out = args.out or models.WEIGHTS / f"{args.model}.h5"
    config = {"width": args.width} if args.model != "dnn" else {}
    digest = models.save(model, args.model, config, recipe, out)
    print(json.dumps({"weights": str(out), "sha256": digest, "test": recipe["test"]}, indent=1))


if __name__ == "__main__":
    main()
