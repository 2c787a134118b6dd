"""The spine end to end: CLI commands, bad input at the door, real-data training and results."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphs.compose import build_all
from mmseq.config import load_experiment
from mmseq.data.prepare import prepare_data
from mmseq.train.experiment import run_experiment

REPO = Path(__file__).resolve().parents[1]
MI = "amazon2014-musical-instruments-5core/reviews_Musical_Instruments_5.json.gz"


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmseq", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300)


@pytest.mark.data
def test_data_stats_prints_manifest_numbers(shared_data: Path) -> None:
    out = _cli("data", "stats", str(shared_data / MI))
    assert out.returncode == 0, out.stderr
    text = out.stdout.replace(",", "")
    for number in ("10261", "1429", "900"):
        assert number in text, f"{number} missing from:\n{out.stdout}"


def test_data_stats_bad_input_is_one_line_naming_the_file(tmp_path: Path) -> None:
    good = b'{"reviewerID": "u", "asin": "i", "overall": 5.0, "unixReviewTime": 1}\n' * 200
    raw = gzip.compress(good)
    bad = tmp_path / "truncated.json.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    out = _cli("data", "stats", str(bad))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "truncated.json.gz" in lines[0], out.stderr


def test_data_stats_missing_required_field_names_line(tmp_path: Path) -> None:
    path = tmp_path / "reviews.json"
    path.write_text('{"reviewerID": "u", "asin": "i", "overall": 5.0, "unixReviewTime": 1}\n'
                    '{"reviewerID": "u", "overall": 4.0, "unixReviewTime": 2}\n')
    out = _cli("data", "stats", str(path), "--format", "amazon")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "reviews.json" in out.stderr and "2" in out.stderr and "asin" in out.stderr


def test_train_rejects_unknown_config_key(tmp_path: Path) -> None:
    cfg = tmp_path / "x.yaml"
    cfg.write_text("data: {path: synthetic}\ntrian: {epochs: 1}\n")
    out = _cli("train", "--config", str(cfg))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "trian" in out.stderr and "train" in out.stderr


def test_unknown_model_lists_choices(tmp_path: Path) -> None:
    cfg = tmp_path / "x.yaml"
    cfg.write_text("data: {path: synthetic}\nmodel: {name: sasrek}\n")
    out = _cli("train", "--config", str(cfg))
    assert out.returncode == 2 and "sasrec" in out.stderr


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("model", ["sasrec", "lightgcn"])
def test_real_data_training_writes_results(model: str, tmp_path: Path) -> None:
    cfg = load_experiment(
        REPO / "configs/experiments/musical_instruments.yaml",
        [f"model.name={model}", "train.epochs=2", "train.progress=false", "seed=0",
         f"artifacts_dir={tmp_path / 'artifacts'}"],
    )
    graphs = None
    if model == "lightgcn":
        fit = prepare_data(cfg).split.fit
        graphs = build_all([{"builder": "interaction_graph"}], fit, cache_dir=tmp_path / "graphs")
    res = run_experiment(cfg, graphs=graphs, run_dir=tmp_path / "run", resume=False)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["protocol"] == "ratio-80-20"
    assert saved["data_hash"] and saved["seed"] == 0
    prov = saved["provenance"]
    assert {"git_sha", "cpu", "torch_threads", "versions", "time_utc"} <= set(prov)
    assert saved["config"]["model"]["name"] == model
    test = res["test"]
    assert set(test) >= {"hr@10", "ndcg@10", "hr@20", "ndcg@20"}
    assert all(0.0 <= v <= 1.0 for v in test.values())
    # After 2 epochs the model must already rank far above random (HR@20 of 20/900).
    assert test["hr@20"] > 2 * 20 / 900
