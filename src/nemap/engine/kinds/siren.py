"""SIREN regions in the engine (spec §8.3), in PyTorch: float32 by default (never TF32), ω folded into the
weights, sines in place, chunks of CHUNK_POINTS points; gradients by reverse mode with respect to the three
inputs only. Torch is imported when the first SIREN map is evaluated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nemap.engine.kinds.base import RegionEvaluator
from nemap.errors import require

CHUNK_POINTS = 1 << 14  # points per network call


class SirenEvaluator(RegionEvaluator):
    """The networks of a map (``content``: layers, weights, biases, regions) on a torch device."""

    def __init__(self, content: Any, device: Any = "cpu", dtype: Any = None):
        torch = require("torch", "siren", "evaluate SIREN regions")
        from nemap.engine.device import no_tf32, resolve_device

        self.torch = torch
        self.device = resolve_device(device)
        self.dtype = torch.float32 if dtype is None else dtype
        if self.device.type == "cuda":
            no_tf32()
        self.layers = list(content.layers)
        self.bounds = np.asarray(content.regions.bounds, dtype=np.int64)
        self.weights = [torch.as_tensor(np.asarray(w), device=self.device).to(self.dtype) for w in content.weights]
        self.biases = [torch.as_tensor(np.asarray(b), device=self.device).to(self.dtype) for b in content.biases]
        self._networks: dict[int, list[Any]] = {}

    def _network(self, slot: int) -> list[Any]:
        from nemap.engine import siren

        if slot not in self._networks:
            self._networks[slot] = siren.folded([w[slot] for w in self.weights], [b[slot] for b in self.biases],
                                                self.layers)
        return self._networks[slot]

    def output(self, r: int, slot: int, q: np.ndarray, gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
        from nemap.engine import siren

        first, last = self.bounds[r, 0].astype(np.float64), self.bounds[r, 1].astype(np.float64)
        span = last - first
        du_dq = np.where(span > 0, 2.0 / np.where(span > 0, span, 1.0), 0.0)
        u = (q - first) * du_dq - (span > 0)  # u = 0 on an axis one voxel thin
        network = self._network(slot)
        y, dy_du = chunked(self.torch, self.device, u, self.dtype, lambda t: siren.run(t, network), gradient)
        return y, (dy_du * du_dq if gradient else None)


def chunked(torch: Any, device: Any, x: np.ndarray, dtype: Any, output: Callable[[Any], Any],
            gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``output`` (inputs [M, 3] → y [M]) over chunks of x, with dy/dx by autograd when asked."""
    y = np.empty(x.shape[0])
    grads = np.empty_like(x) if gradient else None
    for start in range(0, x.shape[0], CHUNK_POINTS):
        chunk = slice(start, start + CHUNK_POINTS)
        xt = torch.as_tensor(x[chunk], device=device, dtype=dtype)
        with torch.enable_grad() if gradient else torch.inference_mode():
            if gradient:
                xt.requires_grad_(True)
            yt = output(xt)
            if gradient:
                (g,) = torch.autograd.grad(yt.sum(), xt)
                grads[chunk] = g.detach().cpu().numpy()
        y[chunk] = yt.detach().cpu().numpy()
    return y, grads
