"""The encoder: fit one SIREN per region of a voxel grid (a Grid in, NeuralMapContent out).

Independent of file formats. Implements the paper's recipe (``preset="paper"``): Eq. 1–2
normalization, Eq. 3 tiling, SIREN 3 → 256 ×5 sine (ω0 = 30) → 1 linear, SIREN initialization,
Adam lr 1e-4, full-batch MSE, the "natural fit point" stop rule, keeping the best weights — plus
a step cap, which the published rule lacks. Regions are fitted in batches of stacked weights
(several at once on a GPU); finished regions can be saved to a resume folder as they complete.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import siren
from .content import Layer, NeuralMapContent, Normalization, Regions, siren_layers
from .engine import Engine, no_tf32, resolve_device
from .errors import NemapError
from .geometry import Grid
from .tiling import paper_tiling

log = logging.getLogger("nemap")


@dataclass(frozen=True)
class EncodeOptions:
    """How to fit. Units: region sizes and ramp in voxels; losses are MSE on the [−1, 1] scale."""

    preset: str = "paper"
    width: int = 256
    sine_layers: int = 5
    omega: float = 30.0
    learning_rate: float = 1e-4
    max_steps: int = 3000
    exit_loss: float = 1e-5
    plateau_loss: float = 4e-4
    patience: int = 25
    max_region_size: int = 64
    min_overlap: int = 4
    ramp_width: float = 3.0
    clamp_negative: bool = True
    seed: int = 0
    device: str = "auto"
    batch_regions: int = 0  # regions fitted at once; 0 = automatic (1 on CPU)
    chunk_voxels: int = 1 << 14  # voxels per forward/backward chunk: bounds memory, same gradient, and
    # keeps tensors small enough for the allocator to reuse (65536 doubled the step time in page faults)
    # the fast ("sampled") method: mini-batches of points between voxel centres, supervised by the
    # cubic B-spline interpolant of the voxels, cosine schedule, stop on held-out error
    method: str = "paper"  # "paper" (full batch at voxel centres) | "sampled"
    points_per_step: int = 8192
    pool_factor: float = 2.0  # random off-grid points per voxel in a region's training pool
    heldout_points: int = 4096
    eval_every: int = 50
    final_learning_rate: float = 1e-5
    flat_tolerance: float = 0.0  # regions whose targets span less than this (y units) become constants

    def layers(self) -> list[Layer]:
        return siren_layers(self.width, self.sine_layers, self.omega)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for machine_only in ("device", "batch_regions", "chunk_voxels"):
            d.pop(machine_only)
        if self.method == "paper":
            for unused in ("points_per_step", "pool_factor", "heldout_points", "eval_every",
                           "final_learning_rate"):
                d.pop(unused)
        else:
            for unused in ("exit_loss", "plateau_loss"):
                d.pop(unused)
        return d


PRESETS: dict[str, EncodeOptions] = {
    "paper": EncodeOptions(),
    # fast: the paper's recipe, except that regions whose targets span less than 2e-3 (solvent, masked
    # or flat) are stored as constants instead of fitted (max error 1e-3 of the range there). Nothing
    # tried so far beats the recipe itself at equal compute on a region full of protein (the sampled
    # method, spline supervision, schedules, L-BFGS: CHANGELOG); the sampled method stays selectable
    # (method="sampled") for that research.
    "fast": EncodeOptions(preset="fast", flat_tolerance=2e-3),
    # quick: a 128 × 3 network fitted by the sampled method in 1,500 mini-batch steps; minutes per region on
    # a CPU, below the paper's fidelity (the committed interpolation and graph benchmarks used it, under
    # the name "fast" before that name went to the recipe above)
    "quick": EncodeOptions(preset="quick", method="sampled", width=128, sine_layers=3, learning_rate=1e-3,
                           final_learning_rate=1e-5, max_steps=1500, points_per_step=8192, pool_factor=2.0,
                           heldout_points=4096, eval_every=50, patience=4, flat_tolerance=2e-3),
    # small networks for quick looks and tests: same recipe, 64 wide, 3 sine layers
    "small": EncodeOptions(preset="small", width=64, sine_layers=3, learning_rate=1e-3, max_steps=400),
}


MAX_REGION_SIZE = 64  # voxels per axis, the paper's


def options_for(preset: str = "paper", **overrides: Any) -> EncodeOptions:
    """The options of a preset, with any field overridden (None values are ignored)."""
    if preset not in PRESETS:
        raise NemapError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}", code="BAD_ARGUMENT")
    options = dataclasses.replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    low = 2 * options.min_overlap  # neighbours overlap by min_overlap voxels
    if not low <= options.max_region_size <= MAX_REGION_SIZE:
        raise NemapError(f"region size must be {low} to {MAX_REGION_SIZE} voxels, got {options.max_region_size}",
                         code="BAD_ARGUMENT")
    return options


# ---------------------------------------------------------------------------------------------
# Normalization and memory


SLAB_VOXELS = 1 << 22  # voxels per slab when a whole-grid pass is streamed (bounds temporaries)


def slabs(shape: tuple[int, ...], voxels: int = SLAB_VOXELS):
    """Slices along the first (x) axis covering ``shape`` in slabs of about ``voxels`` voxels."""
    plane = max(1, int(np.prod(shape[1:])))
    step = max(1, voxels // plane)
    for i in range(0, shape[0], step):
        yield slice(i, min(shape[0], i + step))


def _mean_std(values: np.ndarray, transform: Callable[[np.ndarray], np.ndarray] = lambda a: a) -> tuple[float, float]:
    """Mean and population σ of ``transform(values)`` in float64, two passes over slabs (no full copy)."""
    n = values.size
    mean = sum(float(np.sum(transform(values[s]), dtype=np.float64)) for s in slabs(values.shape)) / n
    var = sum(float(np.sum((transform(values[s]).astype(np.float64) - mean) ** 2)) for s in slabs(values.shape)) / n
    return mean, math.sqrt(var)


def normalization_for(values: np.ndarray, clamp_negative: bool) -> tuple[Normalization, bool]:
    """Eq. 1–2 statistics of a grid. Returns (normalization, constant) — constant maps get a unit span.
    Streams over slabs: memory beyond ``values`` stays bounded."""
    vmin, vmax = float(values.min()), float(values.max())
    lo, hi = (max(vmin, 0.0), max(vmax, 0.0)) if clamp_negative else (vmin, vmax)
    constant = not hi > lo
    if constant:
        hi = lo + 1.0
    mean, std = _mean_std(values)
    c_mean, c_std = _mean_std(values, lambda a: np.maximum(a, 0.0)) if clamp_negative and vmin < 0 else (mean, std)
    stats = {"min": vmin, "max": vmax, "mean": mean, "std": std}
    return Normalization(lo, hi, clamp_negative, (c_mean - lo) / (hi - lo), c_std / (hi - lo), stats), constant


def network_targets(values: np.ndarray, normalization: Normalization) -> np.ndarray:
    """Targets y (float32, same shape) of a whole grid, computed slab by slab."""
    out = np.empty(values.shape, dtype=np.float32)
    for s in slabs(values.shape):
        out[s] = normalization.encode(values[s])
    return out


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def estimate_memory_bytes(grid_shape: tuple[int, int, int], options: EncodeOptions, batch: int = 1) -> int:
    """Peak host memory of a conversion: the grid (values, targets, decoded copy) plus training
    activations of one batch of regions, chunked."""
    voxels = int(np.prod(grid_shape))
    region = min(options.chunk_voxels, int(np.prod([min(n, options.max_region_size) for n in grid_shape])))
    activations = batch * region * options.width * 4 * (3 * options.sine_layers + 2)
    return 4 * voxels * 4 + activations + 64 * 2**20


def check_memory(grid_shape: tuple[int, int, int], options: EncodeOptions, path: str | None = None) -> None:
    """Refuse, before allocating, a conversion that cannot fit in the memory at hand."""
    need = estimate_memory_bytes(grid_shape, options)
    have = available_memory_bytes()
    if have is not None and need > have:
        raise NemapError(
            f"a {grid_shape[0]}×{grid_shape[1]}×{grid_shape[2]} map needs about {need / 2**30:.1f} GiB to convert, "
            f"but only {have / 2**30:.1f} GiB is available", path=path, code="OUT_OF_MEMORY")


# ---------------------------------------------------------------------------------------------
# Fitting


@dataclass
class RegionFit:
    """One fitted region: weights per layer ([out, in]) and biases ([out]), and how the fit went."""

    index: int
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    stats: dict[str, Any]


def local_inputs(shape: tuple[int, int, int]) -> np.ndarray:
    """u [V, 3] at the voxel centres of a region of ``shape`` voxels, x slowest (C order of [x, y, z])."""
    axes = [np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1) for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def _adam_step(params: list[torch.Tensor], m: list[torch.Tensor], v: list[torch.Tensor], step: torch.Tensor,
               lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
    """Adam (Kingma & Ba; PyTorch's defaults) on stacked parameters; ``step`` [B] counts per region."""
    step += 1
    for p, mi, vi in zip(params, m, v):
        g = p.grad
        mi.mul_(beta1).add_(g, alpha=1 - beta1)
        vi.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        shape = (-1,) + (1,) * (p.dim() - 1)
        bc1 = (1 - beta1 ** step).view(shape)
        bc2 = (1 - beta2 ** step).view(shape)
        p.data.addcdiv_(mi / bc1, (vi / bc2).sqrt().add_(eps), value=-lr)
        p.grad = None


class _Stack:
    """The regions of one batch still being fitted: stacked weights, Adam moments, best copies."""

    def __init__(self, layers: list[Layer], indices: list[int], seed: int, device: torch.device):
        self.layers = layers
        self.nl = len(layers)
        self.device = device
        inits = [siren.init_weights(layers, torch.Generator().manual_seed(int(seed) * 1_000_003 + int(r)))
                 for r in indices]
        self.params = [torch.stack([w[i] for w, _ in inits]).to(device).requires_grad_(True) for i in range(self.nl)]
        self.params += [torch.stack([b[i] for _, b in inits]).to(device).requires_grad_(True) for i in range(self.nl)]
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.step = torch.zeros(len(indices), dtype=torch.float64, device=device)
        self.best = [p.detach().clone() for p in self.params]
        self.best_loss = torch.full((len(indices),), math.inf, dtype=torch.float64)
        self.since = np.zeros(len(indices), dtype=np.int64)
        self.steps = np.zeros(len(indices), dtype=np.int64)
        self.active = list(indices)
        self.started = time.perf_counter()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return siren.forward(u, self.params[:self.nl], self.params[self.nl:], self.layers)

    def record(self, loss: torch.Tensor) -> None:
        """Keep a copy of the weights of every region whose loss [B] (at the current weights) improved."""
        improved = loss < self.best_loss
        on_device = improved.to(self.device)
        for p, bp in zip(self.params, self.best):
            bp[on_device] = p.detach()[on_device]
        self.best_loss = torch.where(improved, loss, self.best_loss)
        self.since = np.where(improved.numpy(), 0, self.since + 1)

    def result(self, i: int, reason: str, **extra: Any) -> RegionFit:
        return RegionFit(
            self.active[i],
            [self.best[k][i].detach().cpu().numpy().copy() for k in range(self.nl)],
            [self.best[self.nl + k][i].detach().cpu().numpy().copy() for k in range(self.nl)],
            {"steps": int(self.steps[i]), "stop_reason": reason, "best_loss": float(self.best_loss[i]),
             "wall_time_s": round(time.perf_counter() - self.started, 3), "device": str(self.device), **extra})

    def keep(self, keep: list[int]) -> None:
        """Drop the regions not in ``keep`` (positions in the batch)."""
        kt = torch.as_tensor(keep, device=self.device)
        self.params = [p.detach()[kt].clone().requires_grad_(True) for p in self.params]
        self.m = [x[kt] for x in self.m]
        self.v = [x[kt] for x in self.v]
        self.best = [x[kt] for x in self.best]
        self.step = self.step[kt]
        self.best_loss = self.best_loss[torch.as_tensor(keep)]
        self.since, self.steps = self.since[keep], self.steps[keep]
        self.active = [self.active[i] for i in keep]

    def adam(self, lr: float) -> None:
        _adam_step(self.params, self.m, self.v, self.step, lr)
        self.steps += 1


def _finish(stack: _Stack, done: list[tuple[int, str]], on_done: Callable[[RegionFit], None]) -> bool:
    """Report finished regions and drop them; False when none is left."""
    for i, reason in done:
        on_done(stack.result(i, reason))
    if done:
        gone = {i for i, _ in done}
        keep = [i for i in range(len(stack.active)) if i not in gone]
        if not keep:
            return False
        stack.keep(keep)
    return True


def fit_regions(u: np.ndarray, targets: np.ndarray, indices: list[int], options: EncodeOptions,
                device: torch.device, on_done: Callable[[RegionFit], None],
                on_step: Callable[[int, float], None] | None = None) -> None:
    """The paper's fit of B networks at once: u [V, 3] shared inputs (voxel centres), targets
    [B, V] on the [−1, 1] scale.

    Per region: full-batch MSE (accumulated over voxel chunks), Adam at a constant learning rate,
    the "natural fit point" stop rule and a step cap; the best weights seen are kept. ``on_done``
    is called as each region finishes, and ``on_step(step, best loss)`` after every step.
    """
    stack = _Stack(options.layers(), indices, options.seed, device)
    voxels = targets.shape[1]
    u_t = torch.as_tensor(u, dtype=torch.float32, device=device)
    y_t = torch.as_tensor(targets, dtype=torch.float32, device=device)
    chunk = max(1, options.chunk_voxels)
    while True:
        loss_sum = torch.zeros(len(stack.active), dtype=torch.float64, device=device)
        for s in range(0, voxels, chunk):
            err = (stack.forward(u_t[s:s + chunk]) - y_t[:, s:s + chunk]).pow(2).sum(dim=1)
            (err.sum() / voxels).backward()
            loss_sum += err.detach().double()
        stack.record((loss_sum / voxels).cpu())
        done = []
        for i in range(len(stack.active)):
            bl = float(stack.best_loss[i])
            if bl < options.exit_loss:
                done.append((i, "exit-loss"))
            elif bl < options.plateau_loss and stack.since[i] >= options.patience:
                done.append((i, "natural-fit"))
            elif stack.steps[i] >= options.max_steps:
                done.append((i, "step-cap"))
        if done:
            keep = [i for i in range(len(stack.active)) if i not in {d[0] for d in done}]
            if not _finish(stack, done, on_done):
                return
            y_t = y_t[torch.as_tensor(keep, device=device)]
            for p in stack.params:
                p.grad = None
            continue
        stack.adam(options.learning_rate)
        if on_step is not None:
            on_step(int(stack.steps.max()), float(stack.best_loss.min()))


def fit_regions_sampled(pools: list[tuple[np.ndarray, np.ndarray]], heldout: list[tuple[np.ndarray, np.ndarray]],
                        indices: list[int], options: EncodeOptions, device: torch.device,
                        on_done: Callable[[RegionFit], None],
                        on_step: Callable[[int, float], None] | None = None) -> None:
    """The fast fit: mini-batches of ``points_per_step`` points drawn from each region's pool
    (u [M, 3], y [M]), Adam with a cosine learning-rate schedule over ``max_steps``, and a stop on the plateau of the
    MSE at held-out off-grid points (checked every ``eval_every`` steps); the weights with the best
    held-out error are kept."""
    stack = _Stack(options.layers(), indices, options.seed, device)
    pool_u = torch.as_tensor(np.stack([p[0] for p in pools]), dtype=torch.float32, device=device)
    pool_y = torch.as_tensor(np.stack([p[1] for p in pools]), dtype=torch.float32, device=device)
    held_u = torch.as_tensor(np.stack([h[0] for h in heldout]), dtype=torch.float32, device=device)
    held_y = torch.as_tensor(np.stack([h[1] for h in heldout]), dtype=torch.float32, device=device)
    gen = torch.Generator(device=device).manual_seed(int(options.seed) * 7919 + int(indices[0]))
    batch = min(options.points_per_step, pool_u.shape[1])
    while True:
        step = int(stack.steps.max())
        if step % options.eval_every == 0 or step >= options.max_steps:
            with torch.no_grad():
                loss = (stack.forward(held_u) - held_y).pow(2).mean(dim=1).double().cpu()
            stack.record(loss)
            done = [(i, "plateau") for i in range(len(stack.active)) if stack.since[i] >= options.patience]
            done += [(i, "schedule-end") for i in range(len(stack.active))
                     if stack.steps[i] >= options.max_steps and stack.since[i] < options.patience]
            if done:
                keep = [i for i in range(len(stack.active)) if i not in {d[0] for d in done}]
                if not _finish(stack, done, on_done):
                    return
                kt = torch.as_tensor(keep, device=device)
                pool_u, pool_y, held_u, held_y = pool_u[kt], pool_y[kt], held_u[kt], held_y[kt]
            if on_step is not None:
                on_step(step, float(stack.best_loss.min()))
        pick = torch.randint(0, pool_u.shape[1], (pool_u.shape[0], batch), generator=gen, device=device)
        u_b = torch.gather(pool_u, 1, pick.unsqueeze(-1).expand(-1, -1, 3))
        y_b = torch.gather(pool_y, 1, pick)
        (stack.forward(u_b) - y_b).pow(2).mean(dim=1).sum().backward()
        progress = min(1.0, step / max(1, options.max_steps))
        lr = options.final_learning_rate + 0.5 * (options.learning_rate - options.final_learning_rate) * (
            1 + math.cos(math.pi * progress))
        stack.adam(lr)


# ---------------------------------------------------------------------------------------------
# Resume folder


class ResumeStore:
    """Finished regions of an interrupted conversion, one .npz per region, in a folder beside the
    output. ``key`` identifies the conversion (source digest and options); a folder with another
    key is discarded."""

    def __init__(self, folder: Path, key: dict[str, Any]):
        self.folder = folder
        self.key = key
        state = folder / "state.json"
        if folder.is_dir():
            try:
                same = json.loads(state.read_text()) == key
            except (OSError, ValueError):
                same = False
            if not same:
                log.warning("%s: left by a different conversion; starting afresh", folder)
                self.clear()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps(key, sort_keys=True))
        os.replace(tmp, state)

    def finished(self) -> dict[int, RegionFit]:
        out: dict[int, RegionFit] = {}
        for path in sorted(self.folder.glob("region_*.npz")):
            try:
                with np.load(path, allow_pickle=False) as z:
                    n = int(z["layers"])
                    fit = RegionFit(int(z["index"]), [z[f"w{i}"] for i in range(n)], [z[f"b{i}"] for i in range(n)],
                                    json.loads(str(z["stats"])))
                out[fit.index] = fit
            except (OSError, ValueError, KeyError):
                log.warning("%s: unreadable, fitting that region again", path)
        return out

    def save(self, fit: RegionFit) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(fit.weights)} | {f"b{i}": b for i, b in enumerate(fit.biases)}
        final = self.folder / f"region_{fit.index:06d}.npz"
        tmp = self.folder / f".region_{fit.index:06d}.tmp.npz"
        np.savez(tmp, index=fit.index, layers=len(fit.weights), stats=json.dumps(fit.stats), **arrays)
        os.replace(tmp, final)

    def clear(self) -> None:
        remove_resume_folder(self.folder)


def remove_resume_folder(folder: Path) -> None:
    """Delete a resume folder (after the output has been written)."""
    if folder.is_dir():
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


# ---------------------------------------------------------------------------------------------
# The whole map


def _agreement(pairs: Any) -> dict[str, float]:
    """RMSE, max |error| and correlation of (source, decoded) chunk pairs, accumulated in float64
    about a pivot (the first source value) so that a large mean does not cancel the variance."""
    n = 0
    sa = sb = saa = sbb = sab = sdd = 0.0
    worst = biggest = 0.0
    pivot = None
    for a, b in pairs:
        a = a.astype(np.float64).ravel()
        b = b.astype(np.float64).ravel()
        if not a.size:
            continue
        d = b - a
        biggest = max(biggest, float(np.max(np.abs(a))))
        worst = max(worst, float(np.max(np.abs(d))))
        pivot = float(a[0]) if pivot is None else pivot
        a -= pivot
        b -= pivot
        n += a.size
        sa, sb = sa + a.sum(), sb + b.sum()
        saa, sbb, sab, sdd = saa + a @ a, sbb + b @ b, sab + a @ b, sdd + d @ d
    va, vb = saa / n - (sa / n) ** 2, sbb / n - (sb / n) ** 2
    if va > 1e-20 * saa / n and vb > 1e-20 * sbb / n and va > 0 and vb > 0:
        corr = float(np.clip((sab / n - (sa / n) * (sb / n)) / math.sqrt(va * vb), -1.0, 1.0))
    else:  # a constant side: agreement is all there is to say
        corr = 1.0 if worst <= 1e-8 + 1e-5 * biggest else 0.0
    return {"rmse": math.sqrt(sdd / n), "max_abs_error": worst, "correlation": corr}


def fidelity(grid: Grid, decoded: np.ndarray, bounds: np.ndarray) -> dict[str, Any]:
    """RMSE, max |error| and correlation at voxel centres, overall and per region (source units).
    Streams over slabs and region boxes: no whole-grid float64 copy."""
    values = grid.values
    overall = _agreement((values[s], decoded[s]) for s in slabs(values.shape))
    span = float(values.max() - values.min())
    overall["max_abs_error_fraction_of_range"] = overall["max_abs_error"] / span if span > 0 else 0.0
    per_region = []
    for first, last in bounds:
        sl = tuple(slice(int(f), int(l) + 1) for f, l in zip(first, last))
        per_region.append(_agreement([(values[sl], decoded[sl])]))
    return {"where": "voxel centres", "units": "source density units", "overall": overall, "regions": per_region}


def encode(grid: Grid, options: EncodeOptions, *, resume: Path | None = None, resume_key: dict[str, Any] | None = None,
           progress: Any = None) -> NeuralMapContent:
    """Fit a neural map to ``grid`` (values [x, y, z], geometry in Å).

    resume: a folder that keeps finished regions (created, reused if its key matches, removed by
    the caller when the output is written). progress(done, total, last_stats) is called as regions
    finish, and progress.step(step, best_loss) during a fit if it has that method. Raises
    NemapError for grids it cannot encode (non-finite voxels).
    """
    values = np.asarray(grid.values, dtype=np.float32)
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise NemapError(f"{bad} voxel(s) are NaN or infinite; fix or mask the map first", code="NONFINITE_VOXELS")
    shape = grid.geometry.grid_shape
    normalization, constant = normalization_for(values, options.clamp_negative)
    bounds = paper_tiling(shape, options.max_region_size, options.min_overlap)
    layers = options.layers()
    total = bounds.shape[0]
    fits: dict[int, RegionFit] = {}
    flat: dict[int, float] = {}
    store = None
    device = resolve_device(options.device)
    if device.type == "cuda":
        no_tf32()
    log.info("fitting %d region(s) of ≤ %d voxels per axis on %s (%s preset, %d×%d sine, ω0 = %g)",
             total, options.max_region_size, device, options.preset, options.width, options.sine_layers, options.omega)
    if constant:
        log.warning("the map is constant (%g): stored as constant regions, no networks", normalization.value_min)
    else:
        if resume is not None:
            store = ResumeStore(resume, resume_key or {})
            fits = store.finished()
            if fits:
                log.info("resuming: %d of %d regions were already fitted (%s)", len(fits), total, resume)
        targets = network_targets(values, normalization)
        boxes = [tuple(slice(int(f), int(l) + 1) for f, l in zip(*bounds[r])) for r in range(total)]
        if options.flat_tolerance > 0:
            for r in range(total):
                box = targets[boxes[r]]
                if float(box.max() - box.min()) < options.flat_tolerance:
                    flat[r] = float(box.mean())
        todo = [r for r in range(total) if r not in fits and r not in flat]
        if flat:
            log.info("%d of %d regions are flat (targets span < %g): stored as constants", len(flat), total,
                     options.flat_tolerance)
        if progress:
            progress(len(fits) + len(flat), total, None)
        batch = options.batch_regions or (1 if device.type == "cpu" else _gpu_batch(bounds, options, device))
        region_shape = tuple(int(n) for n in bounds[0, 1] - bounds[0, 0] + 1)
        u = local_inputs(region_shape) if options.method == "paper" else None
        spline = _spline_coefficients(targets) if options.method == "sampled" and todo else None

        def done(fit: RegionFit) -> None:
            fits[fit.index] = fit
            if store is not None:
                store.save(fit)
            if progress:
                progress(len(fits) + len(flat), total, fit.stats)

        on_step = getattr(progress, "step", None)
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            if options.method == "sampled":
                pools = [_pool(spline, targets[boxes[r]], bounds[r], options, r) for r in chunk]
                fit_regions_sampled([p[0] for p in pools], [p[1] for p in pools], chunk, options, device, done, on_step)
            else:
                t = np.stack([targets[boxes[r]].reshape(-1) for r in chunk])
                fit_regions(u, t, chunk, options, device, done, on_step)

    slots = [r for r in range(total) if r in fits]
    network_index = np.full(total, -1, dtype=np.int64)
    network_index[slots] = np.arange(len(slots))
    constant_value = np.full(total, -1.0 if constant else 0.0, dtype=np.float32)
    for r, value in flat.items():
        constant_value[r] = value
    weights = [np.stack([fits[r].weights[layer] for r in slots]) if slots else
               np.zeros((0, lay.out_features, lay.in_features), np.float32) for layer, lay in enumerate(layers)]
    biases = [np.stack([fits[r].biases[layer] for r in slots]) if slots else
              np.zeros((0, lay.out_features), np.float32) for layer, lay in enumerate(layers)]
    regions = Regions(bounds, network_index, constant_value, options.ramp_width,
                      {"method": "paper-eq3", "max_size": options.max_region_size, "min_overlap": options.min_overlap})
    content = NeuralMapContent(grid.geometry, normalization, regions, layers, weights, biases)
    engine = Engine(grid.geometry, normalization, regions, layers, weights, biases, device=device)
    decoded = engine.sample(grid.geometry).values
    content.provenance["training"] = {
        "options": options.to_json(),
        "initialization": "SIREN (first layer U(±1/in), later U(±√(6/in)/ω), biases U(±1/√in))",
        "optimizer": {"name": "Adam", "betas": [0.9, 0.999], "eps": 1e-8, "learning_rate": options.learning_rate},
        **_recipe(options),
        "device": str(device),
        "precision": "float32 (no TF32)",
        "torch": torch.__version__,
        "regions": [dict(fits[r].stats, region=r) if r in fits else
                    {"region": r, "stop_reason": "flat" if r in flat else "constant"} for r in range(total)],
    }
    content.provenance["fidelity"] = fidelity(grid, decoded, bounds)
    return content


def _recipe(options: EncodeOptions) -> dict[str, Any]:
    """The loss and stop rule of a fit, as recorded in the provenance."""
    if options.method == "sampled":
        return {"loss": (f"MSE on the [−1, 1] scale over mini-batches of {options.points_per_step} points drawn from "
                         f"the voxel centres and {options.pool_factor:g} random points per voxel between them; "
                         "targets between voxel centres are the cubic B-spline interpolant of the voxels"),
                "learning_rate_schedule": {"name": "cosine", "from": options.learning_rate,
                                           "to": options.final_learning_rate, "steps": options.max_steps},
                "stop_rule": {"heldout_points": options.heldout_points, "eval_every": options.eval_every,
                              "patience": options.patience, "max_steps": options.max_steps,
                              "flat_tolerance": options.flat_tolerance, "keeps": "best held-out weights"}}
    return {"loss": "MSE over all voxels of the region (full batch), on the [−1, 1] scale",
            "stop_rule": {"exit_loss": options.exit_loss, "plateau_loss": options.plateau_loss,
                          "patience": options.patience, "max_steps": options.max_steps,
                          "flat_tolerance": options.flat_tolerance, "keeps": "best weights"}}


def _spline_coefficients(targets: np.ndarray) -> np.ndarray:
    """Cubic B-spline coefficients of the whole grid of targets (mirror boundaries), float32."""
    from scipy import ndimage

    return ndimage.spline_filter(targets, order=3, mode="mirror", output=np.float32)


def _pool(spline: np.ndarray, voxel_targets: np.ndarray, bounds: np.ndarray, options: EncodeOptions,
          region: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Training pool (voxel centres + random points between them) and held-out points of one region,
    as (u [M, 3], y [M]) pairs; off-grid targets are the cubic B-spline interpolant of the voxels."""
    from scipy import ndimage

    first, last = bounds[0].astype(np.float64), bounds[1].astype(np.float64)
    span = last - first
    shape = tuple(int(n) for n in span + 1)
    rng = np.random.default_rng([int(options.seed), int(region)])

    def off_grid(count: int) -> tuple[np.ndarray, np.ndarray]:
        u = rng.uniform(-1.0, 1.0, (count, 3))
        u[:, span == 0] = 0.0
        q = first + (u + 1.0) * 0.5 * span
        y = ndimage.map_coordinates(spline, q.T, order=3, mode="mirror", prefilter=False)
        return u.astype(np.float32), y.astype(np.float32)

    voxels = int(np.prod(shape))
    u_rand, y_rand = off_grid(int(options.pool_factor * voxels))
    train = (np.concatenate([local_inputs(shape).astype(np.float32), u_rand]),
             np.concatenate([voxel_targets.reshape(-1), y_rand]))
    return train, off_grid(options.heldout_points)


def _gpu_batch(bounds: np.ndarray, options: EncodeOptions, device: torch.device) -> int:
    """Regions per batch that fit in 60 % of the free GPU memory."""
    free, _ = torch.cuda.mem_get_info(device)
    voxels = int(np.prod(bounds[0, 1] - bounds[0, 0] + 1))
    per_region = min(voxels, options.chunk_voxels) * options.width * 4 * (3 * options.sine_layers + 2) + voxels * 8
    return max(1, min(bounds.shape[0], int(0.6 * free // per_region)))
