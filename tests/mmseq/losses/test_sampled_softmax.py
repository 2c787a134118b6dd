"""Sampled softmax: its gradient matches full cross-entropy's in expectation (tiny cases)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmseq.losses.sampled_softmax import (
    MASKED_LOGIT,
    candidate_logits,
    sample_negatives,
    sampled_softmax_logits,
    sampled_softmax_loss,
)

C, TARGET = 8, 2
LOGITS = torch.tensor([0.3, -1.0, 0.8, 1.2, -0.4, 0.0, 0.6, -2.0])


def full_ce_gradient(s: torch.Tensor, t: int) -> torch.Tensor:
    return torch.softmax(s, 0) - F.one_hot(torch.tensor(t), s.numel()).float()


def sampled_gradients(s, t, n, draws, probs=None, correct=True, seed=0, per_position=False):
    """(draws, C) gradients of the sampled loss w.r.t. the full logit vector ``s``
    (``per_position``: the draw passed as the (M = 1, N) negatives of the one position)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(draws):
        leaf = s.clone().requires_grad_(True)
        neg, log_nq = sample_negatives(s.numel(), n, g, probs)
        if per_position:
            neg, log_nq = neg[None, :], log_nq[None, :]
        loss = sampled_softmax_loss(
            leaf[[t]], leaf[neg].reshape(1, n), torch.tensor([t]), neg, log_nq if correct else None
        )
        (grad,) = torch.autograd.grad(loss, leaf)
        out.append(grad)
    return torch.stack(out)


def tolerance(s, t, n, probs, grads):
    """4 standard errors of the mean gradient + twice the delta-method bias scale
    Var(Z_hat) / Z^2 of log Z_hat (Z_hat is unbiased; log's curvature biases it by O(1/N))."""
    q = torch.full((s.numel(),), 1.0 / s.numel()) if probs is None else probs
    w = torch.where(torch.arange(s.numel()) == t, 0.0, s.exp())  # e^{s_j} [j != t]
    var_term = ((w**2 / q).sum() - w.sum() ** 2) / n  # Var of (1/N) sum_k w_k / q_k
    z = s.exp().sum()
    stderr = grads.std(0) / math.sqrt(grads.shape[0])
    return 4 * stderr + 2 * float(var_term / z**2)


@pytest.mark.parametrize(
    "probs", [None, torch.tensor([8, 1, 4, 2, 1, 3, 1, 0.5]) / 20.5], ids=["uniform", "popularity"]
)
@pytest.mark.parametrize("per_position", [False, True], ids=["shared", "per-position"])
def test_gradient_matches_full_ce_in_expectation(probs, per_position: bool) -> None:
    n, draws = 256, 1000
    grads = sampled_gradients(LOGITS, TARGET, n, draws, probs, per_position=per_position)
    err = (grads.mean(0) - full_ce_gradient(LOGITS, TARGET)).abs()
    tol = tolerance(LOGITS, TARGET, n, probs, grads)
    assert (err < tol).all(), (err, tol)
    assert float(tol.max()) < 0.02  # the check has teeth: gradient entries are ~0.05-0.4


def test_popularity_sampling_without_logq_is_biased_and_with_it_is_not() -> None:
    probs = torch.tensor([8, 1, 4, 2, 1, 3, 1, 0.5]) / 20.5
    full = full_ce_gradient(LOGITS, TARGET)
    corrected = sampled_gradients(LOGITS, TARGET, 64, 600, probs).mean(0)
    plain = sampled_gradients(LOGITS, TARGET, 64, 600, probs, correct=False).mean(0)
    err_corrected = float((corrected - full).abs().max())
    err_plain = float((plain - full).abs().max())
    # Measured: 0.005 with the correction, 0.33 without (popular items are over-penalised).
    assert err_corrected < 0.03 and err_plain > 10 * err_corrected


def test_error_shrinks_with_more_negatives() -> None:
    full = full_ce_gradient(LOGITS, TARGET)
    errs = [
        float((sampled_gradients(LOGITS, TARGET, n, 400).mean(0) - full).abs().max())
        for n in (2, 256)
    ]
    assert errs[1] < errs[0] / 3, errs


def test_same_generator_seed_same_negatives() -> None:
    probs = torch.softmax(torch.randn(50, generator=torch.Generator().manual_seed(1)), 0)
    for p in (None, probs):
        a = sample_negatives(50, 32, torch.Generator().manual_seed(7), p)
        b = sample_negatives(50, 32, torch.Generator().manual_seed(7), p)
        c = sample_negatives(50, 32, torch.Generator().manual_seed(8), p)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[0], c[0])


def test_log_nq_uniform_and_popularity() -> None:
    neg, log_nq = sample_negatives(10, 4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(log_nq, torch.full((4,), math.log(0.4)))
    probs = torch.tensor([0.5, 0.25, 0.25])
    neg, log_nq = sample_negatives(3, 4, torch.Generator().manual_seed(0), probs)
    torch.testing.assert_close(log_nq, torch.log(4 * probs[neg]))


def test_accidental_hits_are_masked_and_positive_is_column_zero() -> None:
    pos = torch.tensor([1.0, 2.0])
    neg = torch.tensor([[0.5, 0.1, 0.2], [0.3, 0.4, 0.6]])
    targets = torch.tensor([4, 7])
    negatives = torch.tensor([7, 4, 1])
    logits = sampled_softmax_logits(pos, neg, targets, negatives, torch.zeros(3))
    assert logits[0, 2] == MASKED_LOGIT and logits[1, 1] == MASKED_LOGIT
    assert logits[0, 1] == 0.5 and logits[1, 3] == 0.6 and torch.equal(logits[:, 0], pos)
    # Every negative a hit: the loss is exactly 0 (only the positive is left).
    loss = sampled_softmax_loss(pos[:1], neg[:1], torch.tensor([5]), torch.tensor([5, 5, 5]))
    assert float(loss) == 0.0


def test_candidate_logits_equal_the_full_scores() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, 5, 4, generator=g)  # (networks, M, d)
    w = torch.randn(3, 9, 4, generator=g)
    b = torch.randn(3, 9, generator=g)
    targets, negatives = torch.tensor([0, 8, 3, 3, 1]), torch.tensor([2, 2, 5])
    full = q @ w.transpose(1, 2) + b[:, None, :]  # (3, 5, 9)
    pos, neg = candidate_logits(q, w, targets, negatives, b)
    torch.testing.assert_close(pos, full.gather(2, targets.expand(3, 5)[..., None])[..., 0])
    torch.testing.assert_close(neg, full[..., negatives])
    pos2, neg2 = candidate_logits(q[0], w[0], targets, negatives)  # shared table, no bias
    torch.testing.assert_close(neg2, (q[0] @ w[0].T)[:, negatives])


def test_shape_mismatch_is_one_line_error() -> None:
    with pytest.raises(ValueError, match="neg_logits"):
        sampled_softmax_logits(
            torch.zeros(2),
            torch.zeros(2, 3),
            torch.zeros(2, dtype=torch.long),
            torch.zeros(4, dtype=torch.long),
        )


def test_per_position_negatives_score_and_mask_each_position_on_its_own() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, 5, 4, generator=g)  # (networks, M, d)
    w = torch.randn(3, 9, 4, generator=g)
    b = torch.randn(3, 9, generator=g)
    targets = torch.tensor([0, 8, 3, 3, 1])
    negatives = torch.tensor([[2, 0, 5], [8, 1, 1], [4, 4, 3], [6, 7, 0], [1, 2, 8]])  # (M, N)
    full = q @ w.transpose(1, 2) + b[:, None, :]  # (3, 5, 9)
    pos, neg = candidate_logits(q, w, targets, negatives, b)
    torch.testing.assert_close(neg, full.gather(2, negatives.expand(3, 5, 3)))
    torch.testing.assert_close(pos, full.gather(2, targets.expand(3, 5)[..., None])[..., 0])
    _, shared_w = candidate_logits(q[0], w[0], targets, negatives)  # one table, no bias
    torch.testing.assert_close(shared_w, (q[0] @ w[0].T).gather(1, negatives))
    logits = sampled_softmax_logits(pos, neg, targets, negatives, torch.tensor(0.5))
    hits = (targets[:, None] == negatives).expand(3, 5, 3)  # each row against its own negatives
    assert hits[0].sum() == 4 and not hits[0, 3].any()  # rows 0, 1, 2, 4 hold their target once
    assert bool((logits[..., 1:][hits] == MASKED_LOGIT).all())
    torch.testing.assert_close(logits[..., 1:][~hits], neg[~hits] - 0.5)
    with pytest.raises(ValueError, match="negatives"):  # (M, N) must have M rows
        sampled_softmax_logits(pos, neg[:, :4], targets[:4], negatives[:4])
