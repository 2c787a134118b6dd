"""ADER's period update, model-agnostic: CE on D_t ∪ E_{t-1} plus adaptive distillation on E_{t-1}.

Mi, Lin & Faltings, "ADER: Adaptively Distilled Exemplar Replay Towards Continual Learning for
Session-based Recommendation", RecSys 2020 (shared/docs/methods.md section 6). At period t the
model of period t-1 is updated with

.. math:: \\mathcal{L} = \\mathrm{CE}(D_t \\cup E_{t-1}) + \\lambda_t\\,
          \\mathrm{KL}\\big(\\mathrm{softmax}_{I_{t-1}}(f_{\\theta_{t-1}}(x)) \\,\\|\\,
          \\mathrm{softmax}_{I_{t-1}}(f_{\\theta_t}(x))\\big)_{x \\in E_{t-1}}

where both softmaxes run over the items seen up to t-1 only, and the CE softmax over the items
seen up to t (ADER grows its output layer with the item set; we mask the logits of items not yet
seen instead, so any model with a fixed item space fits). Any sequential model of
``mmseq.models.MODELS`` trains through ``score_all`` on pseudo-user inputs
(:mod:`mmseq.train.continual.samples`), wrapped as a
:class:`~mmseq.train.continual.period_model.PeriodModel` that the shared trainer drives: one
training loop for every model and strategy.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mmseq.config import TrainConfig
from mmseq.errors import DataError, TrainingError
from mmseq.eval.protocol import EvalTask, evaluate
from mmseq.models.base import Recommender
from mmseq.train.continual.config import PeriodTrainConfig
from mmseq.train.continual.distillation import Distillation
from mmseq.train.continual.period_model import PeriodModel
from mmseq.train.continual.samples import SequenceTable
from mmseq.train.loop import fit

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

    The shared trainer (``mmseq.train.loop.fit``, fixed budget, no validation) drives a
    :class:`~mmseq.train.continual.period_model.PeriodModel`: each step scores a shuffled batch
    through ``model.score_all`` (pseudo-user inputs), takes the cross-entropy over the items in
    ``seen_items`` and, with ``distillation``, adds ``weight * distillation_loss`` over the batch
    rows that are exemplars. The global RNGs are not reseeded (the caller seeds them).

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
    period = PeriodModel(model, table, rows, seen_items=seen_items, max_len=cfg.max_len,
                         distillation=distillation)
    trainer = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                          weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip,
                          device=str(rows.device), progress=False)
    try:
        result = fit(period, train_inputs=period.empty_inputs(), valid_inputs=None,
                     valid_task=None, cfg=trainer, seed=None, generator=generator)
    except TrainingError as exc:
        raise TrainingError(f"{where}: {exc}") from None
    history = [{"epoch": row["epoch"], **{k: row["loss"][k] for k in ("ce", "kd", "total")}}
               for row in result.history]
    for row in history:
        log.info("%s epoch %d: ce %.4f kd %.4f", where, row["epoch"], row["ce"], row["kd"])
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
