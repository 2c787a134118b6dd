"""mmseq/losses/self_distillation.py: zero when the views agree, KL by hand, gradients, InfoNCE."""

from __future__ import annotations

import math

import pytest
import torch

from mmseq.losses.self_distillation import (
    contrastive_alignment_loss,
    cross_modal_self_distillation,
    self_distillation_loss,
)


def test_zero_when_the_two_views_agree_up_to_a_shift() -> None:
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    assert self_distillation_loss(x, x).item() == pytest.approx(0.0, abs=1e-7)
    # softmax is shift-invariant per row, so a per-row constant changes nothing
    shifted = x + torch.arange(5.0).unsqueeze(1)
    assert self_distillation_loss(x, shifted, tau=0.5).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_by_hand_teacher_first() -> None:
    teacher = torch.tensor([[math.log(3.0), 0.0]])  # softmax [3/4, 1/4]
    student = torch.tensor([[0.0, 0.0]])  # softmax [1/2, 1/2]
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert self_distillation_loss(teacher, student).item() == pytest.approx(expected, rel=1e-6)
    # reversed arguments give the other KL, which differs: the direction is the spec's
    reverse = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert self_distillation_loss(student, teacher).item() == pytest.approx(reverse, rel=1e-6)
    # temperature 2 halves the logits: teacher softmax [sqrt3, 1] / (sqrt3 + 1)
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    by_hand = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    assert self_distillation_loss(teacher, student, tau=2.0).item() == pytest.approx(by_hand)


def test_teacher_detached_by_default_and_trainable_when_asked() -> None:
    teacher = torch.randn(4, 6, generator=torch.Generator().manual_seed(1), requires_grad=True)
    student = torch.randn(4, 6, generator=torch.Generator().manual_seed(2), requires_grad=True)
    self_distillation_loss(teacher, student).backward()
    assert teacher.grad is None and student.grad is not None and student.grad.abs().sum() > 0
    student.grad = None
    self_distillation_loss(teacher, student, detach_teacher=False).backward()
    assert teacher.grad is not None and teacher.grad.abs().sum() > 0


def test_cross_modal_loss_is_the_user_plus_item_terms() -> None:
    gen = torch.Generator().manual_seed(3)
    ut, ui, it, ii = (torch.randn(n, 4, generator=gen) for n in (3, 3, 5, 5))
    total = cross_modal_self_distillation(ut, ui, it, ii, tau=0.7)
    parts = self_distillation_loss(ut, ui, tau=0.7) + self_distillation_loss(it, ii, tau=0.7)
    torch.testing.assert_close(total, parts)
    assert cross_modal_self_distillation(ui, ui, ii, ii).item() == pytest.approx(0.0, abs=1e-7)


def test_contrastive_alignment_prefers_aligned_views_and_trains_both() -> None:
    gen = torch.Generator().manual_seed(4)
    users = torch.randn(6, 8, generator=gen)
    items = torch.randn(7, 8, generator=gen)
    aligned = contrastive_alignment_loss(users, users, items, items, tau=0.2)
    shuffled = contrastive_alignment_loss(users, users.roll(1, 0), items, items.roll(1, 0), tau=0.2)
    assert aligned < shuffled
    assert torch.isfinite(aligned) and aligned > 0  # other rows still take some softmax mass
    topic = users.clone().requires_grad_()
    inter = users.roll(2, 0).clone().requires_grad_()
    contrastive_alignment_loss(topic, inter, items, items).backward()
    assert topic.grad is not None and inter.grad is not None
