"""The paper's training loop: full-batch MSE at the voxel centres, Adam at a constant learning rate,
the "natural fit point" stop rule and a step cap."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from nemap.fit.options import FitOptions
from nemap.fit.region import RegionFit
from nemap.fit.stack import RegionStack, finish


def fit_regions(u: np.ndarray, targets: np.ndarray, indices: list[int], options: FitOptions,
                device: torch.device, on_done: Callable[[RegionFit], None],
                on_step: Callable[[int, float], None] | None = None) -> None:
    """The paper's fit of B networks at once: u [V, 3] shared inputs (voxel centres), targets
    [B, V] on the [−1, 1] scale.

    Per region: full-batch MSE (accumulated over voxel chunks), Adam at a constant learning rate,
    the "natural fit point" stop rule and a step cap; the best weights seen are kept. ``on_done``
    is called as each region finishes, and ``on_step(step, best loss)`` after every step.
    """
    stack = RegionStack(options.layers(), indices, options.seed, device)
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
        done = stopped(stack, options)
        if done:
            keep = [i for i in range(len(stack.active)) if i not in {d[0] for d in done}]
            if not finish(stack, done, on_done):
                return
            y_t = y_t[torch.as_tensor(keep, device=device)]
            for p in stack.params:
                p.grad = None
            continue
        stack.adam(options.learning_rate)
        if on_step is not None:
            on_step(int(stack.steps.max()), float(stack.best_loss.min()))


def stopped(stack: RegionStack, options: FitOptions) -> list[tuple[int, str]]:
    """(position in the batch, reason) of the regions the paper's rule stops: best MSE below
    ``exit_loss``; the "natural fit point" (below ``plateau_loss`` and no better for ``patience``
    steps); or the step cap."""
    done = []
    for i in range(len(stack.active)):
        bl = float(stack.best_loss[i])
        if bl < options.exit_loss:
            done.append((i, "exit-loss"))
        elif bl < options.plateau_loss and stack.since[i] >= options.patience:
            done.append((i, "natural-fit"))
        elif stack.steps[i] >= options.max_steps:
            done.append((i, "step-cap"))
    return done
