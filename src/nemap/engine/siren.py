"""SIREN networks for many regions at once (stacked weights), in PyTorch.

A network maps a region-local input u ∈ [−1, 1]³ (x, y, z) to one output y: per layer
``a = W h + b`` then ``sin(ω a)`` (sine) or ``a`` (identity), W of shape [out, in] (spec §8.3).
Weights of B regions are stacked: W [B, out, in], b [B, out]; inputs are [B, V, 3] or, shared by
all regions, [V, 3].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from nemap.format.content import Layer


def init_weights(layers: Sequence[Layer], generator: torch.Generator) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """SIREN initialization of one network (float32, CPU), as the authors' code does it.

    First layer W ~ U(−1/in, 1/in); every later layer W ~ U(−√(6/in)/ω, √(6/in)/ω) with ω the
    hidden ω (also for the linear output layer); biases PyTorch's default U(−1/√in, 1/√in).
    (The published text states √(6/n) for the first layer; the code, which produced the paper's
    numbers and follows Sitzmann et al., uses 1/in.)
    """
    hidden_omega = next((layer.omega for layer in layers[1:] if layer.activation == "sine"), None) \
        or layers[0].omega or 30.0
    weights, biases = [], []
    for i, layer in enumerate(layers):
        n = layer.in_features
        bound = 1.0 / n if i == 0 else math.sqrt(6.0 / n) / float(hidden_omega)
        w = (torch.rand(layer.out_features, n, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        b = (torch.rand(layer.out_features, generator=generator, dtype=torch.float64) * 2 - 1) / math.sqrt(n)
        weights.append(w.float())
        biases.append(b.float())
    return weights, biases


def forward(u: torch.Tensor, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
            layers: Sequence[Layer]) -> torch.Tensor:
    """Outputs y [B, V] of B stacked networks at inputs u ([V, 3] shared, or [B, V, 3])."""
    h = u if u.dim() == 3 else u.unsqueeze(0).expand(weights[0].shape[0], -1, -1)
    for layer, w, b in zip(layers, weights, biases):
        a = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        h = torch.sin(layer.omega * a) if layer.activation == "sine" else a
    return h.squeeze(-1)


def folded(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
           layers: Sequence[Layer]) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
    """One network prepared for queries: per layer (ω·Wᵀ [in, out], ω·b [out], is_sine), so that a layer is
    one ``addmm`` and one ``sin`` (sin(ω(Wh + b)) = sin((ωW)h + ωb)); weights [out, in], biases [out]."""
    out = []
    for layer, w, b in zip(layers, weights, biases):
        scale = float(layer.omega) if layer.activation == "sine" else 1.0
        out.append(((w * scale).t().contiguous(), (b * scale).contiguous(), layer.activation == "sine"))
    return out


def run(h: torch.Tensor, network: Sequence[tuple[torch.Tensor, torch.Tensor, bool]]) -> torch.Tensor:
    """Outputs y [V] of one :func:`folded` network at inputs h [V, in]; sines in place unless autograd
    records the pass."""
    in_place = not torch.is_grad_enabled()
    for w, b, sine in network:
        h = torch.addmm(b, h, w)
        if sine:
            h = h.sin_() if in_place else torch.sin(h)
    return h.squeeze(-1)
