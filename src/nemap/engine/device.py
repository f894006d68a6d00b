"""Which torch device queries and fits run on, and the precision they keep there."""

from __future__ import annotations

import torch

from nemap.errors import ArgumentError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' → CUDA when available, else CPU; an unknown device, or CUDA without a GPU, is an
    ``ArgumentError`` (code DEVICE_UNAVAILABLE, parameter ``device``)."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ArgumentError(f"'device' {device!r} is not a torch device (auto, cpu, cuda, cuda:N)",
                            parameter="device", code="DEVICE_UNAVAILABLE") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ArgumentError(f"'device' {device!r} was asked for, but PyTorch sees no CUDA GPU",
                            parameter="device", code="DEVICE_UNAVAILABLE")
    if resolved.type not in ("cpu", "cuda"):
        raise ArgumentError(f"'device' {device!r} is not supported (auto, cpu, cuda, cuda:N)",
                            parameter="device", code="DEVICE_UNAVAILABLE")
    return resolved


def no_tf32() -> None:
    """Conformant precision (spec §9.5): IEEE float32 matrix products on GPUs too."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
