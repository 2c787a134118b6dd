"""ADER's period update, model-agnostic: CE on D_t ∪ E_{t-1} plus adaptive distillation on E_{t-1}.

Mi, Lin & Faltings, "ADER: Adaptively Distilled Exemplar Replay Towards Continual Learning for
Session-based Recommendation", RecSys 2020 (shared/docs/methods.md section 6). At period t the
model of period t-1 is updated with

.. math:: \\mathcal{L} = \\mathrm{CE}(D_t \\cup E_{t-1}) + \\lambda_t\\,
          \\mathrm{KL}\\big(\\mathrm{softmax}_{I_{t-1}}(f_{\\theta_{t-1}}(x)) \\,\\|\\,
          \\mathrm{softmax}_{I_{t-1}}(f_{\\theta_t}(x))\\big)_{x \\in E_{t-1}}

where both softmaxes run over the items seen up to t-1 only, and the CE softmax over the items
seen up to t (ADER grows its output layer with the item set; we mask the logits of items not yet
seen instead, so any model with a fixed item space fits). The loop below trains ANY sequential
model of ``mmseq.models.MODELS`` through ``score_all`` on pseudo-user inputs
(:mod:`mmseq.continual.samples`); ``mmseq.train.loop.fit`` is not used because it cannot add a
term computed from a second (frozen) model on a second sample set.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mmseq.config import TrainConfig
from mmseq.continual.config import PeriodTrainConfig
from mmseq.continual.samples import SequenceTable
from mmseq.errors import DataError, TrainingError
from mmseq.eval.protocol import EvalTask, evaluate
from mmseq.losses.contrastive import kl_divergence
from mmseq.losses.ranking import cross_entropy_over_items
from mmseq.models.base import Recommender
from mmseq.train.optim import build_optimizer

log = logging.getLogger(__name__)


def ader_lambda(
    lambda_base: float,
    *,
    previous_items: int,
    items: int,
    exemplars: int,
    samples: int,
    rule: str = "issue",
) -> float:
    """The adaptive distillation weight lambda_t.

    ``"issue"`` (the paper's rule): :math:`\\lambda_t = \\lambda_{base}
    \\sqrt{\\frac{|I_{t-1}|}{|I_t|} \\cdot \\frac{|E_{t-1}|}{|D_t|}}`; ``"methods"``
    (methods.md section 6): :math:`\\lambda_{base} \\sqrt{|I_{t-1}| / |I_t|}`.

    Args:
        lambda_base: the base weight.
        previous_items: |I_{t-1}|, items seen up to period t-1.
        items: |I_t|, items seen up to period t (>= 1).
        exemplars: |E_{t-1}|, the replayed exemplars.
        samples: |D_t|, the training samples of period t (>= 1 for rule "issue").
        rule: ``"issue"`` or ``"methods"``.
    """
    if items < 1:
        raise ValueError(f"Expected 'items' (|I_t|) >= 1 (got {items})")
    ratio = previous_items / items
    if rule == "issue":
        if samples < 1:
            raise ValueError(f"Expected 'samples' (|D_t|) >= 1 (got {samples})")
        ratio *= exemplars / samples
    elif rule != "methods":
        raise ValueError(f"Expected 'rule' to be one of ['issue', 'methods'] (got {rule!r})")
    return lambda_base * math.sqrt(ratio)


def distillation_loss(teacher_logits: Tensor, student_logits: Tensor, previous_items: Tensor, *,
                      tau: float = 1.0) -> Tensor:
    """KL between the previous and the current model's softmax over the previously seen items.

    Args:
        teacher_logits: (B, num_items) logits of the model of period t-1 (no gradient).
        student_logits: (B, num_items) logits of the model being trained.
        previous_items: (P,) int64 the items of I_{t-1}; other columns are ignored.
        tau: softmax temperature of both sides (default: 1.0).

    Returns:
        A scalar, the mean over the B rows.
    """
    return kl_divergence(teacher_logits.index_select(1, previous_items),
                         student_logits.index_select(1, previous_items), tau=tau)


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


def train_on_samples(
    model: Recommender,
    table: SequenceTable,
    rows: Tensor,
    *,
    seen_items: Tensor,
    cfg: PeriodTrainConfig,
    generator: torch.Generator,
    distillation: Distillation | None = None,
    where: str = "period",
) -> list[dict[str, float]]:
    """Train ``model`` in place for ``cfg.epochs`` passes over the samples ``rows``.

    Each step scores a shuffled batch through ``model.score_all`` (pseudo-user inputs), takes the
    cross-entropy over the items in ``seen_items`` and, with ``distillation``, adds
    ``weight * distillation_loss`` over the batch rows that are exemplars.

    Args:
        model: a sequential recommender on the table's device.
        table: the interactions.
        rows: (S,) training samples (D_t, D_1..D_t, or D_t ∪ E_{t-1}).
        seen_items: (num_items,) bool, the items of the CE softmax (I_t).
        cfg: the period budget.
        generator: the only source of shuffling randomness.
        distillation: the KD term (ADER), or None.
        where: label for errors and logs, e.g. ``"ader period 3"``.

    Returns:
        One dict per epoch: mean ``ce``, ``kd`` and ``total``.

    Raises:
        TrainingError: on a non-finite loss (naming where, epoch, step and terms).
    """
    if rows.numel() == 0:
        raise TrainingError(f"{where}: no training samples (every row lacks a context)")
    optimizer = build_optimizer(model, TrainConfig(lr=cfg.lr, weight_decay=cfg.weight_decay))
    unseen = ~seen_items
    slot = None
    if distillation is not None:
        slot = torch.full((len(table),), -1, dtype=torch.long, device=rows.device)
        slot[distillation.rows] = torch.arange(distillation.rows.numel(), device=rows.device)
    model.train()
    history = []
    for epoch in range(1, cfg.epochs + 1):  # a loop over epochs, then batches
        order = torch.randperm(rows.numel(), generator=generator, device=generator.device)
        shuffled = rows[order.to(rows.device)]
        sums = torch.zeros(3, dtype=torch.float64, device=rows.device)
        steps = 0
        for start in range(0, shuffled.numel(), cfg.batch_size):
            batch = shuffled[start : start + cfg.batch_size]
            inputs = table.model_inputs(batch, cfg.max_len)
            logits = model.score_all(torch.arange(batch.numel(), device=batch.device), inputs)
            ce = cross_entropy_over_items(logits.masked_fill(unseen, float("-inf")),
                                          table.targets(batch))
            kd = torch.zeros((), device=logits.device)
            if distillation is not None and slot is not None:
                position = slot[batch]  # (B,) exemplar index or -1
                is_exemplar = position >= 0
                if bool(is_exemplar.any()):
                    kd = distillation_loss(distillation.teacher_logits[position[is_exemplar]],
                                           logits[is_exemplar], distillation.previous_items,
                                           tau=distillation.tau)
            total = ce + (distillation.weight * kd if distillation is not None else 0.0)
            if not bool(torch.isfinite(total)):
                raise TrainingError(
                    f"{where}: non-finite loss at epoch {epoch}, step {steps} "
                    f"(ce={float(ce)}, kd={float(kd)})"
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            sums += torch.stack([ce.detach(), kd.detach(), total.detach()]).to(sums)
            steps += 1
        means = (sums / steps).tolist()
        history.append({"epoch": epoch, "ce": means[0], "kd": means[1], "total": means[2]})
        log.info("%s epoch %d: ce %.4f kd %.4f", where, epoch, means[0], means[1])
    return history


class SeenItemScorer(nn.Module):
    """Wraps a model so that items outside ``seen_items`` score ``-inf`` (never ranked).

    The ranking of the next period then runs over the items seen so far (I_t), as in ADER,
    where the output layer only holds those items.
    """

    unseen: Tensor

    def __init__(self, model: Recommender, seen_items: Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("unseen", ~seen_items, persistent=False)

    def begin_eval(self, inputs: Any) -> None:
        self.model.begin_eval(inputs)

    def end_eval(self) -> None:
        self.model.end_eval()

    def score_all(self, users: Tensor, inputs: Any) -> Tensor:
        return self.model.score_all(users, inputs).masked_fill(self.unseen, float("-inf"))

    def score_candidates(self, users: Tensor, items: Tensor, inputs: Any) -> Tensor:
        return self.score_all(users, inputs).gather(1, items)


def evaluate_samples(
    model: Recommender,
    table: SequenceTable,
    rows: Tensor,
    *,
    seen_items: Tensor,
    ks: Sequence[int],
    max_len: int,
    batch_size: int,
) -> tuple[dict[str, float], dict[str, int]]:
    """Next-item metrics of ``model`` on the samples ``rows`` (the next period's interactions).

    Each sample is one test case: its context (the user's last ``max_len`` items before it) is
    scored by full ranking over the items in ``seen_items`` (I_t); the target's pessimistic rank
    gives Recall@K (= HR@K, one target per case), NDCG@K and MRR through ``mmseq.eval``. Nothing
    is excluded from the ranking besides the unseen items (ADER's session-based protocol; the
    data are deduplicated, so a target never repeats a context item). Samples whose target is not
    in ``seen_items`` cannot be predicted by any strategy: they are left out and counted.

    Returns:
        ``(metrics, counts)``; counts: ``samples`` (scored), ``new_item_targets`` (left out).
    """
    known = seen_items[table.targets(rows)]
    counts = {"samples": int(known.sum()), "new_item_targets": int((~known).sum())}
    rows = rows[known]
    if rows.numel() == 0:
        raise DataError("Expected samples with a known target item to evaluate (got none)")
    cpu_rows = torch.arange(rows.numel() + 1)
    metrics = tuple(f"{m}@{k}" for k in sorted(set(ks)) for m in ("recall", "ndcg")) + ("mrr",)
    task = EvalTask(
        protocol="continual-next-item",
        stage="test",
        users=cpu_rows[:-1],
        target_indptr=cpu_rows,
        target_indices=table.targets(rows).cpu(),
        history_indptr=torch.zeros(rows.numel() + 1, dtype=torch.long),
        history_indices=torch.zeros(0, dtype=torch.long),
        candidates=None,
        ks=tuple(sorted(set(ks))),
        metrics=metrics,
        num_items=table.num_items,
        meta=counts,
    )
    scorer = SeenItemScorer(model, seen_items)
    result = evaluate(scorer, table.model_inputs(rows, max_len), task, batch_size=batch_size)
    return result, counts
