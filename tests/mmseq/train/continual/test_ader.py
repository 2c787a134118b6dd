"""ADER's pieces: lambda_t (both rules), KD over the previously seen items, the period loop, and
next-period evaluation over the items seen so far."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from continual_helpers import cyclic_interactions, table
from torch import Tensor, nn

from mmseq.losses.contrastive import kl_divergence
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.train.continual.ader import ader_lambda, evaluate_samples, train_on_samples
from mmseq.train.continual.config import PeriodTrainConfig
from mmseq.train.continual.distillation import Distillation, distillation_loss
from mmseq.train.continual.samples import SequenceTable, predict_logits


class LastItemModel(Recommender):
    """A sequential toy: the scores are a learned row per most recent item (W[last + 1])."""

    config_class = dict

    def __init__(self, num_items: int) -> None:
        super().__init__({}, 1, num_items)
        self.weight = nn.Parameter(torch.zeros(num_items + 1, num_items))

    def training_batches(self, inputs: ModelInputs, batch_size: int,
                         generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        return iter(())

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        raise NotImplementedError

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        return self.weight[inputs.seq_items[users, -1]]  # (B, num_items)


# ---------------------------------------------------------------------------------- lambda_t
def test_lambda_issue_rule_by_hand() -> None:
    # 2 * sqrt(80/100 * 50/200) = 2 * sqrt(0.2)
    value = ader_lambda(2.0, previous_items=80, items=100, exemplars=50, samples=200)
    assert value == pytest.approx(0.894427191, abs=1e-9)


def test_lambda_methods_rule_by_hand() -> None:
    # 2 * sqrt(80/100), whatever the exemplar and sample counts
    value = ader_lambda(2.0, previous_items=80, items=100, exemplars=50, samples=200,
                        rule="methods")
    assert value == pytest.approx(1.788854382, abs=1e-9)
    assert value == ader_lambda(2.0, previous_items=80, items=100, exemplars=1, samples=0,
                                rule="methods")


def test_lambda_bad_inputs() -> None:
    with pytest.raises(ValueError, match="items"):
        ader_lambda(1.0, previous_items=0, items=0, exemplars=1, samples=1)
    with pytest.raises(ValueError, match="samples"):
        ader_lambda(1.0, previous_items=1, items=1, exemplars=1, samples=0)
    with pytest.raises(ValueError, match="'issue', 'methods'"):
        ader_lambda(1.0, previous_items=1, items=1, exemplars=1, samples=1, rule="paper")


# ---------------------------------------------------------------------------------- KD
def test_distillation_is_kl_over_previous_items_by_hand() -> None:
    # Previous items {0, 1}: teacher softmax [1/4, 3/4], student softmax [1/2, 1/2].
    teacher = torch.tensor([[0.0, math.log(3.0), 7.0]])
    student = torch.tensor([[0.0, 0.0, -4.0]])
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    loss = distillation_loss(teacher, student, torch.tensor([0, 1]))
    assert float(loss) == pytest.approx(expected, abs=1e-6)


def test_distillation_ignores_items_not_seen_before() -> None:
    teacher = torch.randn(4, 6)
    student = torch.randn(4, 6, requires_grad=True)
    previous = torch.tensor([0, 2, 3])
    loss = distillation_loss(teacher, student, previous)
    changed_t, changed_s = teacher.clone(), student.detach().clone()
    changed_t[:, [1, 4, 5]] += 10.0
    changed_s[:, [1, 4, 5]] -= 3.0
    changed = distillation_loss(changed_t, changed_s, previous)
    assert float(changed) == pytest.approx(float(loss.detach()))
    loss.backward()
    assert student.grad is not None
    assert float(student.grad[:, [1, 4, 5]].abs().max()) == 0.0
    assert float(student.grad[:, [0, 2, 3]].abs().max()) > 0.0
    # Same as the KL of the restricted logits.
    restricted = kl_divergence(teacher[:, previous], student.detach()[:, previous])
    assert float(loss.detach()) == pytest.approx(float(restricted), abs=1e-6)


# ---------------------------------------------------------------------------------- training
def _cyclic_table() -> SequenceTable:
    data = cyclic_interactions(num_users=20, per_user=6, num_items=8)
    return SequenceTable.build(data, np.zeros(len(data), dtype=np.int64))


def test_ce_never_touches_items_outside_the_seen_set() -> None:
    t = _cyclic_table()
    model = LastItemModel(t.num_items)
    rows = t.sample_rows([0])
    rows = rows[t.targets(rows) != 5]  # item 5 is "not seen yet": never a target
    seen = torch.ones(t.num_items, dtype=torch.bool)
    seen[5] = False
    cfg = PeriodTrainConfig(epochs=3, batch_size=16, lr=0.1, max_len=3)
    history = train_on_samples(model, t, rows, seen_items=seen, cfg=cfg,
                               generator=torch.Generator().manual_seed(0))
    assert len(history) == 3 and history[-1]["ce"] < history[0]["ce"]
    weight = model.weight.detach()
    assert float(weight[:, 5].abs().max()) == 0.0  # no gradient ever reached column 5
    assert float(weight[:, 4].abs().max()) > 0.0


def test_distillation_pulls_exemplar_predictions_toward_the_teacher() -> None:
    t = _cyclic_table()
    rows = t.sample_rows([0])
    seen = torch.ones(t.num_items, dtype=torch.bool)
    exemplars = rows[:12]
    teacher_model = LastItemModel(t.num_items)
    with torch.no_grad():
        teacher_model.weight.copy_(torch.randn(t.num_items + 1, t.num_items,
                                               generator=torch.Generator().manual_seed(4)))
    teacher = predict_logits(teacher_model, t, exemplars, max_len=3, batch_size=64)
    previous = torch.arange(6)
    cfg = PeriodTrainConfig(epochs=5, batch_size=32, lr=0.05, max_len=3)
    gaps = []
    for weight in (0.0, 50.0):
        model = LastItemModel(t.num_items)
        model.load_state_dict(teacher_model.state_dict())
        train_on_samples(model, t, rows, seen_items=seen, cfg=cfg,
                         generator=torch.Generator().manual_seed(0),
                         distillation=Distillation(exemplars, teacher, previous, weight))
        student = predict_logits(model, t, exemplars, max_len=3, batch_size=64)
        gaps.append(float(distillation_loss(teacher, student, previous)))
    assert gaps[1] < 0.5 * gaps[0]


def test_empty_training_set_is_an_error() -> None:
    t = _cyclic_table()
    with pytest.raises(Exception, match="no training samples"):
        train_on_samples(LastItemModel(t.num_items), t, torch.zeros(0, dtype=torch.long),
                         seen_items=torch.ones(t.num_items, dtype=torch.bool),
                         cfg=PeriodTrainConfig(), generator=torch.Generator())


# ---------------------------------------------------------------------------------- evaluation
def test_evaluation_ranks_over_seen_items_and_counts_new_item_targets() -> None:
    # user 0: items 0, 1, 2; user 1: items 0, 3.  Samples: rows 1, 2 (targets 1, 2), row 4
    # (target 3). Seen so far: items 0, 1, 2 -> row 4 cannot be predicted and is left out.
    t = SequenceTable.build(table([0, 0, 0, 1, 1], [0, 1, 2, 0, 3], [1, 2, 3, 1, 2], 2, 4),
                            np.zeros(5, dtype=np.int64))
    model = LastItemModel(4)
    with torch.no_grad():
        model.weight[1] = torch.tensor([0.9, 0.5, 0.7, 5.0])  # after item 0: target 1 has rank 2
        model.weight[2] = torch.tensor([0.1, 0.2, 0.3, 9.0])  # after item 1: target 2 has rank 0
    seen = torch.tensor([True, True, True, False])
    metrics, counts = evaluate_samples(model, t, torch.tensor([1, 2, 4]), seen_items=seen,
                                       ks=[1, 3], max_len=2, batch_size=1)
    assert counts == {"samples": 2, "new_item_targets": 1}
    assert metrics["recall@1"] == pytest.approx(0.5)
    assert metrics["recall@3"] == pytest.approx(1.0)  # item 3 (score 5.0) is not ranked
    assert metrics["ndcg@3"] == pytest.approx((1 / math.log2(4) + 1.0) / 2)
    assert metrics["mrr"] == pytest.approx((1 / 3 + 1.0) / 2)
