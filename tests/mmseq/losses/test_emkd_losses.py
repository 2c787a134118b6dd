"""EMKD's losses: equal to loops over info_nce / kl_divergence, and hand values."""

from __future__ import annotations

import math

import pytest
import torch

from mmseq.losses import info_nce, kl_divergence
from mmseq.losses.emkd import (
    attribute_prediction_loss,
    ensemble_contrastive_losses,
    mutual_kl_divergence,
)


def test_contrastive_losses_equal_the_info_nce_loops() -> None:
    gen = torch.Generator().manual_seed(0)
    n, m, b, d = 3, 2, 5, 7
    originals = torch.randn(n, b, d, generator=gen)
    views = torch.randn(n, m, b, d, generator=gen)
    icl, ccl = ensemble_contrastive_losses(originals, views, tau=0.3)
    exp_icl = sum(sum(info_nce(views[x, k], originals[x], tau=0.3) for k in range(m)) / m
                  for x in range(n))
    exp_ccl = sum(sum(info_nce(views[y, k], originals[x], tau=0.3) for k in range(m)) / m
                  for x in range(n) for y in range(n) if x != y)
    torch.testing.assert_close(icl, exp_icl)
    torch.testing.assert_close(ccl, exp_ccl)


def test_contrastive_losses_at_random_init_are_log_batch_per_term() -> None:
    gen = torch.Generator().manual_seed(1)
    n, b = 3, 256
    icl, ccl = ensemble_contrastive_losses(torch.randn(n, b, 64, generator=gen),
                                           torch.randn(n, 2, b, 64, generator=gen), tau=1.0)
    assert icl.item() == pytest.approx(n * math.log(b), rel=0.02)
    assert ccl.item() == pytest.approx(n * (n - 1) * math.log(b), rel=0.02)


def test_one_network_has_no_cross_term_and_aligned_views_score_low() -> None:
    x = torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(2))
    icl, ccl = ensemble_contrastive_losses(x, x[:, None], tau=0.05)
    assert ccl.item() == 0.0 and icl.item() < 0.05


def test_mutual_kl_hand_value_for_two_networks() -> None:
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    logits = torch.stack([p.log(), q.log()])[:, None, :]  # (N=2, R=1, C=2)
    kl_pq = 0.5 * math.log(2) + 0.5 * math.log(2 / 3)  # 0.1438
    kl_qp = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)  # 0.1308
    got = mutual_kl_divergence(logits).item()
    assert got == pytest.approx(0.5 * (kl_pq + kl_qp), rel=1e-5)


def test_mutual_kl_equals_the_pairwise_kl_loop_in_value_and_gradient() -> None:
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 4, 6, generator=gen, requires_grad=True)
    fast = mutual_kl_divergence(logits, tau=0.3)
    (g_fast,) = torch.autograd.grad(fast, logits)
    slow = 0.5 * sum(kl_divergence(logits[y], logits[x], tau=0.3)
                     for x in range(3) for y in range(3) if x != y)
    (g_slow,) = torch.autograd.grad(slow, logits)
    torch.testing.assert_close(fast, slow)
    torch.testing.assert_close(g_fast, g_slow)
    rows = mutual_kl_divergence(logits, tau=0.3, reduction="none")
    assert rows.shape == (4,)
    torch.testing.assert_close(rows.mean(), fast)


def test_mutual_kl_is_zero_when_networks_agree() -> None:
    one = torch.randn(1, 5, 9)
    assert mutual_kl_divergence(one.expand(3, 5, 9)).abs().item() < 1e-6


def test_attribute_bce_hand_value() -> None:
    logits = torch.tensor([[0.0, 2.0]])
    targets = torch.tensor([[1.0, 0.0]])
    expected = (math.log(2.0) + math.log(1.0 + math.exp(2.0))) / 2  # -log s(0), -log(1 - s(2))
    assert attribute_prediction_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    assert attribute_prediction_loss(logits, targets.bool()).item() == pytest.approx(expected)


def test_shape_errors_name_the_arguments() -> None:
    with pytest.raises(ValueError, match="views"):
        ensemble_contrastive_losses(torch.ones(2, 3, 4), torch.ones(2, 1, 3, 5))
    with pytest.raises(ValueError, match="logits"):
        mutual_kl_divergence(torch.ones(2, 3))
    with pytest.raises(ValueError, match="targets"):
        attribute_prediction_loss(torch.ones(2, 3), torch.ones(2, 4))
