"""Learning-rate schedules: the per-epoch rate, its use by the trainer, and exact resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmseq.config import TrainConfig, from_dict
from mmseq.data.inputs import build_model_inputs
from mmseq.data.schema import Interactions
from mmseq.data.split import split_interactions
from mmseq.errors import ConfigError
from mmseq.eval.protocol import make_eval_task
from mmseq.models import MODELS
from mmseq.train.callbacks import Callback
from mmseq.train.loop import fit
from mmseq.train.optim import epoch_learning_rate


def test_linear_schedule_by_hand() -> None:
    cfg = TrainConfig(lr=0.01, epochs=4, lr_schedule="linear")
    assert [epoch_learning_rate(cfg, e) for e in (1, 2, 3, 4)] == pytest.approx(
        [0.01, 0.0075, 0.005, 0.0025]
    )
    assert epoch_learning_rate(TrainConfig(lr=0.01, epochs=4), 3) == 0.01  # constant


def test_unknown_schedule_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="lr_schedule"):
        from_dict(TrainConfig, {"lr_schedule": "cosine"}, where="x.yaml:train")




class Interrupt(Exception):
    pass


class InterruptAfter(Callback):
    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if epoch == 2:
            raise Interrupt


def _setup():
    rng = np.random.default_rng(0)
    users, per_user, items = 12, 6, 18
    data = Interactions(
        user=np.repeat(np.arange(users), per_user),
        item=np.concatenate([rng.choice(items, per_user, replace=False) for _ in range(users)]),
        rating=np.ones(users * per_user, dtype=np.float32),
        timestamp=np.tile(np.arange(per_user, dtype=np.int64), users),
        user_ids=np.array([f"u{i}" for i in range(users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(items)], dtype=object),
    )
    split = split_interactions(data, "loo-full")
    return split, build_model_inputs(split.fit, max_len=6), make_eval_task(split, "valid")


def _fit(split, inputs, task, **kw):
    torch.manual_seed(0)
    model = MODELS.get("bprmf")(MODELS.get("bprmf").config_class(), split.num_users,
                                split.num_items)
    cfg = TrainConfig(epochs=4, batch_size=16, lr=0.05, lr_schedule="linear", patience=10,
                      device="cpu", progress=False)
    return model, fit(model, train_inputs=inputs, valid_inputs=inputs, valid_task=task, cfg=cfg,
                      seed=0, **kw)


def test_trainer_applies_the_schedule_and_resumes_exactly(tmp_path: Path) -> None:
    split, inputs, task = _setup()
    full_model, full = _fit(split, inputs, task)
    assert [h["lr"] for h in full.history] == pytest.approx([0.05, 0.0375, 0.025, 0.0125])
    with pytest.raises(Interrupt):
        _fit(split, inputs, task, checkpoint_dir=tmp_path, callbacks=[InterruptAfter()])
    resumed_model, resumed = _fit(split, inputs, task, checkpoint_dir=tmp_path)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    for key, value in full_model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[key]), key


def test_linear_schedule_changes_training() -> None:
    split, inputs, task = _setup()
    _, linear = _fit(split, inputs, task)
    torch.manual_seed(0)
    model = MODELS.get("bprmf")(MODELS.get("bprmf").config_class(), split.num_users,
                                split.num_items)
    cfg = TrainConfig(epochs=4, batch_size=16, lr=0.05, patience=10, device="cpu",
                      progress=False)
    constant = fit(model, train_inputs=inputs, valid_inputs=inputs, valid_task=task, cfg=cfg,
                   seed=0)
    assert constant.history[0]["loss"] == linear.history[0]["loss"]  # epoch 1: same rate
    assert constant.history[3]["loss"] != linear.history[3]["loss"]
    assert "lr" not in constant.history[0]
