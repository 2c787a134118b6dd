"""Dropout drawn from uniform noise: the same distribution as ``nn.Dropout``, cheaper on CPU.

``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``, which on CPU costs about 2.5x
``rand_like`` (torch 2.13, one thread: 108 ms against 44 ms for a (3, 768, 20, 256) tensor); forward
plus backward of this module measured 102 ms against 161 ms there. Each element is kept with
probability ``1 - p`` and scaled by ``1 / (1 - p)``, exactly as ``nn.Dropout``; only the random
stream differs, so a model switching to it changes its numbers (its ``result_version`` moves).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def uniform_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``x`` with each element zeroed with probability ``p``, the rest scaled by ``1 / (1 - p)``.

    Shapes:
        x: any shape; returns the same shape (``x`` itself when not training or ``p == 0``).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Expected dropout probability in [0, 1) (got {p})")
    if not training or p == 0.0:
        return x
    scale = torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))  # 0 or 1 / (1 - p)
    return x * scale


class UniformDropout(nn.Module):
    """``nn.Dropout`` with the mask from :func:`uniform_dropout` (active in ``train()`` mode)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Expected dropout probability in [0, 1) (got {p})")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return uniform_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
