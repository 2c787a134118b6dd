"""EMKD's losses (pure): contrastive representation distillation within and across networks,
logit distillation between networks, attribute prediction.

Du et al., "Ensemble Modeling with Contrastive Knowledge Distillation for Sequential
Recommendation", SIGIR 2023 (methods.md 4). All functions are vectorised over the N networks
and M masked views; each is tested against a loop over :func:`mmseq.losses.info_nce` /
:func:`mmseq.losses.kl_divergence`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def ensemble_contrastive_losses(originals: Tensor, views: Tensor, *,
                                tau: float = 1.0) -> tuple[Tensor, Tensor]:
    r"""Intra-network (ICL) and cross-network (CCL) contrastive distillation.

    With :math:`L_{x,y,m} = \mathrm{InfoNCE}(\text{anchor}=v^{y,m},\ \text{positive}=o^{x})`
    (cosine similarities over the batch: row b's positive is network x's ORIGINAL sequence b,
    its negatives are network x's other original sequences), returns
    :math:`\mathrm{ICL} = \sum_n \mathrm{mean}_m L_{n,n,m}` and
    :math:`\mathrm{CCL} = \sum_{x \ne y} \mathrm{mean}_m L_{x,y,m}`.

    Equal to calling ``info_nce(views[y, m], originals[x], tau=tau)`` for every (x, y, m), in
    one matrix product.

    Args:
        originals: each network's representation of the unmasked sequences.
        views: each network's representation of the M masked views of the same sequences.
        tau: temperature (default: 1.0).

    Shapes:
        originals: (N, B, D); views: (N, M, B, D); returns two scalars.
    """
    if (originals.dim() != 3 or views.dim() != 4 or views.shape[0] != originals.shape[0]
            or views.shape[2:] != originals.shape[1:]):
        raise ValueError(
            f"Expected 'originals' (N, B, D) and 'views' (N, M, B, D) of matching N, B, D "
            f"(got {tuple(originals.shape)} and {tuple(views.shape)})"
        )
    if tau <= 0:
        raise ValueError(f"Expected 'tau' > 0 (got {tau})")
    n, m, b, d = views.shape
    o = F.normalize(originals, dim=-1).reshape(n * b, d)  # (N*B, D)
    v = F.normalize(views, dim=-1).reshape(n * m * b, d)  # (N*M*B, D)
    logits = (v @ o.T / tau).view(n, m, b, n, b)  # [y, m, b, x, c]
    log_prob = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    positive = torch.diagonal(log_prob, dim1=2, dim2=4)  # (N_y, M, N_x, B): c == b
    loss = -positive.mean(-1).mean(1)  # (N_y, N_x): mean over the batch, then the views
    same = torch.eye(n, dtype=torch.bool, device=loss.device)
    return loss[same].sum(), loss[~same].sum()


def mutual_kl_divergence(logits: Tensor, *, tau: float = 1.0, reduction: str = "mean") -> Tensor:
    r"""Logit distillation between N networks: the sum over unordered pairs of the symmetrised KL.

    :math:`\sum_{x<y} \tfrac12[\mathrm{KL}(p_x \| p_y) + \mathrm{KL}(p_y \| p_x)]
    = \tfrac12 \sum_{x \ne y} \mathrm{KL}(\bar p_y \| p_x)` with
    :math:`p = \mathrm{softmax}(\ell/\tau)`
    and the target side :math:`\bar p` detached (each network learns from the others). Computed
    in O(N) memory: :math:`\sum_{x\ne y}\mathrm{KL}(\bar p_y\|p_x) = (N-1)\sum_y \bar p_y \cdot
    \log \bar p_y - (\sum_y \bar p_y)\cdot(\sum_x \log p_x) + \sum_x \bar p_x \cdot \log p_x`.

    Args:
        logits: the N networks' logits for the same R rows.
        tau: temperature (default: 1.0).
        reduction: "mean" over rows (a scalar) or "none" (one value per row).

    Shapes:
        logits: (N, R, C); returns a scalar or (R,).
    """
    if logits.dim() != 3:
        raise ValueError(f"Expected 'logits' of shape (N, R, C) (got {tuple(logits.shape)})")
    if tau <= 0:
        raise ValueError(f"Expected 'tau' > 0 (got {tau})")
    if reduction not in ("mean", "none"):
        raise ValueError(f"Expected 'reduction' in ['mean', 'none'] (got {reduction!r})")
    n = logits.shape[0]
    log_p = F.log_softmax(logits / tau, dim=-1)  # (N, R, C), differentiated (student side)
    target_log_p = log_p.detach()
    target_p = target_log_p.exp()
    self_term = (target_p * target_log_p).sum(-1)  # (N, R)
    cross_all = (target_p.sum(0) * log_p.sum(0)).sum(-1)  # (R,)
    cross_same = (target_p * log_p).sum(-1).sum(0)  # (R,)
    per_row = 0.5 * ((n - 1) * self_term.sum(0) - cross_all + cross_same)  # (R,)
    return per_row.mean() if reduction == "mean" else per_row


def attribute_prediction_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Multi-label attribute prediction: mean binary cross-entropy over rows and attributes.

    Args:
        logits: attribute scores predicted from the (unmasked) sequence representation.
        targets: 0/1 attributes of the item at that position.

    Shapes:
        logits, targets: (R, A); returns a scalar.
    """
    if logits.shape != targets.shape:
        raise ValueError(
            f"Expected 'logits' and 'targets' of one shape (got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)})"
        )
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
