"""mmseq/train/distributed.py: batch and user sharding by hand, and torchrun 2 ranks == 1 rank."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmseq.config import TrainConfig, load_experiment
from mmseq.data.split import split_interactions
from mmseq.data.synthetic import SyntheticConfig, generate_synthetic
from mmseq.errors import ConfigError, TrainingError
from mmseq.eval.protocol import evaluate, evaluate_per_user, make_eval_task
from mmseq.train.distributed import shard_batch, shard_bounds, shard_task
from mmseq.train.experiment import run_experiment
from mmseq.train.loop import fit

REPO = Path(__file__).resolve().parents[3]


def test_shard_bounds_by_hand() -> None:
    # 7 rows on 3 ranks: 3, 2, 2 (the first 7 % 3 = 1 rank takes the extra row)
    assert [shard_bounds(7, 3, r) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]
    assert [shard_bounds(1, 2, r) for r in range(2)] == [(0, 1), (1, 1)]


def test_shard_batch_slices_rows_copies_and_keeps_scalars() -> None:
    batch = {
        "user": torch.tensor([10, 11, 12, 13, 14]),
        "input": torch.arange(10).reshape(5, 2),  # (n, T)
        "views": torch.tensor([0, 1, 2, 3, 4, 100, 101, 102, 103, 104]),  # 2 stacked copies
        "stage": torch.tensor(1),
        "noise_seed": torch.tensor([7]),  # one row: a per-batch value (XSimGCL)
    }
    part, n = shard_batch(batch, 2, 1)  # rows 3..4 of 5
    assert n == 5
    assert part["user"].tolist() == [13, 14]
    assert part["input"].tolist() == [[6, 7], [8, 9]]
    assert part["views"].tolist() == [3, 4, 103, 104]
    assert int(part["stage"]) == 1 and part["noise_seed"].tolist() == [7]
    with pytest.raises(TrainingError, match="key 'odd'.*leading size 3"):
        shard_batch({"user": torch.arange(5), "odd": torch.arange(3)}, 2, 0)


def test_user_shards_sum_to_the_global_metrics() -> None:
    data = generate_synthetic(SyntheticConfig(num_users=60, num_items=40, seed=3))
    split = split_interactions(data, "ratio-80-20")
    task = make_eval_task(split, "test")

    class Scores(torch.nn.Module):  # fixed pseudo-random scores, one row per user
        trainable = False

        def __init__(self) -> None:
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.table = torch.rand(data.num_users, data.num_items, generator=g)

        def score_all(self, users, inputs):  # noqa: ANN001, ANN202
            return self.table[users]

        def begin_eval(self, inputs) -> None:  # noqa: ANN001
            pass

        def end_eval(self) -> None:
            pass

    class Inputs:
        device = torch.device("cpu")

    model, inputs = Scores(), Inputs()
    whole = evaluate(model, inputs, task)
    sums = {m: 0.0 for m in whole}
    count = 0
    for r in range(3):
        part = evaluate_per_user(model, inputs, shard_task(task, 3, r))
        count += len(next(iter(part.values())))
        for m in whole:
            sums[m] += float(part[m].sum())
    assert count == task.num_users
    for m, value in whole.items():
        assert sums[m] / count == pytest.approx(value, abs=1e-12)


def test_bf16_on_cpu_is_a_config_error() -> None:
    cfg = TrainConfig(device="cpu", precision="bf16", epochs=1, progress=False)
    with pytest.raises(ConfigError, match="train.precision 'bf16' is a CUDA autocast switch"):
        fit(
            torch.nn.Linear(1, 1),
            train_inputs=None,
            valid_inputs=None,
            valid_task=None,
            cfg=cfg,
            seed=0,
        )


def _overrides(tmp_path: Path, model: str) -> list[str]:
    return [
        f"model.name={model}",
        "model.params={}",
        "train.epochs=3",
        "train.batch_size=255",
        "train.threads=1",
        "train.progress=false",
        "train.device=cpu",
        "graphs=[{builder: interaction_graph}]",
        f"artifacts_dir={tmp_path / 'artifacts'}",
        f"output_dir={tmp_path / 'runs'}",
    ]


@pytest.mark.slow  # torchrun starts two fresh interpreters (torch imports, gloo rendezvous)
@pytest.mark.parametrize("model", ["lightgcn"])  # bprmf passes too; one keeps CI short
def test_torchrun_two_ranks_match_one_rank(tmp_path: Path, model: str) -> None:
    config = REPO / "configs" / "experiments" / "demo.yaml"
    overrides = _overrides(tmp_path, model)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    sets = [arg for o in overrides for arg in ("--set", o)]
    if model == "lightgcn":  # its graph bundle (no topics needed for the interaction graph)
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "build_graphs.py"),
                "--config",
                str(config),
                "--no-progress",
                *sets,
            ],
            env=env,
            check=True,
            capture_output=True,
            cwd=tmp_path,
        )
    two = tmp_path / "two"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "mmseq",
            "train",
            "--config",
            str(config),
            *sets,
            "--run-dir",
            str(two),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = run_experiment(load_experiment(config, overrides), run_dir=tmp_path / "one")

    saved = json.loads((two / "results.json").read_text())
    assert saved["extra"]["world_size"] == 2 and one["world_size"] == 1
    assert saved["extra"]["best_epoch"] == one["best_epoch"]
    for name, value in one["valid"].items():
        assert saved["extra"]["valid"][name] == pytest.approx(value, abs=1e-6), name
    for name, value in one["test"].items():
        assert saved["metrics"][name] == pytest.approx(value, abs=1e-6), name
    losses_two = [h["loss"]["total"] for h in saved["extra"]["history"]]
    losses_one = [h["loss"]["total"] for h in one["history"]]
    np.testing.assert_allclose(losses_two, losses_one, rtol=1e-5)
