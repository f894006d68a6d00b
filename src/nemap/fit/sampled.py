"""The sampled training loop: mini-batches of points between voxel centres supervised by the cubic
B-spline of the voxels, a cosine learning-rate schedule, and a stop on the held-out error."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from nemap.fit.options import FitOptions
from nemap.fit.region import RegionFit
from nemap.fit.stack import RegionStack, finish, local_inputs


def fit_regions_sampled(pools: list[tuple[np.ndarray, np.ndarray]], heldout: list[tuple[np.ndarray, np.ndarray]],
                        indices: list[int], options: FitOptions, device: torch.device,
                        on_done: Callable[[RegionFit], None],
                        on_step: Callable[[int, float], None] | None = None) -> None:
    """The fast fit: mini-batches of ``points_per_step`` points drawn from each region's pool
    (u [M, 3], y [M]), Adam with a cosine learning-rate schedule over ``max_steps``, and a stop on the plateau of the
    MSE at held-out off-grid points (checked every ``eval_every`` steps); the weights with the best
    held-out error are kept."""
    stack = RegionStack(options.layers(), indices, options.seed, device)
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
            done = stopped(stack, options)
            if done:
                keep = [i for i in range(len(stack.active)) if i not in {d[0] for d in done}]
                if not finish(stack, done, on_done):
                    return
                kt = torch.as_tensor(keep, device=device)
                pool_u, pool_y, held_u, held_y = pool_u[kt], pool_y[kt], held_u[kt], held_y[kt]
            if on_step is not None:
                on_step(step, float(stack.best_loss.min()))
        pick = torch.randint(0, pool_u.shape[1], (pool_u.shape[0], batch), generator=gen, device=device)
        u_b = torch.gather(pool_u, 1, pick.unsqueeze(-1).expand(-1, -1, 3))
        y_b = torch.gather(pool_y, 1, pick)
        (stack.forward(u_b) - y_b).pow(2).mean(dim=1).sum().backward()
        stack.adam(cosine_learning_rate(options, step))


def stopped(stack: RegionStack, options: FitOptions) -> list[tuple[int, str]]:
    """(position in the batch, reason) of the regions whose held-out error has not improved for
    ``patience`` evaluations, or that reached the end of the schedule."""
    done = [(i, "plateau") for i in range(len(stack.active)) if stack.since[i] >= options.patience]
    done += [(i, "schedule-end") for i in range(len(stack.active))
             if stack.steps[i] >= options.max_steps and stack.since[i] < options.patience]
    return done


def cosine_learning_rate(options: FitOptions, step: int) -> float:
    """From ``learning_rate`` at step 0 to ``final_learning_rate`` at ``max_steps`` along a half cosine."""
    progress = min(1.0, step / max(1, options.max_steps))
    return options.final_learning_rate + 0.5 * (options.learning_rate - options.final_learning_rate) * (
        1 + math.cos(math.pi * progress))


def spline_coefficients(targets: np.ndarray) -> np.ndarray:
    """Cubic B-spline coefficients of the whole grid of targets (mirror boundaries), float32."""
    from scipy import ndimage

    return ndimage.spline_filter(targets, order=3, mode="mirror", output=np.float32)


def training_pool(spline: np.ndarray, voxel_targets: np.ndarray, bounds: np.ndarray, options: FitOptions,
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
