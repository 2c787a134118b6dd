"""KL and InfoNCE on hand-made distributions."""

from __future__ import annotations

import math

import pytest
import torch

from mmseq.losses import info_nce, kl_divergence


def test_kl_is_zero_when_views_agree_and_matches_hand_value() -> None:
    t = torch.tensor([[1.0, 2.0, 3.0]])
    assert kl_divergence(t, t.clone()).item() == pytest.approx(0.0, abs=1e-7)
    p = torch.tensor([0.5, 0.5])
    q = torch.tensor([0.25, 0.75])
    expected = float((p * (p / q).log()).sum())  # KL(p || q) = 0.1438...
    got = kl_divergence(p.log().unsqueeze(0), q.log().unsqueeze(0)).item()
    assert got == pytest.approx(expected, rel=1e-6)
    assert got == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-6)


def test_kl_direction_and_teacher_detach() -> None:
    teacher = torch.tensor([[2.0, 0.0]], requires_grad=True)
    student = torch.tensor([[0.0, 2.0]], requires_grad=True)
    kl_divergence(teacher, student).backward()
    assert teacher.grad is None and student.grad is not None
    teacher.grad = None
    kl_divergence(teacher, student, detach_teacher=False).backward()
    assert teacher.grad is not None
    # KL is asymmetric: swapping the arguments changes the value on non-mirrored inputs.
    a, b = torch.tensor([[3.0, 0.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0]])
    assert kl_divergence(a, b).item() != pytest.approx(kl_divergence(b, a).item(), rel=1e-3)


def test_info_nce_is_log_batch_for_identical_similarities() -> None:
    b = 8
    ones = torch.ones(b, 4)
    assert info_nce(ones, ones).item() == pytest.approx(math.log(b), rel=1e-6)


def test_info_nce_at_random_init_is_near_log_batch() -> None:
    gen = torch.Generator().manual_seed(0)
    a, p = torch.randn(256, 64, generator=gen), torch.randn(256, 64, generator=gen)
    assert info_nce(a, p, tau=1.0).item() == pytest.approx(math.log(256), rel=0.02)


def test_info_nce_extra_negatives_raise_the_loss_and_perfect_views_lower_it() -> None:
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(16, 8, generator=gen)
    base = info_nce(a, a, tau=0.1).item()
    assert base < 0.1  # aligned views are almost surely each other's nearest neighbour
    with_neg = info_nce(a, a, tau=0.1, extra_negatives=a[:4]).item()
    assert with_neg > base


def test_shape_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="anchor"):
        info_nce(torch.ones(2, 3), torch.ones(3, 3))
    with pytest.raises(ValueError, match="tau"):
        kl_divergence(torch.ones(1, 2), torch.ones(1, 2), tau=0.0)
