"""One continual period as a :class:`Recommender` that the shared trainer drives.

:class:`PeriodModel` wraps a sequential backbone and the samples of one period: its batches are
shuffled sample rows, its loss the cross-entropy over the items seen so far plus, for ADER, the
weighted distillation term on the exemplars among them (:mod:`mmseq.train.continual.ader`). The
trainer (``mmseq.train.loop.fit`` without a validation task) runs the epochs, the optimiser, the
gradient clipping and the non-finite checks, as for every other model.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from mmseq.losses.ranking import cross_entropy_over_items
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.train.continual.config import PeriodTrainConfig
from mmseq.train.continual.distillation import Distillation, distillation_loss
from mmseq.train.continual.samples import SequenceTable


class PeriodModel(Recommender):
    """Trains ``backbone`` on the next-item samples ``rows`` of ``table``.

    Args:
        backbone: a sequential recommender on the table's device (trained in place).
        table: the interactions.
        rows: (S,) the samples of this update (D_t, D_1..D_t, or D_t ∪ E_{t-1}).
        seen_items: (num_items,) bool, the items of the CE softmax (I_t).
        max_len: context length of each sample.
        distillation: the ADER KD term on the exemplars, or None.
    """

    config_class = PeriodTrainConfig

    def __init__(
        self,
        backbone: Recommender,
        table: SequenceTable,
        rows: Tensor,
        *,
        seen_items: Tensor,
        max_len: int,
        distillation: Distillation | None = None,
    ) -> None:
        super().__init__(None, backbone.num_users, backbone.num_items)
        self.backbone = backbone
        self.table = table
        self.rows = rows
        self.unseen = ~seen_items
        self.max_len = max_len
        self.distillation = distillation
        self.slot: Tensor | None = None  # (len(table),) exemplar index of each row, or -1
        if distillation is not None:
            self.slot = torch.full((len(table),), -1, dtype=torch.long, device=rows.device)
            self.slot[distillation.rows] = torch.arange(
                distillation.rows.numel(), device=rows.device
            )

    def empty_inputs(self) -> ModelInputs:
        """The trainer's ``train_inputs``: batches build their own pseudo-user inputs."""
        return self.table.model_inputs(self.rows[:0], self.max_len)

    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        order = torch.randperm(self.rows.numel(), generator=generator, device=generator.device)
        shuffled = self.rows[order.to(self.rows.device)]
        for start in range(0, shuffled.numel(), batch_size):
            yield {"rows": shuffled[start : start + batch_size]}

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        rows = batch["rows"]
        sample_inputs = self.table.model_inputs(rows, self.max_len)
        logits = self.backbone.score_all(
            torch.arange(rows.numel(), device=rows.device), sample_inputs
        )  # (B, num_items)
        ce = cross_entropy_over_items(
            logits.masked_fill(self.unseen, float("-inf")), self.table.targets(rows)
        )
        kd = torch.zeros((), device=logits.device)
        if self.distillation is None or self.slot is None:
            return LossOutput(ce, {"ce": ce, "kd": kd})
        position = self.slot[rows]  # (B,) exemplar index or -1
        is_exemplar = position >= 0
        if bool(is_exemplar.any()):
            kd = distillation_loss(
                self.distillation.teacher_logits[position[is_exemplar]],
                logits[is_exemplar],
                self.distillation.previous_items,
                tau=self.distillation.tau,
            )
        return LossOutput(ce + self.distillation.weight * kd, {"ce": ce, "kd": kd})

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        return self.backbone.score_all(users, inputs)
