"""S4Rec's losses on hand values: Sinkhorn marginals, clustering CE, prototype negatives, KL."""

from __future__ import annotations

import math

import pytest
import torch

from mmseq.losses import info_nce
from mmseq.losses.s4rec import (
    cluster_distillation_loss,
    clustering_cross_entropy,
    other_prototypes,
    sequence_contrastive_loss,
    sinkhorn_knopp,
)


def test_sinkhorn_rows_and_columns_sum_to_the_uniform_marginals() -> None:
    scores = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    q = sinkhorn_knopp(scores, epsilon=0.5, num_iterations=100)
    torch.testing.assert_close(q.sum(1), torch.full((6,), 1 / 6))
    torch.testing.assert_close(q.sum(0), torch.full((4,), 1 / 4))
    assert (q >= 0).all()
    # With few iterations the rows (rescaled last) are still exact.
    q3 = sinkhorn_knopp(scores, epsilon=0.5, num_iterations=3)
    torch.testing.assert_close(q3.sum(1), torch.full((6,), 1 / 6))


def test_sinkhorn_hand_cases() -> None:
    # Equal scores: the uniform plan 1 / (B K).
    torch.testing.assert_close(sinkhorn_knopp(torch.zeros(3, 2)), torch.full((3, 2), 1 / 6))
    # Every user prefers prototype 0: equal partition still spreads them over the prototypes,
    # and with a small epsilon distinct preferences give (almost) a permutation.
    q = 3 * sinkhorn_knopp(torch.eye(3)[[2, 0, 1]], epsilon=0.05, num_iterations=50)
    torch.testing.assert_close(q, torch.eye(3)[[2, 0, 1]], atol=1e-6, rtol=0)
    skewed = 4 * sinkhorn_knopp(torch.tensor([[1.0, 0.0]] * 4), epsilon=0.05, num_iterations=50)
    torch.testing.assert_close(skewed.sum(0), torch.tensor([2.0, 2.0]))


def test_sinkhorn_is_stable_for_tiny_epsilon_and_carries_no_gradient() -> None:
    scores = torch.tensor([[1.0, -1.0], [0.5, 0.9]], requires_grad=True)
    q = sinkhorn_knopp(scores, epsilon=1e-3)
    assert torch.isfinite(q).all() and not q.requires_grad
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn_knopp(scores, epsilon=0.0)


def test_clustering_cross_entropy_hand_value() -> None:
    targets = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])  # softmax [1/4, 3/4] and [1/2, 1/2]
    expected = (math.log(4.0) + math.log(2.0)) / 2
    assert clustering_cross_entropy(targets, logits).item() == pytest.approx(expected, rel=1e-6)


def test_other_prototypes_skips_the_assigned_cluster() -> None:
    mu = torch.arange(4.0)[:, None].expand(4, 2)  # row k = (k, k)
    out = other_prototypes(mu, torch.tensor([0, 2, 3]))
    assert out[:, :, 0].tolist() == [[1, 2, 3], [0, 1, 3], [0, 1, 2]]


def test_sequence_contrastive_loss_is_two_info_nce_with_other_prototypes() -> None:
    gen = torch.Generator().manual_seed(2)
    z1, z2, mu = (torch.randn(5, 3, generator=gen) for _ in range(3))
    assignment = torch.tensor([0, 1, 2, 0, 4])
    mu = torch.cat([mu, torch.randn(1, 3, generator=gen)])  # K = 6
    negatives = torch.stack([mu[[k for k in range(6) if k != a]] for a in assignment.tolist()])
    expected = (info_nce(z1, z2, tau=0.5, extra_negatives=negatives)
                + info_nce(z2, z1, tau=0.5, extra_negatives=negatives))
    got = sequence_contrastive_loss(z1, z2, mu, assignment, tau=0.5)
    torch.testing.assert_close(got, expected)


def test_sequence_contrastive_loss_at_random_init_is_twice_log_of_the_candidates() -> None:
    # B in-batch candidates + K - 1 prototype negatives, all unrelated at random init.
    gen = torch.Generator().manual_seed(3)
    b, k = 256, 128
    z1, z2 = torch.randn(b, 64, generator=gen), torch.randn(b, 64, generator=gen)
    mu = torch.randn(k, 64, generator=gen)
    loss = sequence_contrastive_loss(z1, z2, mu, torch.randint(k, (b,), generator=gen))
    assert loss.item() == pytest.approx(2 * math.log(b + k - 1), rel=0.02)


def test_cluster_distillation_hand_value_and_detached_teacher() -> None:
    mu = torch.tensor([[0.0, math.log(3.0)], [5.0, 5.0]], requires_grad=True)
    z = torch.zeros(1, 2, requires_grad=True)
    loss = cluster_distillation_loss(mu, torch.tensor([0]), z, tau=1.0)
    # KL([1/4, 3/4] || [1/2, 1/2])
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert mu.grad is None and z.grad is not None
