"""Distribution-matching and contrastive losses shared by the distillation methods (pure).

Used by SD-MTMP (KL self-distillation; InfoNCE for its w/o-S1 ablation), PeerRec (KL between
peers), EMKD (contrastive and logit distillation) and S4Rec (sequence contrastive learning, KL
cluster-aware self-distillation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def kl_divergence(
    teacher_logits: Tensor, student_logits: Tensor, *, tau: float = 1.0, detach_teacher: bool = True
) -> Tensor:
    r"""Row mean of :math:`\mathrm{KL}(\mathrm{softmax}(t/\tau)\|\mathrm{softmax}(s/\tau))`.

    The teacher distribution is the first argument (the target); the softmax runs over the last
    dimension. Computed from log-softmaxes, so it is finite for any finite logits.

    Args:
        teacher_logits: the target side (detached unless ``detach_teacher=False``).
        student_logits: the side being pulled towards the teacher.
        tau: temperature (default: 1.0).
        detach_teacher: stop gradients into the teacher (default: True).

    Shapes:
        teacher_logits, student_logits: (B, C); returns a scalar.
    """
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"Expected teacher and student logits of one shape (got {tuple(teacher_logits.shape)} "
            f"and {tuple(student_logits.shape)})"
        )
    if tau <= 0:
        raise ValueError(f"Expected 'tau' > 0 (got {tau})")
    if detach_teacher:
        teacher_logits = teacher_logits.detach()
    log_p = F.log_softmax(teacher_logits / tau, dim=-1)
    log_q = F.log_softmax(student_logits / tau, dim=-1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


def info_nce(
    anchor: Tensor,
    positive: Tensor,
    *,
    tau: float = 1.0,
    extra_negatives: Tensor | None = None,
    normalize: bool = True,
) -> Tensor:
    r"""InfoNCE with in-batch negatives: ``positive[b]`` is the positive of ``anchor[b]``.

    :math:`\mathcal{L} = -\mathrm{mean}_b \log \frac{\exp(s_{bb}/\tau)}{\sum_{c} \exp(s_{bc}/\tau)
    + \sum_{n} \exp(a_b \cdot x_n / \tau)}` with ``s = a p^T`` (cosine similarities when
    ``normalize``). At random initialisation with unrelated rows the loss is about ``log(B)``.

    Args:
        anchor: (B, d) first view.
        positive: (B, d) second view, aligned with ``anchor``.
        tau: temperature (default: 1.0).
        extra_negatives: (N, d) additional negatives shared by every row (e.g. S4Rec prototypes),
            or (B, N, d) per-row negatives (default: None).
        normalize: L2-normalise all vectors first (default: True).

    Shapes:
        returns a scalar.
    """
    if anchor.shape != positive.shape or anchor.dim() != 2:
        raise ValueError(
            f"Expected 'anchor' and 'positive' of one (B, d) shape (got {tuple(anchor.shape)} and "
            f"{tuple(positive.shape)})"
        )
    if tau <= 0:
        raise ValueError(f"Expected 'tau' > 0 (got {tau})")
    if normalize:
        anchor, positive = F.normalize(anchor, dim=-1), F.normalize(positive, dim=-1)
    logits = anchor @ positive.T / tau  # (B, B)
    if extra_negatives is not None:
        if normalize:
            extra_negatives = F.normalize(extra_negatives, dim=-1)
        if extra_negatives.dim() == 2:
            extra = anchor @ extra_negatives.T / tau  # (B, N)
        else:
            extra = torch.einsum("bd,bnd->bn", anchor, extra_negatives) / tau  # (B, N)
        logits = torch.cat([logits, extra], dim=1)  # (B, B + N)
    targets = torch.arange(anchor.size(0), device=anchor.device)
    return F.cross_entropy(logits, targets)
