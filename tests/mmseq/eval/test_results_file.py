"""Results files: every field present, config resolved, provenance tolerant of a missing git."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from mmseq.config import ExperimentConfig, SplitConfig, to_dict
from mmseq.errors import ArtifactError
from mmseq.eval import report
from mmseq.eval.report import OPTIONAL_KEYS, REQUIRED_KEYS, load_results, provenance, write_results

PROVENANCE_KEYS = {
    "git_sha", "git_dirty", "hostname", "platform", "cpu", "cpu_count", "torch_threads",
    "cuda_device", "versions", "time_utc",
}


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    cfg = ExperimentConfig(split=SplitConfig(protocol="loo-full"), seed=3, ks=(5, 10))
    path = write_results(
        tmp_path / "runs" / "results.json",
        metrics={"hr@10": 0.25, "mrr": 0.125},
        config=cfg,
        seed=3,
        data_hash="abcdef0123456789",
        protocol="loo-full",
        extra={"best_epoch": 7, "wall_time_s": {"fit": 1.5}},
    )
    assert path == tmp_path / "runs" / "results.json"
    loaded = load_results(path)
    assert set(loaded) == set(REQUIRED_KEYS) | set(OPTIONAL_KEYS)
    assert loaded["warnings"] == [] and loaded["trivial_metrics"] is False
    assert loaded["format"] == 1
    assert loaded["protocol"] == "loo-full"
    assert loaded["metrics"] == {"hr@10": 0.25, "mrr": 0.125}
    assert loaded["config"] == json.loads(json.dumps(to_dict(cfg)))
    assert loaded["config"]["split"]["protocol"] == "loo-full"
    assert loaded["config"]["ks"] == [5, 10]
    assert len(loaded["config_hash"]) == 16
    assert loaded["seed"] == 3
    assert loaded["data_hash"] == "abcdef0123456789"
    assert loaded["extra"] == {"best_epoch": 7, "wall_time_s": {"fit": 1.5}}
    assert set(loaded["provenance"]) == PROVENANCE_KEYS
    assert set(loaded["provenance"]["versions"]) == {
        "python", "mmseq", "torch", "torch_geometric", "numpy",
    }
    # Nothing but the file itself is left behind (the write is atomic via a temp file).
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_same_config_same_hash_and_mapping_config(tmp_path: Path) -> None:
    cfg = ExperimentConfig(seed=1)
    a = write_results(tmp_path / "a.json", metrics={}, config=cfg, seed=1, data_hash="x",
                      protocol="ratio-80-20")
    b = write_results(tmp_path / "b.json", metrics={}, config=to_dict(cfg), seed=1, data_hash="x",
                      protocol="ratio-80-20")
    c = write_results(tmp_path / "c.json", metrics={},
                      config=dataclasses.replace(cfg, seed=2), seed=1, data_hash="x",
                      protocol="ratio-80-20")
    hashes = [load_results(p)["config_hash"] for p in (a, b, c)]
    assert hashes[0] == hashes[1] != hashes[2]


def test_non_finite_metric_and_bad_config_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'ndcg@10' to be finite"):
        write_results(tmp_path / "r.json", metrics={"ndcg@10": float("nan")},
                      config=ExperimentConfig(), seed=0, data_hash="x", protocol="loo-full")
    with pytest.raises(TypeError, match="'config'"):
        write_results(tmp_path / "r.json", metrics={}, config=[1, 2], seed=0, data_hash="x",
                      protocol="loo-full")
    assert not (tmp_path / "r.json").exists()


def test_provenance_in_this_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "_PINNED", None)  # not what an earlier test's run pinned
    info = provenance()
    assert set(info) == PROVENANCE_KEYS
    assert info["torch_threads"] >= 1
    assert info["time_utc"].endswith("+00:00")
    if info["git_sha"] is not None:
        assert len(info["git_sha"]) == 40 and isinstance(info["git_dirty"], bool)


def test_provenance_without_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "_PINNED", None)

    def no_git(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(report.subprocess, "run", no_git)
    info = provenance()
    assert info["git_sha"] is None and info["git_dirty"] is None

    def not_a_repo(*args: object, **kwargs: object) -> None:
        raise subprocess.CalledProcessError(128, "git")

    monkeypatch.setattr(report.subprocess, "run", not_a_repo)
    assert provenance()["git_sha"] is None


def test_load_results_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="Missing results file"):
        load_results(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ArtifactError, match="invalid JSON"):
        load_results(bad)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"protocol": "loo-full", "metrics": {}}))
    with pytest.raises(ArtifactError, match="missing fields"):
        load_results(partial)


def test_provenance_reports_the_pinned_code_and_a_checkout_that_moved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long process pins the commit it loaded; a result written after the checkout moved
    keeps that commit and says that the checkout changed (with the commit at writing time)."""
    state = {"sha": "a" * 40, "status": ""}

    def fake_git(*args: str) -> str:
        return state["sha"] if args[0] == "rev-parse" else state["status"]

    monkeypatch.setattr(report, "_git", fake_git)
    monkeypatch.setattr(report, "_PINNED", None)
    assert report.pin_code_state() == {"git_sha": "a" * 40, "git_dirty": False}
    info = provenance()
    assert info["git_sha"] == "a" * 40 and "checkout_changed_during_run" not in info
    state.update(sha="b" * 40, status=" M mmseq/models/sasrec.py")
    assert report.pin_code_state()["git_sha"] == "a" * 40  # the first pin wins
    info = provenance()
    assert info["git_sha"] == "a" * 40 and info["git_dirty"] is False
    assert info["checkout_changed_during_run"] is True
    assert info["git_sha_now"] == "b" * 40 and info["git_dirty_now"] is True
