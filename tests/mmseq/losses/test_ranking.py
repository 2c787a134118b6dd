"""Loss functions against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from mmseq.losses import bpr_loss, cross_entropy_over_items, l2_regularization


def test_bpr_loss_by_hand() -> None:
    # mean(-log sigmoid(2 - 0), -log sigmoid(0 - 0)) = (log(1 + e^-2) + log 2) / 2
    value = bpr_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]))
    assert value.item() == pytest.approx((math.log1p(math.exp(-2)) + math.log(2)) / 2, abs=1e-6)
    assert value.item() == pytest.approx(0.4100378, abs=1e-6)


def test_bpr_loss_is_stable_for_large_gaps() -> None:
    pos, neg = torch.tensor([0.0, 1000.0]), torch.tensor([1000.0, 0.0])
    value = bpr_loss(pos, neg)
    assert value.item() == pytest.approx(500.0)  # (1000 + 0) / 2, no inf or nan
    pos.requires_grad_(True)
    bpr_loss(pos, neg).backward()
    assert pos.grad.tolist() == pytest.approx([-0.5, 0.0])


def test_l2_regularization_by_hand() -> None:
    a = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    # squares: 1 + 4 + 9 + 0 + 1 + 1 = 16; 0.5 * 16 / batch 2 = 4
    assert l2_regularization(a, b).item() == pytest.approx(4.0)
    assert l2_regularization(a).item() == pytest.approx(0.5 * 14 / 2)
    with pytest.raises(ValueError):
        l2_regularization()


def test_cross_entropy_over_items_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]])
    targets = torch.tensor([0, 0, -100])
    # row 0: -log(1/2); row 1: -log(3/4); row 2 ignored
    expect = (math.log(2) - math.log(0.75)) / 2
    assert cross_entropy_over_items(logits, targets).item() == pytest.approx(expect, abs=1e-6)
    # (B, T, n) logits with (B, T) targets flatten the same way
    value = cross_entropy_over_items(logits.view(1, 3, 2), targets.view(1, 3))
    assert value.item() == pytest.approx(expect, abs=1e-6)
    assert math.isnan(cross_entropy_over_items(logits, torch.full((3,), -100)).item())
