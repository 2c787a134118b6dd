"""Ranking losses shared by the models (pure: tensors in, a scalar tensor out)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Bayesian personalised ranking (Rendle et al., UAI 2009).

    :math:`\\mathcal{L} = \\mathrm{mean}_b\\, -\\log \\sigma(s^+_b - s^-_b)`, computed as
    ``softplus(s^- - s^+)`` so that large score gaps neither overflow nor lose precision.

    Shapes:
        pos_scores, neg_scores: (B,) (or broadcastable); returns a scalar.
    """
    return F.softplus(neg_scores - pos_scores).mean()


def l2_regularization(*tensors: Tensor) -> Tensor:
    """LightGCN's embedding regulariser: ``0.5 * sum_t ||t||_F^2 / B``.

    ``B`` is the size of the first dimension of the first tensor (the batch), so the penalty is
    per example and its weight does not depend on the batch size (as in LightGCN's reference code,
    applied to the batch's ego embeddings of users, positive and negative items).

    Shapes:
        tensors: each (B, ...); returns a scalar.
    """
    if not tensors:
        raise ValueError("Expected at least one tensor to regularise (got none)")
    batch = max(int(tensors[0].shape[0]) if tensors[0].dim() else 1, 1)
    total = torch.stack([t.pow(2).sum() for t in tensors]).sum()
    return 0.5 * total / batch


def cross_entropy_over_items(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> Tensor:
    """Softmax cross-entropy over all items, averaged over the non-ignored targets.

    Args:
        logits: (..., num_items) unnormalised scores.
        targets: (...) item indices in ``[0, num_items)``, or ``ignore_index``.
        ignore_index: target value that contributes nothing (default: -100).

    Returns:
        A scalar; NaN when every target is ignored (the trainer reports it as a non-finite term).
    """
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=ignore_index
    )
