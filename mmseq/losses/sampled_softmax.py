r"""Sampled softmax over items (pure): N negatives shared by a batch, logQ-corrected.

The full softmax cross-entropy over C items costs O(C d) per position; sampled softmax replaces
the normaliser by an importance-sampling estimate over N items drawn from a proposal ``q``
(Bengio & Senecal 2008; Jean et al., ACL 2015), shared by every position of the batch as in
gSASRec / eSASRec:

.. math::
    \hat Z = e^{s_{t}} + \sum_{k=1}^{N} [n_k \ne t]\, e^{s_{n_k} - \log(N q_{n_k})},
    \qquad \mathcal{L} = -s_t + \log \hat Z.

``E[sum_k [n_k != t] e^{s_{n_k}} / (N q_{n_k})] = sum_{j != t} e^{s_j}``, so ``Z_hat`` is unbiased
for the full normaliser and the loss and its gradient converge to full cross-entropy's as N grows
(the bias of the log is O(1/N)); tests/mmseq/losses/test_sampled_softmax.py checks the gradient
against full CE on a tiny case. "Accidental hits" (a negative equal to the position's target) are
masked, which is what makes the sum over negatives estimate the sum over j != t. Without the
correction (``log_nq=None``) the loss is plain softmax over [positive, negatives].

Negatives are either shared by the batch, ``(N,)``, or drawn for each position, ``(M, N)`` (as
RecTools' SASRec, the eSASRec line, draws them: every position sees its own N items, so a batch
touches M x N items instead of N); every function here takes either.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MASKED_LOGIT",
    "candidate_logits",
    "sample_negatives",
    "sampled_softmax_logits",
    "sampled_softmax_loss",
]

#: Logit of a masked accidental hit: exp() is exactly 0 in float32, yet sums of a few of them stay
#: finite (unlike -inf or finfo.min), so KL-type losses on these logits see 0 * finite, not NaN.
MASKED_LOGIT = -1.0e9


def sample_negatives(
    num_items: int,
    num_negatives: int,
    generator: torch.Generator,
    probs: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """N item indices drawn i.i.d. (with replacement) and their ``log(N q)``.

    Args:
        num_items: C, the size of the item space.
        num_negatives: N, draws shared by the whole batch.
        generator: the only source of randomness (on the device the items are wanted on).
        probs: the proposal ``q`` over items (C,), summing to 1 and > 0 wherever a logit can be
            finite; ``None`` = uniform (default: None).

    Returns:
        ``(negatives (N,) int64 in [0, C), log_nq (N,) float32)``, on ``generator.device``.
    """
    if num_items < 1 or num_negatives < 1:
        raise ValueError(
            f"Expected 'num_items' and 'num_negatives' >= 1 (got {num_items}, {num_negatives})"
        )
    device = generator.device
    if probs is None:
        negatives = torch.randint(num_items, (num_negatives,), generator=generator, device=device)
        log_nq = torch.full((num_negatives,), math.log(num_negatives / num_items), device=device)
        return negatives, log_nq
    if probs.shape != (num_items,):
        raise ValueError(f"Expected 'probs' of shape ({num_items},) (got {tuple(probs.shape)})")
    negatives = torch.multinomial(probs, num_negatives, replacement=True, generator=generator)
    return negatives, torch.log(num_negatives * probs[negatives]).float()


def candidate_logits(
    queries: Tensor,
    item_weight: Tensor,
    targets: Tensor,
    negatives: Tensor,
    item_bias: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Dot-product scores of each position's target and of the negatives.

    ``s(m, j) = queries[m] . item_weight[j] (+ item_bias[j])``, the same score the full softmax
    uses, computed for 1 + N items per position instead of C. Leading dimensions (networks,
    peers) broadcast.

    Shapes:
        queries: (..., M, d); item_weight: (C, d) or (..., C, d); targets: (M,) in [0, C);
        negatives: (N,) shared by the batch or (M, N) per position; item_bias: (C,) or (..., C).
        Returns ``pos (..., M)``, ``neg (..., M, N)``.
    """
    pos = (queries * item_weight[..., targets, :]).sum(-1)  # (..., M)
    if negatives.dim() == 1:
        neg = queries @ item_weight[..., negatives, :].transpose(-1, -2)  # (..., M, N)
    else:  # per position: (..., M, 1, d) @ (..., M, d, N)
        rows = item_weight[..., negatives, :]  # (..., M, N, d)
        neg = (queries.unsqueeze(-2) @ rows.transpose(-1, -2)).squeeze(-2)
    if item_bias is not None:
        pos = pos + item_bias[..., targets]
        bias = item_bias[..., negatives]  # (..., N) or (..., M, N)
        neg = neg + (bias.unsqueeze(-2) if negatives.dim() == 1 else bias)
    return pos, neg


def sampled_softmax_logits(
    pos_logits: Tensor,
    neg_logits: Tensor,
    targets: Tensor,
    negatives: Tensor,
    log_nq: Tensor | None = None,
) -> Tensor:
    """Candidate logits ``[s_t, s_{n_1} - log(N q_1), ...]`` with accidental hits masked.

    Column 0 is the target, so the loss is cross-entropy against class 0 (and any loss written
    for full-softmax logits, e.g. a distillation KL, can read these instead).

    Args:
        pos_logits: the target's score per position.
        neg_logits: the negatives' scores per position.
        targets: the target item per position (to find accidental hits).
        negatives: the sampled item indices, shared by the batch or per position.
        log_nq: ``log(N q)`` of each negative; ``None`` = no correction (default: None).

    Shapes:
        pos_logits: (..., M); neg_logits: (..., M, N); targets: (M,); negatives and log_nq:
        (N,) or (M, N) (log_nq may also be a scalar). Returns (..., M, 1 + N).
    """
    per_position = negatives.dim() == 2
    fits = (
        neg_logits.shape[:-1] == pos_logits.shape
        and neg_logits.shape[-1] == negatives.shape[-1]
        and (not per_position or negatives.shape[0] == pos_logits.shape[-1])
    )
    if not fits:
        raise ValueError(
            f"Expected 'neg_logits' (..., M, N) to match 'pos_logits' (..., M) and negatives of "
            f"shape (N,) or (M, N) (got {tuple(neg_logits.shape)}, {tuple(pos_logits.shape)} "
            f"and {tuple(negatives.shape)})"
        )
    if log_nq is not None:
        neg_logits = neg_logits - log_nq
    hit = targets[:, None] == (negatives if per_position else negatives[None, :])  # (M, N)
    neg_logits = neg_logits.masked_fill(hit, MASKED_LOGIT)
    return torch.cat([pos_logits.unsqueeze(-1), neg_logits], dim=-1)


def sampled_softmax_loss(
    pos_logits: Tensor,
    neg_logits: Tensor,
    targets: Tensor,
    negatives: Tensor,
    log_nq: Tensor | None = None,
) -> Tensor:
    """Mean over positions of ``-s_t + log Z_hat`` (:func:`sampled_softmax_logits`, class 0).

    Shapes:
        as :func:`sampled_softmax_logits`; returns a scalar.
    """
    logits = sampled_softmax_logits(pos_logits, neg_logits, targets, negatives, log_nq)
    zero = torch.zeros(logits.shape[:-1], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), zero.reshape(-1))
