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


def epoch_learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate of 1-based ``epoch`` under ``cfg.lr_schedule``.

    ``"linear"`` decays per epoch, ``lr * (1 - (epoch - 1) / epochs)``: the first epoch trains at
    ``lr`` and the last at ``lr / epochs``. A pure function of the epoch, so a resumed run sets
    exactly the rate the uninterrupted run had, with no scheduler state to save.
    """
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "linear":
        return cfg.lr * (1.0 - (epoch - 1) / max(cfg.epochs, 1))
    raise ConfigError(
        f"Unknown 'train.lr_schedule' {cfg.lr_schedule!r}; expected 'constant' or 'linear'"
    )


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate to ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
