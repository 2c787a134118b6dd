"""scripts/analyse_runs.py: per-history-length breakdown of test metrics and logged gates."""

from __future__ import annotations

import json

import pytest
import torch

from tests.script_loader import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("analyse_runs")


def test_bucket_labels_cover_every_length(script) -> None:
    assert script.bucket_labels((5, 7, 10)) == ["<=5", "6-7", "8-10", ">10"]


def test_breakdown_is_the_mean_per_inclusive_bucket(script) -> None:
    lengths = torch.tensor([3, 5, 6, 8, 11, 16, 40])
    values = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.5, 0.25], dtype=torch.float64)
    rows = script.breakdown(lengths, values)  # buckets <=5, 6-7, 8-10, 11-15, >15
    assert rows == [(2, 0.5), (1, 1.0), (1, 0.0), (1, 1.0), (2, 0.375)]


def test_gates_reads_first_chosen_and_last_epoch(script, tmp_path) -> None:
    history = [{"epoch": e, "loss": {"ce": 1.0, "alpha_seq": e / 10}} for e in (1, 2, 3)]
    (tmp_path / "results.json").write_text(
        json.dumps({"extra": {"history": history, "best_epoch": 2}})
    )
    line = script.gates(tmp_path)
    assert "first (epoch 1): {'alpha_seq': 0.1}" in line
    assert "chosen (epoch 2): {'alpha_seq': 0.2}" in line
    assert "last (epoch 3): {'alpha_seq': 0.3}" in line
