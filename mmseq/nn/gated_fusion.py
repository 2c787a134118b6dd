"""Fusion layers of SD-MTMP (methods.md 1.7 and the w/o-S2 ablation of 1.8).

:class:`AdaptiveGatedFusion` is the adaptive gate ``e = sum_k sigmoid(x_k . w_k) x_k``;
:class:`ConcatFusion` is the concatenation + linear layer the w/o-S2 ablation fuses the topic and
rating views with instead of adding them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AdaptiveGatedFusion(nn.Module):
    r"""``e = \sum_k \alpha_k x_k`` with a per-row gate ``\alpha_k = \sigma(x_k \cdot w_k)``.

    SD-MTMP uses two branches: ``alpha1 = sigmoid(e_long . w_long)``,
    ``alpha2 = sigmoid(e_short . w_short)``. The gates are independent sigmoids (not a softmax
    over branches), as in the paper, so they need not sum to 1. The gate vectors ``w_k`` are
    Xavier-uniform initialised.

    Args:
        dim: width d of every branch.
        num_branches: number K of branches (default: 2).

    Shapes:
        - inputs: K tensors (B, d).
        - output: ``(fused (B, d), gates (B, K))``, gates in (0, 1).
    """

    def __init__(self, dim: int, num_branches: int = 2) -> None:
        super().__init__()
        if dim <= 0 or num_branches <= 0:
            raise ValueError(
                f"Expected positive 'dim' and 'num_branches' (got {dim}, {num_branches})"
            )
        self.dim, self.num_branches = dim, num_branches
        self.gate_weight = nn.Parameter(torch.empty(num_branches, dim))  # row k = w_k
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.gate_weight)

    def gates(self, *branches: Tensor) -> Tensor:
        """(B, K) gates ``sigmoid(x_k . w_k)``."""
        if len(branches) != self.num_branches:
            raise ValueError(f"Expected {self.num_branches} branches (got {len(branches)})")
        stacked = torch.stack(branches, dim=1)  # (B, K, d)
        if stacked.size(-1) != self.dim:
            raise ValueError(f"Expected branches of width {self.dim} (got {stacked.size(-1)})")
        return torch.sigmoid((stacked * self.gate_weight).sum(-1))  # (B, K)

    def forward(self, *branches: Tensor) -> tuple[Tensor, Tensor]:
        gates = self.gates(*branches)  # (B, K)
        fused = (gates.unsqueeze(-1) * torch.stack(branches, dim=1)).sum(1)  # (B, d)
        return fused, gates

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_branches={self.num_branches}"


class ConcatFusion(nn.Module):
    """``e = [x_1; ...; x_K] W + b``: the concatenation fusion of SD-MTMP's w/o-S2 ablation.

    Args:
        dim: width d of every input and of the output.
        num_inputs: number K of concatenated inputs (default: 2).

    Shapes:
        - inputs: K tensors (B, d).
        - output: (B, d).
    """

    def __init__(self, dim: int, num_inputs: int = 2) -> None:
        super().__init__()
        if dim <= 0 or num_inputs <= 0:
            raise ValueError(f"Expected positive 'dim' and 'num_inputs' (got {dim}, {num_inputs})")
        self.num_inputs = num_inputs
        self.lin = nn.Linear(num_inputs * dim, dim)
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)

    def forward(self, *inputs: Tensor) -> Tensor:
        if len(inputs) != self.num_inputs:
            raise ValueError(f"Expected {self.num_inputs} inputs (got {len(inputs)})")
        return self.lin(torch.cat(inputs, dim=-1))  # (B, d)


__all__ = ["AdaptiveGatedFusion", "ConcatFusion"]
