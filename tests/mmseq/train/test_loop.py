"""The trainer: determinism, exact resume, early stopping, NaN reports, closed-form models."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from mmseq.config import TrainConfig
from mmseq.data.inputs import ModelInputs, build_model_inputs
from mmseq.data.schema import Interactions
from mmseq.data.split import split_interactions
from mmseq.errors import ArtifactError, ConfigError, TrainingError
from mmseq.eval.protocol import evaluate, make_eval_task
from mmseq.models import MODELS, LossOutput, Recommender
from mmseq.train.callbacks import Callback, EarlyStopping
from mmseq.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from mmseq.train.loop import fit

REPO = Path(__file__).resolve().parents[3]


def _data(num_users: int = 24, num_items: int = 30, per_user: int = 7) -> Interactions:
    """User u takes random items of cluster u % 3 (a third of the items), in random order."""
    rng = np.random.default_rng(0)
    size = num_items // 3
    items = [rng.choice(size, per_user, replace=False) + (u % 3) * size for u in range(num_users)]
    n = num_users * per_user
    return Interactions(
        user=np.repeat(np.arange(num_users), per_user),
        item=np.concatenate(items).astype(np.int64),
        rating=np.ones(n, dtype=np.float32),
        timestamp=np.tile(np.arange(per_user, dtype=np.int64), num_users),
        user_ids=np.array([f"u{i}" for i in range(num_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(num_items)], dtype=object),
    )


@pytest.fixture(scope="module")
def setup():
    split = split_interactions(_data(), "loo-full")
    inputs = build_model_inputs(split.fit, max_len=8)
    return split, inputs, make_eval_task(split, "valid")


def _cfg(**kw) -> TrainConfig:
    base = {"epochs": 5, "batch_size": 32, "lr": 1e-2, "patience": 5, "device": "cpu",
            "progress": False}
    return TrainConfig(**{**base, **kw})


def _model(name: str, split, seed: int = 0) -> Recommender:
    cls = MODELS.get(name)
    torch.manual_seed(seed)
    return cls(cls.config_class(), split.num_users, split.num_items)


def _run(name: str, setup, seed: int = 0, init_seed: int = 0, **kw):
    split, inputs, task = setup
    model = _model(name, split, init_seed)
    result = fit(model, train_inputs=inputs, valid_inputs=inputs, valid_task=task, cfg=_cfg(),
                 seed=seed, **kw)
    return model, result


def _losses(result) -> list[dict[str, float]]:
    return [h["loss"] for h in result.history]


def test_same_seed_gives_identical_metrics_twice(setup) -> None:
    _, a = _run("sasrec", setup, seed=4)
    _, b = _run("sasrec", setup, seed=4)
    assert a.best_metrics == b.best_metrics and _losses(a) == _losses(b)
    _, c = _run("sasrec", setup, seed=5)
    assert _losses(c) != _losses(a)


class Interrupt(Exception):
    pass


class InterruptAfter(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        if epoch == self.epoch:
            raise Interrupt(f"simulated crash after epoch {epoch}")


# generator-driven; + dropout's global RNG; + several encoders (one per peer) and a stage clock
@pytest.mark.parametrize("name", ["bprmf", "sasrec", "peerrec"])
def test_resume_after_interruption_matches_uninterrupted_run(name: str, setup,
                                                              tmp_path: Path) -> None:
    full_model, full = _run(name, setup)
    with pytest.raises(Interrupt):
        _run(name, setup, checkpoint_dir=tmp_path, callbacks=[InterruptAfter(2)])
    assert load_checkpoint(tmp_path)["epoch"] == 2
    torch.rand(7), np.random.rand(3), random.random()  # disturb the global RNGs in between
    resumed_model, resumed = _run(name, setup, init_seed=99, checkpoint_dir=tmp_path)
    assert resumed.best_metrics == full.best_metrics
    assert resumed.best_epoch == full.best_epoch
    assert _losses(resumed) == _losses(full) and len(resumed.history) == 5
    for key, value in full_model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[key]), key
    # A finished run resumes to the same result without training again.
    _, again = _run(name, setup, init_seed=7, checkpoint_dir=tmp_path)
    assert again.best_metrics == full.best_metrics and len(again.history) == 5


def test_an_optimizer_state_of_other_parameters_is_refused_by_name(setup,
                                                                   tmp_path: Path) -> None:
    # Same key, other parameter layout (as a PeerRec checkpoint of stacked peer weights, whose
    # model weights load through a pre-hook but whose Adam state has fewer, larger tensors).
    _run("bprmf", setup, checkpoint_dir=tmp_path)
    state = load_checkpoint(tmp_path)
    state["optimizer"]["param_groups"][0]["params"].append(99)
    save_checkpoint(tmp_path, state)
    with pytest.raises(ConfigError, match=r"optimizer state does not fit.*--no-resume"):
        _run("bprmf", setup, checkpoint_dir=tmp_path)


def test_a_checkpoint_of_another_experiment_is_refused_by_name(setup, tmp_path: Path) -> None:
    # Two configs that share a run directory (same model name, data and seed, other params) must
    # not resume from each other: a clear error, not a state_dict shape mismatch.
    _run("bprmf", setup, checkpoint_dir=tmp_path, checkpoint_key="experiment-a")
    with pytest.raises(ConfigError, match=r"belongs to another experiment.*--run-dir.*--no-resume"):
        _run("bprmf", setup, checkpoint_dir=tmp_path, checkpoint_key="experiment-b")
    _, again = _run("bprmf", setup, checkpoint_dir=tmp_path, checkpoint_key="experiment-a")
    assert len(again.history) == 5  # its own key resumes (here: the finished run)


def test_run_experiment_keys_checkpoints_by_the_whole_config() -> None:
    from mmseq.config import load_experiment
    from mmseq.identity import config_identity
    from mmseq.train.experiment import checkpoint_key

    path = REPO / "configs" / "experiments" / "demo.yaml"
    base = checkpoint_key(load_experiment(path))
    assert base == config_identity(load_experiment(path))
    assert checkpoint_key(load_experiment(path, ["train.epochs=99"])) != base
    assert checkpoint_key(load_experiment(path, ["seed=3"])) != base
    assert checkpoint_key(load_experiment(path, ["train.progress=false"])) == base


def test_early_stopping_restores_best_weights(setup) -> None:
    values = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.9])
    scripted = lambda model, inputs, task, batch_size: {"ndcg@10": next(values)}  # noqa: E731

    class Snapshots(Callback):
        states: dict[int, dict[str, Tensor]] = {}

        def on_epoch_end(self, epoch: int, logs: dict) -> None:
            self.states[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    split, inputs, task = setup
    model = _model("bprmf", split)
    snaps = Snapshots()
    result = fit(model, train_inputs=inputs, valid_inputs=inputs, valid_task=task,
                 cfg=_cfg(epochs=6, patience=2), seed=0, callbacks=[snaps], evaluate_fn=scripted)
    assert result.stopped_early and result.best_epoch == 2
    assert [h["valid"]["ndcg@10"] for h in result.history] == [0.1, 0.5, 0.4, 0.3]
    assert result.best_metrics == {"ndcg@10": 0.5}
    for key, value in model.state_dict().items():
        assert torch.equal(value, snaps.states[2][key])
    assert not torch.equal(snaps.states[2]["user_embedding.weight"],
                           snaps.states[4]["user_embedding.weight"])


def test_eval_every_validates_on_schedule_and_at_the_end(setup, caplog) -> None:
    caplog.set_level("INFO", logger="mmseq.train.callbacks")
    split, inputs, task = setup
    result = fit(_model("bprmf", split), train_inputs=inputs, valid_inputs=inputs,
                 valid_task=task, cfg=_cfg(epochs=3, eval_every=2), seed=0)
    assert ["valid" in h for h in result.history] == [False, True, True]
    assert set(result.history[0]["loss"]) == {"total", "bpr", "l2"}
    assert all(h["seconds"] >= 0 for h in result.history)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and lines[1].startswith("epoch 2 | total=") and "ndcg@10=" in lines[1]


def test_closed_form_model_is_fitted_and_evaluated_once(setup) -> None:
    split, inputs, task = setup
    model = _model("pop", split)
    result = fit(model, train_inputs=inputs, valid_inputs=inputs, valid_task=task, cfg=_cfg(),
                 seed=0)
    assert result.best_epoch == 0 and len(result.history) == 1 and not result.stopped_early
    assert model.popularity.sum().item() == len(split.fit)
    assert result.best_metrics == evaluate(model, inputs, task)


@dataclass
class _Counter:
    epoch: int = 0


class NaNAtEpoch2Step1(Recommender):
    """A one-parameter model whose second term turns NaN at epoch 2, step 1."""

    config_class = dict

    def __init__(self) -> None:
        super().__init__({}, 3, 4)
        self.w = nn.Parameter(torch.ones(1))
        self.count = _Counter()

    def training_batches(self, inputs: ModelInputs, batch_size: int,
                         generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        self.count.epoch += 1
        return iter([{"step": torch.tensor(s)} for s in range(3)])

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        bad = self.count.epoch == 2 and int(batch["step"]) == 1
        fine = (self.w ** 2).sum()
        weird = fine * (float("nan") if bad else 1.0)
        return LossOutput(fine + weird, {"fine": fine.detach(), "weird": weird.detach()})

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        return self.w.expand(len(users), 4)


def test_non_finite_loss_names_epoch_step_and_term_and_keeps_checkpoint(setup,
                                                                         tmp_path: Path) -> None:
    _, inputs, task = setup
    const = lambda model, inputs, task, batch_size: {"ndcg@10": 0.5}  # noqa: E731
    with pytest.raises(TrainingError, match=r"epoch 2, step 1.*\['weird'\].*last\.pt"):
        fit(NaNAtEpoch2Step1(), train_inputs=inputs, valid_inputs=inputs, valid_task=task,
            cfg=_cfg(), seed=0, checkpoint_dir=tmp_path, evaluate_fn=const)
    assert load_checkpoint(tmp_path)["epoch"] == 1


def test_unknown_monitor_is_a_config_error(setup) -> None:
    with pytest.raises(ConfigError, match="monitor.*'nope'.*hr@10"):
        split, inputs, task = setup
        fit(_model("bprmf", split), train_inputs=inputs, valid_inputs=inputs, valid_task=task,
            cfg=_cfg(epochs=1, monitor="nope"), seed=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_config_error(setup) -> None:
    split, inputs, task = setup
    with pytest.raises(ConfigError, match="CUDA is not available"):
        fit(_model("bprmf", split), train_inputs=inputs, valid_inputs=inputs, valid_task=task,
            cfg=_cfg(device="cuda"), seed=0)


def test_corrupt_checkpoint_is_an_artifact_error(setup, tmp_path: Path) -> None:
    _run("bprmf", setup, checkpoint_dir=tmp_path)
    path = tmp_path / "last.pt"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="last.pt"):
        _run("bprmf", setup, checkpoint_dir=tmp_path)


def test_early_stopping_rule() -> None:
    rule = EarlyStopping(patience=2)
    assert rule.update(0.3, 1) and not rule.update(0.3, 2)  # ties are not improvements
    assert not rule.should_stop and not rule.update(0.1, 3) and rule.should_stop
    state = rule.state_dict()
    other = EarlyStopping(patience=2)
    other.load_state_dict(state)
    assert (other.best, other.best_epoch, other.bad_evaluations) == (0.3, 1, 2)
    assert not EarlyStopping(patience=0).should_stop


def test_rng_state_round_trip() -> None:
    gen = torch.Generator().manual_seed(1)
    state = capture_rng_state(gen)
    first = (torch.rand(3, generator=gen), torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(state, gen)
    second = (torch.rand(3, generator=gen), torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert np.array_equal(first[2], second[2]) and first[3] == second[3]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_trains_on_cuda(name: str, setup) -> None:
    split, inputs, task = setup
    if MODELS.get(name).requires_graphs:
        pytest.skip("graph models need a graph: covered by test_cuda_scores_match_cpu")
    model = _model(name, split)
    result = fit(model, train_inputs=inputs, valid_inputs=inputs, valid_task=task,
                 cfg=_cfg(epochs=2, device="cuda"), seed=0)
    assert all(0.0 <= v <= 1.0 for v in result.best_metrics.values())
    assert all(t.device.type == "cuda" for t in model.state_dict().values())
