"""A run directory belongs to one config: trainer changes never reuse another config's model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from mmseq.config import ExperimentConfig, TrainConfig, from_dict
from mmseq.errors import ConfigError
from mmseq.identity import NON_RESULT_FIELDS, config_identity
from mmseq.train.experiment import run_experiment

BASE = {
    "data": {
        "path": "synthetic",
        "synthetic": {"num_users": 40, "num_items": 30, "with_text": False, "seed": 0},
    },
    "split": {"protocol": "loo-full"},
    "model": {"name": "bprmf", "params": {"embedding_dim": 8}},
    "train": {"epochs": 2, "batch_size": 64, "lr": 0.01, "progress": False, "device": "cpu"},
    "seed": 0,
}

#: One other valid value for EVERY TrainConfig field (the test below checks the list is complete).
TRAIN_CHANGES = {
    "epochs": 3,
    "batch_size": 16,
    "lr": 0.05,
    "lr_schedule": "linear",
    "weight_decay": 0.01,
    "patience": 1,
    "eval_every": 2,
    "monitor": "hr@10",
    "device": "auto",
    "max_len": 7,
    "eval_batch_size": 5,
    "grad_clip": 0.01,
    "progress": True,
    "tensorboard": True,
    "threads": 1,
    "reuse_memory": False,
}
#: Fields whose other values need a GPU: a CPU run with them is refused before any work.
CUDA_ONLY_CHANGES = {"precision": "bf16"}


def _cfg(tmp_path: Path, **train: object) -> ExperimentConfig:
    mapping = json.loads(json.dumps(BASE))
    mapping["train"].update(train)
    mapping["output_dir"] = str(tmp_path / "runs")
    return from_dict(ExperimentConfig, mapping, where="test")


def _saved(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "results.json").read_text())


def test_every_trainer_field_is_covered() -> None:
    assert set(TRAIN_CHANGES) | set(CUDA_ONLY_CHANGES) == {
        f.name for f in dataclasses.fields(TrainConfig)
    }


@pytest.mark.parametrize("name,value", sorted(CUDA_ONLY_CHANGES.items()))
def test_cuda_only_trainer_settings_change_the_identity_and_are_refused_on_cpu(
    name: str, value: object, tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, **{name: value})
    assert config_identity(cfg) != config_identity(_cfg(tmp_path))
    with pytest.raises(ConfigError, match=f"train.{name}"):
        run_experiment(cfg)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_changing_any_trainer_field_never_reuses_the_finished_run(tmp_path: Path) -> None:
    # The defect: a finished run was reused for another lr/epochs/batch_size and results.json
    # then held the NEW settings beside the OLD model's metrics.
    threads = torch.get_num_threads()
    try:
        base = run_experiment(_cfg(tmp_path))
        for name, value in TRAIN_CHANGES.items():
            cfg = _cfg(tmp_path, **{name: value})
            again = run_experiment(cfg)  # the default run directory, resume on
            saved = _saved(again["run_dir"])
            assert saved["config"]["train"][name] == value, name
            assert saved["extra"]["identity"] == config_identity(cfg), name
            fresh = run_experiment(cfg, run_dir=tmp_path / "fresh" / name, resume=False)
            assert saved["metrics"] == _saved(fresh["run_dir"])["metrics"], name
            assert saved["extra"]["valid"] == fresh["valid"], name
            assert saved["extra"]["epochs_run"] == fresh["epochs_run"], name
            if ("train", name) not in NON_RESULT_FIELDS:
                assert again["run_dir"] != base["run_dir"], name
            else:  # progress and tensorboard cannot change a result: same identity, same run
                assert again["run_dir"] == base["run_dir"], name
    finally:
        torch.set_num_threads(threads)
    lr = _saved(run_experiment(_cfg(tmp_path, lr=0.05))["run_dir"])["metrics"]
    assert lr != base["test"]  # the lr really changes the numbers on this data


def test_another_config_in_the_same_run_dir_is_refused_naming_the_key(tmp_path: Path) -> None:
    run_dir = tmp_path / "mine"
    run_experiment(_cfg(tmp_path), run_dir=run_dir)
    with pytest.raises(ConfigError, match=r"another config.*train\.lr: 0\.01 -> 0\.05"):
        run_experiment(_cfg(tmp_path, lr=0.05), run_dir=run_dir)
    # --no-resume starts fresh there: the old run's files are gone, the new one is consistent.
    res = run_experiment(_cfg(tmp_path, lr=0.05), run_dir=run_dir, resume=False)
    fresh = run_experiment(_cfg(tmp_path, lr=0.05), run_dir=tmp_path / "other", resume=False)
    assert _saved(run_dir)["metrics"] == _saved(fresh["run_dir"])["metrics"]
    assert _saved(run_dir)["config"]["train"]["lr"] == 0.05 and res["identity"]


def test_run_files_without_an_identity_are_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "legacy"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "results.json").write_text("{}")
    with pytest.raises(ConfigError, match="unknown settings"):
        run_experiment(_cfg(tmp_path), run_dir=run_dir)


def test_continue_from_gives_the_fresh_longer_run(tmp_path: Path) -> None:
    short = run_experiment(_cfg(tmp_path, epochs=2))
    longer = run_experiment(_cfg(tmp_path, epochs=4), continue_from=Path(short["run_dir"]))
    fresh = run_experiment(_cfg(tmp_path, epochs=4), run_dir=tmp_path / "fresh", resume=False)
    assert longer["continued_from"]["epochs"] == 2
    assert _saved(longer["run_dir"])["metrics"] == _saved(fresh["run_dir"])["metrics"]
    assert [h["loss"] for h in longer["history"]] == [h["loss"] for h in fresh["history"]]
    assert _saved(short["run_dir"])["config"]["train"]["epochs"] == 2  # the short run is intact


def test_continue_from_refuses_other_changes(tmp_path: Path) -> None:
    short = Path(run_experiment(_cfg(tmp_path, epochs=2))["run_dir"])
    with pytest.raises(ConfigError, match=r"only be continued with more train.epochs.*train\.lr"):
        run_experiment(_cfg(tmp_path, epochs=4, lr=0.05), continue_from=short)
    with pytest.raises(ConfigError, match="must grow"):
        run_experiment(_cfg(tmp_path, epochs=1), continue_from=short)
    with pytest.raises(ConfigError, match="lr_schedule"):
        run_experiment(_cfg(tmp_path, epochs=4, lr_schedule="linear"), continue_from=short)
