"""Optimiser construction for the trainer."""

from __future__ import annotations

import torch
from torch import nn

from mmseq.config import TrainConfig
from mmseq.errors import ConfigError


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam over the trainable parameters of ``model`` with ``cfg.lr`` and ``cfg.weight_decay``.

    Raises:
        ConfigError: if ``cfg.lr`` is not positive or the model has no trainable parameter.
    """
    if not cfg.lr > 0:
        raise ConfigError(f"Expected 'train.lr' to be positive (got {cfg.lr})")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"Model {type(model).__name__} has no trainable parameters to optimise")
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
