"""Gradient reversal: identity forward, -coefficient x gradient backward (hand values)."""

from __future__ import annotations

import pytest
import torch

from mmseq.nn.grad_reverse import GradientReversal, grad_reverse


def test_forward_is_identity_and_backward_flips_and_scales() -> None:
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    w = torch.tensor([0.5, 4.0, -1.0])
    y = grad_reverse(x, 0.25)
    assert torch.equal(y, x.detach())
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-0.125, -1.0, 0.25]))


def test_encoder_ascends_while_classifier_descends() -> None:
    # e = a * x; loss = b * GRL(e): dloss/db = e = 6 (unchanged), dloss/da = -c * b * x = -16.
    a = torch.tensor(3.0, requires_grad=True)
    b = torch.tensor(4.0, requires_grad=True)
    x = torch.tensor(2.0)
    loss = b * grad_reverse(a * x, 2.0)
    loss.backward()
    assert b.grad.item() == pytest.approx(6.0)
    assert a.grad.item() == pytest.approx(-16.0)


def test_module_matches_function_and_zero_coefficient_blocks() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    GradientReversal(0.0)(x).sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert "coefficient=0.0" in repr(GradientReversal(0.0))


def test_negative_coefficient_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="coefficient"):
        grad_reverse(torch.ones(1), -1.0)
    with pytest.raises(ValueError, match="coefficient"):
        GradientReversal(-0.5)
