"""Trainer output: one line per epoch off a terminal, bars on one; TensorBoard scalars."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mmseq.config import TrainConfig
from mmseq.data.inputs import build_model_inputs
from mmseq.data.schema import Interactions
from mmseq.data.split import split_interactions
from mmseq.eval.protocol import make_eval_task
from mmseq.models import MODELS
from mmseq.optional import is_available
from mmseq.train.callbacks import format_epoch, is_interactive
from mmseq.train.loop import fit


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    users, items, per_user = 12, 20, 6
    item = np.concatenate([rng.choice(items, per_user, replace=False) for _ in range(users)])
    data = Interactions(
        user=np.repeat(np.arange(users), per_user),
        item=item.astype(np.int64),
        rating=np.ones(users * per_user, dtype=np.float32),
        timestamp=np.tile(np.arange(per_user, dtype=np.int64), users),
        user_ids=np.array([f"u{i}" for i in range(users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(items)], dtype=object),
    )
    split = split_interactions(data, "loo-full")
    return split, build_model_inputs(split.fit, max_len=8), make_eval_task(split, "valid")


def _fit(setup, **cfg):
    split, inputs, task = setup
    cls = MODELS.get("bprmf")
    torch.manual_seed(0)
    model = cls(cls.config_class(), split.num_users, split.num_items)
    train = TrainConfig(**{"epochs": 3, "batch_size": 16, "device": "cpu", "patience": 0, **cfg})
    return fit(model, train_inputs=inputs, valid_inputs=inputs, valid_task=task, cfg=train, seed=0)


def test_a_pipe_gets_one_clean_line_per_epoch(setup, monkeypatch) -> None:
    err = io.StringIO()  # not a terminal, as under CI, nohup or a pipe
    monkeypatch.setattr(sys, "stderr", err)
    assert not is_interactive()
    _fit(setup, progress=True)
    lines = err.getvalue().splitlines()
    assert "\r" not in err.getvalue() and "it/s" not in err.getvalue()  # no tqdm fragments
    assert len(lines) == 3, lines
    for e, line in enumerate(lines, 1):
        assert re.fullmatch(
            rf"epoch {e}/3 \| loss total=\S+ bpr=\S+ l2=\S+ \| valid "
            r"(\S+=\d\.\d{4} ?)+ \| \d+\.\ds",
            line,
        ), line


def test_a_terminal_keeps_the_bars_and_progress_false_is_silent(setup, monkeypatch) -> None:
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert is_interactive()
    _fit(setup, progress=True)
    out = term.getvalue()
    assert "epoch 1:" in out and "\r" in out  # tqdm's bars
    assert not re.search(r"^epoch \d+/3 \|", out, flags=re.M)
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    _fit(setup, progress=False)
    assert quiet.getvalue() == ""


def test_format_epoch_by_hand() -> None:
    logs = {
        "loss": {"total": 0.5, "bpr": 0.25},
        "valid": {"ndcg@10": 0.125},
        "lr": 0.005,
        "seconds": 1.26,
    }
    assert format_epoch(2, logs, 40) == (
        "epoch 2/40 | loss total=0.5000 bpr=0.2500 | valid ndcg@10=0.1250 | lr 0.005 | 1.3s"
    )
    assert format_epoch(0, {"loss": {}, "seconds": 0.0}) == "epoch 0 | loss - | 0.0s"


@pytest.mark.skipif(not is_available("tensorboard"), reason="needs the tensorboard extra")
def test_tensorboard_switch_writes_every_scalar(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mmseq.config import load_experiment
    from mmseq.identity import config_identity
    from mmseq.train.experiment import run_experiment

    path = tmp_path / "exp.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "path": "synthetic",
                    "synthetic": {"num_users": 30, "num_items": 20, "with_text": False, "seed": 1},
                },
                "model": {"name": "bprmf"},
                "train": {
                    "epochs": 3,
                    "progress": False,
                    "device": "cpu",
                    "lr_schedule": "linear",
                    "lr": 0.01,
                    "tensorboard": True,
                },
            }
        )
    )
    cfg = load_experiment(path)
    assert config_identity(cfg) == config_identity(
        load_experiment(path, ["train.tensorboard=false"])
    )
    results = run_experiment(cfg, run_dir=tmp_path / "run", resume=False)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    history = results["history"]
    want = (
        {f"loss/{t}" for t in history[0]["loss"]}
        | {f"valid/{m}" for m in history[0]["valid"]}
        | {"lr", "epoch_seconds"}
    )
    assert tags == want
    lr = events.Scalars("lr")
    assert [e.step for e in lr] == [1, 2, 3]
    assert [e.value for e in lr] == pytest.approx([0.01, 0.01 * 2 / 3, 0.01 / 3])
    total = [e.value for e in events.Scalars("loss/total")]
    assert total == pytest.approx([h["loss"]["total"] for h in history])
