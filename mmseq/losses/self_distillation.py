"""Cross-modal self-distillation of SD-MTMP (methods.md 1.5) and its w/o-S1 contrastive stand-in.

Pure functions over tensors, built on :func:`mmseq.losses.kl_divergence` and
:func:`mmseq.losses.info_nce`.
"""

from __future__ import annotations

from torch import Tensor

from mmseq.losses.contrastive import info_nce, kl_divergence


def self_distillation_loss(
    teacher: Tensor, student: Tensor, *, tau: float = 1.0, detach_teacher: bool = True
) -> Tensor:
    r"""``mean_rows KL(softmax(teacher / tau) || softmax(student / tau))``, softmax over the d dims.

    SD-MTMP's teacher is the topic-aware representation ``e^topic`` and the student the
    rating-aware one ``e^inter``. The seed's formula writes ``KL(T(e^inter) || S(e^topic))``;
    its text says topic teaches rating, and methods.md 1.5 keeps the text's meaning.
    Zero exactly when each row's two softmaxes agree (e.g. rows equal up to an additive constant).

    Args:
        teacher: (N, d) topic-aware representations (the target distribution).
        student: (N, d) rating-aware representations (pulled towards the teacher).
        tau: softmax temperature (default: 1.0).
        detach_teacher: stop gradients into the teacher (default: True).

    Shapes:
        returns a scalar.
    """
    return kl_divergence(teacher, student, tau=tau, detach_teacher=detach_teacher)


def cross_modal_self_distillation(
    user_topic: Tensor,
    user_inter: Tensor,
    item_topic: Tensor,
    item_inter: Tensor,
    *,
    tau: float = 1.0,
    detach_teacher: bool = True,
) -> Tensor:
    """``Loss_SD = Loss_SD_u + Loss_SD_i`` (methods.md 1.5): each a mean over its own rows.

    Shapes:
        user_*: (N_u, d); item_*: (N_i, d); returns a scalar.
    """
    users = self_distillation_loss(user_topic, user_inter, tau=tau, detach_teacher=detach_teacher)
    items = self_distillation_loss(item_topic, item_inter, tau=tau, detach_teacher=detach_teacher)
    return users + items


def contrastive_alignment(topic: Tensor, inter: Tensor, *, tau: float = 0.2) -> Tensor:
    """InfoNCE of one node type: anchor ``e^inter``, positive ``e^topic`` of the same row.

    Shapes:
        topic, inter: (N, d); returns a scalar.
    """
    return info_nce(inter, topic, tau=tau)


def contrastive_alignment_loss(
    user_topic: Tensor,
    user_inter: Tensor,
    item_topic: Tensor,
    item_inter: Tensor,
    *,
    tau: float = 0.2,
) -> Tensor:
    """The w/o-S1 ablation: InfoNCE between ``e^inter`` (anchor) and ``e^topic`` (positive).

    Row ``b``'s positive is the other view of the same node; the other rows of the same node type
    are its negatives (cosine similarities, temperature ``tau``). Users and items are aligned
    separately and the two losses added, mirroring :func:`cross_modal_self_distillation`. Both
    views receive gradients: contrastive alignment has no teacher.

    Shapes:
        user_*: (N_u, d); item_*: (N_i, d); returns a scalar.
    """
    return contrastive_alignment(user_topic, user_inter, tau=tau) + contrastive_alignment(
        item_topic, item_inter, tau=tau
    )


__all__ = [
    "contrastive_alignment",
    "contrastive_alignment_loss",
    "cross_modal_self_distillation",
    "self_distillation_loss",
]
