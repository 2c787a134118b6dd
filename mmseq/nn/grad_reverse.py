"""Gradient reversal: the identity forward, ``-coefficient`` times the gradient backward.

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015. Placed between
an encoder and an adversarial classifier, the classifier descends its loss while the encoder
ascends it (S4Rec's head/tail adversarial task, methods.md 5).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, coefficient: float) -> Tensor:  # noqa: ANN401
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:  # noqa: ANN401
        return -ctx.coefficient * grad_output, None


def grad_reverse(x: Tensor, coefficient: float = 1.0) -> Tensor:
    r"""Identity on ``x``; the gradient flowing back through it is multiplied by ``-coefficient``.

    :math:`y = x`, :math:`\partial_x \mathcal{L} = -c \, \partial_y \mathcal{L}`.

    Args:
        x: any tensor.
        coefficient: the scale ``c`` of the reversed gradient (>= 0) (default: 1.0).

    Shapes:
        x: any; returns the same shape.
    """
    if coefficient < 0:
        raise ValueError(f"Expected 'coefficient' >= 0 (got {coefficient})")
    return _GradientReversal.apply(x, float(coefficient))


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse` (no parameters).

    Args:
        coefficient: scale of the reversed gradient (default: 1.0).
    """

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        if coefficient < 0:
            raise ValueError(f"Expected 'coefficient' >= 0 (got {coefficient})")
        self.coefficient = float(coefficient)

    def forward(self, x: Tensor) -> Tensor:
        return grad_reverse(x, self.coefficient)

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient}"
