"""The one device resolver: config strings such as ``"auto"`` or ``"cuda:1"`` -> torch.device."""

from __future__ import annotations

import torch

from mmseq.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; an unavailable CUDA device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is '{name}' but CUDA is not available on this machine")
    return device
