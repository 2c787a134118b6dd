"""mmseq/nn/gated_fusion.py: gates by hand, in (0, 1); concatenation fusion by hand."""

from __future__ import annotations

import math

import pytest
import torch

from mmseq.nn.gated_fusion import AdaptiveGatedFusion, ConcatFusion


def test_gates_and_fused_vector_by_hand() -> None:
    fusion = AdaptiveGatedFusion(2, 2)
    with torch.no_grad():
        fusion.gate_weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    long = torch.tensor([[2.0, 5.0]])
    short = torch.tensor([[1.0, 3.0]])
    fused, gates = fusion(long, short)
    a1, a2 = 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(3.0))  # sigmoid(2), sigmoid(-3)
    torch.testing.assert_close(gates, torch.tensor([[a1, a2]]))
    torch.testing.assert_close(fused, a1 * long + a2 * short)


def test_gates_lie_strictly_between_zero_and_one() -> None:
    torch.manual_seed(0)
    fusion = AdaptiveGatedFusion(16, 2)
    x = torch.randn(64, 16) * 3
    gates = fusion.gates(x, -x)
    assert gates.shape == (64, 2)
    assert ((gates > 0) & (gates < 1)).all()


def test_wrong_branch_count_or_width_is_an_error() -> None:
    fusion = AdaptiveGatedFusion(4, 2)
    with pytest.raises(ValueError, match="2 branches"):
        fusion(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="width 4"):
        fusion(torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="positive"):
        AdaptiveGatedFusion(0)


def test_concat_fusion_is_one_linear_map_of_the_concatenation() -> None:
    fusion = ConcatFusion(2, 2)
    with torch.no_grad():
        fusion.lin.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 1.0, 1.0, 0.0]]))
        fusion.lin.bias.copy_(torch.tensor([0.5, -0.5]))
    out = fusion(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(out, torch.tensor([[1.0 + 8.0 + 0.5, 2.0 + 3.0 - 0.5]]))
    with pytest.raises(ValueError, match="2 inputs"):
        fusion(torch.zeros(1, 2))
