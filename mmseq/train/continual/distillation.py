"""ADER's distillation term: KL between the previous and the current model over I_{t-1}."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from mmseq.losses.contrastive import kl_divergence


def distillation_loss(
    teacher_logits: Tensor, student_logits: Tensor, previous_items: Tensor, *, tau: float = 1.0
) -> Tensor:
    """KL between the previous and the current model's softmax over the previously seen items.

    Args:
        teacher_logits: (B, num_items) logits of the model of period t-1 (no gradient).
        student_logits: (B, num_items) logits of the model being trained.
        previous_items: (P,) int64 the items of I_{t-1}; other columns are ignored.
        tau: softmax temperature of both sides (default: 1.0).

    Returns:
        A scalar, the mean over the B rows.
    """
    return kl_divergence(
        teacher_logits.index_select(1, previous_items),
        student_logits.index_select(1, previous_items),
        tau=tau,
    )


@dataclass(frozen=True, eq=False)
class Distillation:
    """The KD side of an ADER update.

    Attributes:
        rows: (E,) exemplar sample rows (E_{t-1}).
        teacher_logits: (E, num_items) logits of the period t-1 model on them.
        previous_items: (P,) int64 I_{t-1}.
        weight: lambda_t.
        tau: temperature.
    """

    rows: Tensor
    teacher_logits: Tensor
    previous_items: Tensor
    weight: float
    tau: float = 1.0
