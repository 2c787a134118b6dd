"""One training loop: the continual strategies train through the shared trainer.

ADER, fine-tuning and joint retraining wrap each period as a ``PeriodModel`` that
``mmseq.train.loop.fit`` drives (fixed budget, no validation); no other module of ``mmseq``
steps an optimiser.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from continual_helpers import cyclic_interactions
from test_ader import LastItemModel

from mmseq.config import TrainConfig
from mmseq.errors import TrainingError
from mmseq.train.continual import ader
from mmseq.train.continual.ader import train_on_samples
from mmseq.train.continual.config import PeriodTrainConfig
from mmseq.train.continual.period_model import PeriodModel
from mmseq.train.continual.samples import SequenceTable
from mmseq.train.loop import fit

MMSEQ = Path(__file__).resolve().parents[4] / "mmseq"


def _table() -> SequenceTable:
    data = cyclic_interactions(num_users=20, per_user=6, num_items=8)
    return SequenceTable.build(data, np.zeros(len(data), dtype=np.int64))


def _steps_optimiser(path: Path) -> bool:
    """True if the module calls ``<something>.step()`` on an optimiser-like name."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "step" and isinstance(node.func.value, ast.Name)
                and "optim" in node.func.value.id):
            return True
    return False


def test_only_the_trainer_steps_an_optimiser() -> None:
    stepping = sorted(str(p.relative_to(MMSEQ)) for p in MMSEQ.rglob("*.py") if _steps_optimiser(p))
    assert stepping == ["train/loop.py"]


def test_period_training_goes_through_fit(monkeypatch) -> None:
    calls = []

    def spy(model, **kwargs):
        calls.append((type(model).__name__, kwargs["valid_task"], kwargs["cfg"].epochs))
        return fit(model, **kwargs)

    monkeypatch.setattr(ader, "fit", spy)
    t = _table()
    history = train_on_samples(LastItemModel(t.num_items), t, t.sample_rows([0]),
                               seen_items=torch.ones(t.num_items, dtype=torch.bool),
                               cfg=PeriodTrainConfig(epochs=3, batch_size=16, lr=0.1, max_len=3),
                               generator=torch.Generator().manual_seed(0))
    assert calls == [("PeriodModel", None, 3)]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert set(history[0]) == {"epoch", "ce", "kd", "total"}


def test_fixed_budget_fit_keeps_the_last_weights_and_never_validates() -> None:
    t = _table()
    model = LastItemModel(t.num_items)
    period = PeriodModel(model, t, t.sample_rows([0]),
                         seen_items=torch.ones(t.num_items, dtype=torch.bool), max_len=3)

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a fixed-budget fit must not validate")

    result = fit(period, train_inputs=period.empty_inputs(), valid_inputs=None, valid_task=None,
                 cfg=TrainConfig(epochs=4, batch_size=16, lr=0.1, device="cpu", progress=False),
                 seed=None, generator=torch.Generator().manual_seed(0),
                 evaluate_fn=no_evaluation)
    assert result.best_epoch == 4 and result.best_metrics == {} and len(result.history) == 4
    # The weights after fit are those of the last epoch: one more identical run from the same
    # start, stopped after 4 epochs, gives the same weights.
    again = LastItemModel(t.num_items)
    period2 = PeriodModel(again, t, t.sample_rows([0]),
                          seen_items=torch.ones(t.num_items, dtype=torch.bool), max_len=3)
    fit(period2, train_inputs=period2.empty_inputs(), valid_inputs=None, valid_task=None,
        cfg=TrainConfig(epochs=4, batch_size=16, lr=0.1, device="cpu", progress=False),
        seed=None, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.weight, again.weight)
    assert float(model.weight.detach().abs().max()) > 0  # it did train (the start is zeros)


def test_fit_without_seed_needs_a_generator() -> None:
    t = _table()
    period = PeriodModel(LastItemModel(t.num_items), t, t.sample_rows([0]),
                         seen_items=torch.ones(t.num_items, dtype=torch.bool), max_len=3)
    with pytest.raises(Exception, match="generator"):
        fit(period, train_inputs=period.empty_inputs(), valid_inputs=None, valid_task=None,
            cfg=TrainConfig(epochs=1, device="cpu", progress=False), seed=None)


def test_non_finite_period_loss_names_the_period() -> None:
    t = _table()
    model = LastItemModel(t.num_items)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"^ader period 2: Non-finite loss"):
        train_on_samples(model, t, t.sample_rows([0]),
                         seen_items=torch.ones(t.num_items, dtype=torch.bool),
                         cfg=PeriodTrainConfig(epochs=1, batch_size=16, max_len=3),
                         generator=torch.Generator().manual_seed(0), where="ader period 2")
