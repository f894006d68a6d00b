"""Train a learned resolution estimator on simulated maps and write its shipped weight file.

    python -m training.train_resolution --data DIR [--model local] [--minutes 20] [--seed 0] [--lr 2e-3] [--out PATH]
                                        [--calibration-count 300] [--init WEIGHTS] [--reported-loss]
    python -m training.train_resolution --recalibrate WEIGHTS [--calibration-count N] [--out PATH]

DIR holds train.npz and test.npz from ``python -m training.resolution_data`` (the recipe of each is stored
in the weight file). Adam (lr 2e-3 unless --lr, cosine to 0 over the time budget), batches of 16 patches with random
flips and axis permutations; loss L_global + L_local + L_mask: squared error of the global log-resolution,
squared error of the local log-resolution inside the mask (with --reported-loss, of the local map as the estimator
reports it, ``models.local_map``: smoothed and blended towards the global head), binary cross-entropy of the mask.
At the end, the 90 % interval is calibrated on held-out models (another seed than the test set's: the 5th and 95th
percentiles of log(estimate/truth)), and every figure of the held-out test set (models never used in training) —
overall and by noise kind, mask kind, voxel size and resolution band, with the interval's coverage — is stored in
the recipe.
With --init, training starts from a weight file (fine-tuning); its parameter digest and its whole recipe are kept
under "init" in the new file's recipe, so the chain of data and runs that made the weights is on record.
Default output: src/nemap/resolution/weights/MODEL.h5.
With --recalibrate, a weight file's interval and test figures are measured again, as the estimator reports them
(``models.local_map``), on the sets its recipe names (the calibration set of --calibration-count patches where
given); its parameters, and so its digest, are unchanged.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import commit
from nemap.resolution import models
from nemap.resolution.classes import CLASS_CENTRES, resolution_class


def augment(x: torch.Tensor, *labels: torch.Tensor, rng: np.random.Generator) -> list[torch.Tensor]:
    """The same random flips and axis permutation for the maps [B, n, n, n] and their labels."""
    perm = [0] + list(1 + rng.permutation(3))
    flips = [a for a in (1, 2, 3) if rng.uniform() < 0.5]
    out = []
    for t in (x, *labels):
        t = t.permute(*perm)
        out.append(t.flip(flips) if flips else t)
    return out


def reported_local(pred_local: torch.Tensor, pred_glob: torch.Tensor) -> torch.Tensor:
    """``models.local_map`` in torch, differentiable: the local head [B, n, n, n] (log, x, y, z) smoothed by a
    Gaussian of LOCAL_SMOOTH voxels (edges replicated, truncated at 4 SD as SciPy's) and blended LOCAL_TO_GLOBAL of
    the way towards the global head [B] (log)."""
    radius = int(4 * models.LOCAL_SMOOTH + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=pred_local.dtype)
    kernel = torch.exp(-0.5 * (x / models.LOCAL_SMOOTH) ** 2)
    kernel = kernel / kernel.sum()
    out = pred_local[:, None]
    for axis in range(3):
        pad = [0] * 6
        pad[4 - 2 * axis: 6 - 2 * axis] = [radius, radius]
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = len(kernel)
        out = torch.nn.functional.conv3d(torch.nn.functional.pad(out, pad, mode="replicate"), kernel.view(shape))
    return (1 - models.LOCAL_TO_GLOBAL) * out[:, 0] + models.LOCAL_TO_GLOBAL * pred_glob.view(-1, 1, 1, 1)


def losses(model: torch.nn.Module, kind: str, maps: torch.Tensor, local: torch.Tensor, masks: torch.Tensor,
           glob: torch.Tensor, reported: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one batch: ``local`` models L_global + L_local + L_mask (with ``reported``, L_local of the local
    map as the estimator reports it, ``reported_local``, instead of the local head's); ``class`` models
    cross-entropy of the global class; ``bins`` models per-voxel cross-entropy of the ten resolution bins."""
    if kind == "class":
        target = torch.as_tensor(resolution_class(glob.numpy()), dtype=torch.long)
        loss = torch.nn.functional.cross_entropy(model(maps[:, None]), target)
        return loss, {"class": loss.item()}
    if kind == "bins":
        target = torch.as_tensor(bin_of(local.numpy()), dtype=torch.long)
        loss = torch.nn.functional.cross_entropy(model(maps[:, None]), target)
        return loss, {"bins": loss.item()}
    pred_local, pred_mask, pred_glob = model(maps[:, None])
    if reported:
        pred_local = reported_local(pred_local, pred_glob)
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
        return p @ np.asarray(CLASS_CENTRES), None, None
    if kind == "bins":
        centres = np.sqrt(np.asarray(models.LOCAL_BINS[:-1]) * np.asarray(models.LOCAL_BINS[1:]))
        local = centres[model(x[:, None]).argmax(1).numpy()]
        return np.median(local.reshape(len(local), -1), axis=1), local, None
    pl, pm, pg = model(x[:, None])
    local, mask = np.exp(models.local_map(pl.numpy(), pg.numpy())), pm.numpy() > 0
    glob = [np.median(local[i][mask[i]] if mask[i].any() else local[i]) for i in range(len(local))]
    return np.asarray(glob), local, mask


def sample_errors(local: np.ndarray | None, mask: np.ndarray | None, true_local: np.ndarray, true_mask: np.ndarray
                  ) -> dict[str, np.ndarray]:
    """Per sample of [B, n, n, n] local resolutions (Å; None: a model without) and predicted masks (bool; None)
    against the true ones: the sum and count of squared local errors (Å², inside the true mask, true resolution
    2–8 Å) and the mask's intersection and union with the true mask."""
    b = len(true_local)
    band = true_mask & (true_local >= 2) & (true_local <= 8)
    err = ((local - true_local) ** 2 * band) if local is not None else np.zeros(band.shape)
    m = mask if mask is not None else np.zeros_like(true_mask)
    return {"sq": err.reshape(b, -1).sum(1), "n": band.reshape(b, -1).sum(1) if local is not None else np.zeros(b),
            "inter": (m & true_mask).reshape(b, -1).sum(1),
            "union": (m | true_mask).reshape(b, -1).sum(1) if mask is not None else np.zeros(b)}


def per_sample(model: torch.nn.Module, data: dict[str, np.ndarray], kind: str = "local", batch: int = 32,
               voxel: float = 1.0) -> dict[str, np.ndarray]:
    """Per sample: the global estimate (Å, as the estimator reports it) and ``sample_errors``. The model reads
    patches of ``voxel`` Å and answers in voxels."""
    model.eval()
    out: dict[str, list] = {"global": [], "sq": [], "n": [], "inter": [], "union": []}
    with torch.inference_mode():
        for s in range(0, len(data["maps"]), batch):
            glob, local, mask = predictions(model, kind, torch.as_tensor(data["maps"][s:s + batch].astype(np.float32)))
            out["global"].append(glob * voxel)
            errors = sample_errors(local * voxel if local is not None else None, mask,
                                   data["local"][s:s + batch].astype(np.float32), data["masks"][s:s + batch])
            for key, value in errors.items():
                out[key].append(value)
    return {k: np.concatenate(v).astype(np.float64) for k, v in out.items()}


def scores(p: dict[str, np.ndarray], truth: np.ndarray, pick: np.ndarray | None = None) -> dict[str, float | None]:
    """Class accuracy, global RMSE (Å), local RMSE 2–8 Å (Å) and mask IoU of the samples ``pick`` (all)."""
    pick = np.ones(len(truth), bool) if pick is None else pick
    g, t = p["global"][pick], truth[pick]
    n, union = p["n"][pick].sum(), p["union"][pick].sum()
    return {"class_accuracy": float(np.mean(resolution_class(g) == resolution_class(t))),
            "global_rmse": float(np.sqrt(np.mean((g - t) ** 2))),
            "local_rmse_2_8": float(np.sqrt(p["sq"][pick].sum() / n)) if n else None,
            "mask_iou": float(p["inter"][pick].sum() / union) if union else None, "maps": int(pick.sum())}


def sampling_interval(p: dict[str, np.ndarray], truth: np.ndarray, rounds: int = 2000,
                      seed: int = 0) -> dict[str, list[float] | None]:
    """90 % bootstrap intervals of the class accuracy, global RMSE (Å) and local RMSE 2–8 Å (Å) of ``per_sample``'s
    figures: the set's samples drawn again with replacement ``rounds`` times (a fixed seed), so how far the
    figures of a set of this size move with the draw of its samples."""
    idx = np.random.default_rng(seed).integers(len(truth), size=(rounds, len(truth)))
    right = (resolution_class(p["global"]) == resolution_class(truth)).astype(np.float64)
    figures = {"class_accuracy": right[idx].mean(1),
               "global_rmse": np.sqrt(((p["global"] - truth) ** 2)[idx].mean(1))}
    n = p["n"][idx].sum(1)
    figures["local_rmse_2_8"] = np.sqrt(p["sq"][idx].sum(1) / n) if n.min() > 0 else None
    return {k: None if v is None else [float(x) for x in np.percentile(v, [5, 95])] for k, v in figures.items()}


def ratio_interval(p: dict[str, np.ndarray], truth: np.ndarray, group: np.ndarray, reference: np.ndarray,
                   rounds: int = 2000, seed: int = 0) -> list[float] | None:
    """90 % bootstrap interval of the global RMSE of the samples ``group`` over that of the samples ``reference``
    (boolean picks): the set drawn again with replacement ``rounds`` times (a fixed seed), both groups from the same
    draw, over the redraws that hold both; None where no redraw holds both."""
    idx = np.random.default_rng(seed).integers(len(truth), size=(rounds, len(truth)))
    return _ratio_span(((p["global"] - truth) ** 2)[idx], group[idx], reference[idx])


def _ratio_span(err: np.ndarray, mine: np.ndarray, theirs: np.ndarray) -> list[float] | None:
    """``ratio_interval`` from the redrawn squared errors and group picks [rounds, samples]."""
    both = (mine.sum(1) > 0) & (theirs.sum(1) > 0)
    if not both.any():
        return None
    mean_sq = [(err * chosen)[both].sum(1) / chosen[both].sum(1) for chosen in (mine, theirs)]
    with np.errstate(divide="ignore"):  # a redraw of errorless reference samples: an infinite ratio
        ratio = np.sqrt(mean_sq[0] / mean_sq[1])
    return [float(x) for x in np.percentile(ratio, [5, 95])]


def ratio_intervals(p: dict[str, np.ndarray], data: dict[str, np.ndarray], rounds: int = 2000,
                    seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """``ratio_interval`` of each noise kind against the clean patches and each mask kind against the unmasked ones
    (the issue's "RMSE ≤ 1.5× clean" targets), every ratio from the same redraws."""
    from training.resolution_data import MASK_KINDS, NOISE_KINDS

    truth = data["global"]
    idx = np.random.default_rng(seed).integers(len(truth), size=(rounds, len(truth)))
    err = ((p["global"] - truth) ** 2)[idx]
    out: dict[str, dict[str, list[float]]] = {}
    for key, kinds, reference in (("noise", NOISE_KINDS, "clean"), ("mask", MASK_KINDS, "none")):
        codes = data.get(f"{key}_kind")
        if codes is None:
            continue
        drawn = codes[idx]
        ref = drawn == kinds.index(reference)
        spans = {k: _ratio_span(err, drawn == i, ref) for i, k in enumerate(kinds) if k != reference}
        out[key] = {k: v for k, v in spans.items() if v is not None}
    return out


BANDS = ((1.0, 2.0), (2.0, 2.5), (2.5, 4.0), (4.0, 6.0), (6.0, 10.0), (10.0, 15.0), (15.0, 30.0))  # Å, true global


def breakdown(p: dict[str, np.ndarray], data: dict[str, np.ndarray]) -> dict[str, dict[str, dict]]:
    """``scores`` by noise kind, mask kind, voxel size (1 Å or coarser), band of true resolution and content:
    patches holding molecule, and patches of solvent only (no voxel in the true mask), whose "true" global value
    is the median of a resolution field over nothing but solvent: a number no map shows."""
    from training.resolution_data import MASK_KINDS, NOISE_KINDS

    truth = data["global"]
    out: dict[str, dict[str, dict]] = {}
    if "noise_kind" in data:
        out["noise"] = {k: scores(p, truth, data["noise_kind"] == i) for i, k in enumerate(NOISE_KINDS)
                        if (data["noise_kind"] == i).any()}
        out["mask"] = {k: scores(p, truth, data["mask_kind"] == i) for i, k in enumerate(MASK_KINDS)
                       if (data["mask_kind"] == i).any()}
        native = float(data["voxel"].min())  # the patches' own voxel size; coarser ones were sampled at up to 3×
        coarse = data["voxel"] > native
        out["voxel"] = ({f"{native:g} Å": scores(p, truth, ~coarse),
                         f"{native:g}–{3 * native:g} Å": scores(p, truth, coarse)} if coarse.any() else {})
    out["band"] = {f"{lo:g}–{hi:g} Å": scores(p, truth, (truth >= lo) & (truth < hi)) for lo, hi in BANDS
                   if ((truth >= lo) & (truth < hi)).any()}
    molecule = data["masks"].reshape(len(truth), -1).any(axis=1)
    out["content"] = {k: scores(p, truth, pick) for k, pick in (("molecule", molecule), ("solvent only", ~molecule))
                      if pick.any()}
    return out


def evaluate(model: torch.nn.Module, data: dict[str, np.ndarray], kind: str = "local", batch: int = 32,
             calibration: dict[str, Any] | None = None, voxel: float = 1.0) -> dict[str, Any]:
    """``summary`` of ``per_sample`` and the coverage of a calibrated ``interval`` (a model reading patches of
    ``voxel`` Å)."""
    p = per_sample(model, data, kind, batch, voxel)
    out = summary(p, data)
    if calibration:
        ratio = np.log(p["global"] / data["global"])
        out["interval_coverage"] = float(np.mean((ratio >= calibration["log_ratio_low"])
                                                 & (ratio <= calibration["log_ratio_high"])))
    return out


def summary(p: dict[str, np.ndarray], data: dict[str, np.ndarray]) -> dict[str, Any]:
    """``scores`` of every sample of ``per_sample``'s figures ``p`` with their ``sampling_interval``, ``breakdown``
    and ``ratio_intervals``."""
    return {**scores(p, data["global"]), "sampling_90": sampling_interval(p, data["global"]),
            "by": breakdown(p, data), "ratio_90": ratio_intervals(p, data)}


COVERAGE = 0.9  # of the calibrated interval
CALIBRATION = {"split": "test", "seed": 2, "count": 300}  # held-out models, another seed than the test set's


def calibrate(model: torch.nn.Module, kind: str, count: int = CALIBRATION["count"], voxel: float = 1.0,
              resolution_range: tuple[float, float] | None = None) -> dict[str, Any]:
    """The 5th and 95th percentiles of log(estimate/truth) on ``count`` calibration samples of held-out models
    (patches of ``voxel`` Å, base resolutions in ``resolution_range`` Å: the training data's)."""
    from training.resolution_data import HIGH, LOW, build

    data = build(count, CALIBRATION["seed"], CALIBRATION["split"], voxel=voxel,
                 resolution_range=resolution_range or (LOW, HIGH))
    ratio = np.log(per_sample(model, data, kind, voxel=voxel)["global"] / data["global"])
    lo, hi = np.quantile(ratio, [(1 - COVERAGE) / 2, (1 + COVERAGE) / 2])
    return {"coverage": COVERAGE, "log_ratio_low": float(lo), "log_ratio_high": float(hi),
            "calibration": {**CALIBRATION, "count": count}}


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def train(data_dir: Path, name: str, minutes: float, seed: int, width: int = 8, lr: float = 2e-3,
          calibration_count: int = CALIBRATION["count"], init: Path | None = None,
          reported: bool = False) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_set = dict(np.load(data_dir / "train.npz"))
    test_set = dict(np.load(data_dir / "test.npz"))
    made = json.loads((data_dir / "train.json").read_text())
    voxel = float(made.get("voxel_size", 1.0))  # the model reads and answers in voxels of this size
    if voxel != 1.0 and models.KINDS[name] != "local":
        raise SystemExit(f"{data_dir}: patches of {voxel:g} Å need a model of local resolution, not {name}")
    for key in ("local", "global"):
        train_set[key] = (train_set[key].astype(np.float32) / voxel).astype(train_set[key].dtype)
    start = None
    if init is not None:  # fine-tuning: the weights it starts from, and how they were made, go into the recipe
        model, before = models.read(init)
        if not isinstance(model, models.ARCHITECTURES[name]):
            raise SystemExit(f"{init}: not a {name} weight file")
        start = {"sha256": models.parameters_digest(model.state_dict()), "recipe": before}
    else:
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
        loss, parts = losses(model, kind, x, loc, msk, torch.as_tensor(train_set["global"][idx]), reported)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            log.append({"step": step, "seconds": round(elapsed, 1), **parts})
            print(f"step {step} ({elapsed:.0f} s): {parts}", file=sys.stderr, flush=True)
    span = made.get("resolution_range")
    interval = calibrate(model, kind, calibration_count, voxel, tuple(span) if span else None)
    figures = evaluate(model, test_set, kind, calibration=interval, voxel=voxel)
    recipe = {"data": {k: json.loads((data_dir / f"{k}.json").read_text()) for k in ("train", "test")},
              "data_sha256": {k: _sha256(data_dir / f"{k}.npz") for k in ("train", "test")},
              "seed": seed, "steps": step, "minutes": minutes, "batch": 16, "optimizer": f"Adam {lr:g}, cosine to 0",
              "loss": "L_global + L_local (of the reported local map) + L_mask" if reported
              else "L_global + L_local + L_mask", "init": start, "test": figures, "interval": interval,
              "log_tail": log[-5:],
              "torch": torch.__version__, "threads": torch.get_num_threads(), "commit": commit()}
    return model, recipe


def recalibrate(path: Path, calibration_count: int | None = None) -> tuple[torch.nn.Module, str, dict]:
    """The model of the weight file ``path`` with its interval calibrated and its test figures measured again as the
    estimator now reports them (``models.local_map``), on the calibration and test sets its recipe names, rebuilt
    (``calibration_count`` calibration samples where given: the first ones are the recipe's); its parameters
    unchanged. The figures replaced are kept under "recalibrated"."""
    from training.resolution_data import build

    model, recipe = models.read(path)
    name = models.name_of(model)
    test, kind = recipe["data"]["test"], models.KINDS[name]
    voxel, span = float(test.get("voxel_size", 1.0)), tuple(test["resolution_range"])
    test_set = build(test["count"], test["seed"], test["split"], voxel=voxel, resolution_range=span)
    interval = calibrate(model, kind, calibration_count or recipe["interval"]["calibration"]["count"], voxel, span)
    figures = evaluate(model, test_set, kind, calibration=interval, voxel=voxel)
    replaced = {"test": {k: v for k, v in recipe["test"].items() if k != "by"}, "interval": recipe["interval"]}
    reported = {"local_smooth_voxels": models.LOCAL_SMOOTH, "local_to_global": models.LOCAL_TO_GLOBAL}
    return model, name, {**recipe, "test": figures, "interval": interval, "recalibrated": {
        "reported": reported, "replaced": replaced, "commit": commit(), "torch": torch.__version__}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="train.npz and test.npz (required unless --recalibrate)")
    ap.add_argument("--model", default="local", choices=list(models.ARCHITECTURES))
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=8, help="channels of the first layer (not with --init)")
    ap.add_argument("--lr", type=float, default=2e-3, help="Adam's initial learning rate")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--init", type=Path, default=None, metavar="WEIGHTS",
                    help="fine-tune: start from this weight file (its digest and recipe are kept in the new one)")
    ap.add_argument("--reported-loss", action="store_true",
                    help="local models: L_local of the local map as the estimator reports it (models.local_map)")
    ap.add_argument("--calibration-count", type=int, default=None,
                    help="held-out samples that calibrate the 90 %% interval (training: 300; --recalibrate: the "
                         "weight file's count)")
    ap.add_argument("--recalibrate", type=Path, default=None, metavar="WEIGHTS",
                    help="no training: calibrate the interval of this weight file and measure its test figures again "
                         "as the estimator now reports them (written to --out, default the file itself)")
    args = ap.parse_args(argv)
    if args.recalibrate is not None:
        model, name, recipe = recalibrate(args.recalibrate, args.calibration_count)
        recipe["recalibrated"]["command"] = " ".join(["python -m training.train_resolution", *sys.argv[1:]])
        out = args.out or args.recalibrate
        digest = models.save(model, name, models.config_of(args.recalibrate), recipe, out)
        print(json.dumps({"weights": str(out), "sha256": digest, "test": recipe["test"]}, indent=1))
        return
    if args.data is None:
        ap.error("--data is required (or --recalibrate WEIGHTS)")
    model, recipe = train(args.data, args.model, args.minutes, args.seed, args.width, args.lr,
                          args.calibration_count or CALIBRATION["count"], args.init, args.reported_loss)
    recipe["command"] = " ".join(["python -m training.train_resolution", *(sys.argv[1:] if argv is None else argv)])
    out = args.out or models.WEIGHTS / f"{args.model}.h5"
    if args.init is not None:  # a fine-tuned model has its starting file's architecture, whatever --width says
        config = models.config_of(args.init)
    else:
        config = {"width": args.width} if args.model != "dnn" else {}
    digest = models.save(model, args.model, config, recipe, out)
    print(json.dumps({"weights": str(out), "sha256": digest, "test": recipe["test"]}, indent=1))


if __name__ == "__main__":
    main()
