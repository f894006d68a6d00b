"""Regions fitted together: their stacked weights, Adam moments and best copies, in torch.

The training loops (``nemap.fit.full_batch``, ``nemap.fit.sampled``) drive a :class:`RegionStack`;
finished regions leave it as :class:`RegionFit`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nemap.engine import siren
from nemap.fit.region import RegionFit
from nemap.format.content import Layer


def local_inputs(shape: tuple[int, int, int]) -> np.ndarray:
    """u [V, 3] at the voxel centres of a region of ``shape`` voxels, x slowest (C order of [x, y, z])."""
    axes = [np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1) for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def adam_step(params: list[torch.Tensor], m: list[torch.Tensor], v: list[torch.Tensor], step: torch.Tensor,
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


class RegionStack:
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
        adam_step(self.params, self.m, self.v, self.step, lr)
        self.steps += 1


def finish(stack: RegionStack, done: list[tuple[int, str]], on_done: Callable[[RegionFit], None]) -> bool:
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
