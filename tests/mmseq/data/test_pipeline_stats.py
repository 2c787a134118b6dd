"""Data losses are visible: duplicate pairs in the raw file, and every pipeline stage's counts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mmseq.cli import main
from mmseq.config import DataConfig, ExperimentConfig, from_dict
from mmseq.data.load import apply_pipeline
from mmseq.data.readers import load_interactions
from mmseq.data.split import split_interactions
from mmseq.data.stats import (
    duplicate_pairs,
    pipeline_stages,
    stages_line,
    trivial_metric_warnings,
)
from mmseq.train.experiment import run_experiment

# 4 users x 4 items. u1 rates i1 three times and u2 rates i2 twice: 3 duplicate rows, 2 pairs.
# u4 has one distinct item, i4 one distinct user: a 2-core drops both.
ROWS = [
    ("u1", "i1"), ("u1", "i1"), ("u1", "i1"), ("u1", "i2"), ("u1", "i3"),
    ("u2", "i1"), ("u2", "i2"), ("u2", "i2"), ("u2", "i3"),
    ("u3", "i1"), ("u3", "i2"), ("u3", "i3"),
    ("u4", "i4"),
]  # fmt: skip


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "x.csv"
    lines = ["user_id,item_id,rating,timestamp"]
    lines += [f"{u},{i},4,{t}" for t, (u, i) in enumerate(ROWS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_duplicate_pairs_are_counted_by_hand(tmp_path) -> None:
    assert duplicate_pairs(load_interactions(_csv(tmp_path))) == (3, 2)


def test_every_stage_keeps_and_drops_what_was_worked_out_by_hand(tmp_path) -> None:
    data = apply_pipeline(load_interactions(_csv(tmp_path)), DataConfig(kcore=2))
    split = split_interactions(data, "loo-full")
    stages = pipeline_stages(data, split)
    got = [(s["stage"], s["rows"], s["users"], s["items"]) for s in stages]
    # raw 13 rows; dedup -3 rows; 2-core drops u4/i4 (1 row); split keeps users with >= 3 rows.
    assert got == [
        ("raw", 13, 4, 4),
        ("dedup", 10, 4, 4),
        ("2-core", 9, 3, 3),
        ("split (loo-full)", 9, 3, 3),
    ]
    assert [s["dropped_rows"] for s in stages] == [0, 3, 1, 0]
    assert [s["dropped_users"] for s in stages] == [0, 0, 1, 0]
    assert stages[-1]["test_rows"] == 3 and stages[-1]["valid_rows"] == 3
    line = stages_line(stages)
    assert "\n" not in line and "dedup 10 rows/4 users/4 items (-3 rows)" in line
    assert "2-core 9 rows/3 users/3 items (-1 rows, -1 users, -1 items)" in line


def test_data_stats_reports_raw_duplicates_and_stages(tmp_path, capsys) -> None:
    path = _csv(tmp_path)
    assert main(["data", "stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 repeat an earlier (user, item) pair (2 pairs)" in out
    assert main(["data", "stats", str(path), "--dedup", "--kcore", "2", "--protocol",
                 "loo-full"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    for stage in ("raw", "dedup", "2-core", "split (loo-full)"):
        assert stage in out, out
    assert "3 / 0 / 0" in out and "1 / 1 / 1" in out  # dedup's and the 2-core's drops


def _experiment(tmp_path: Path, data: dict, **extra) -> ExperimentConfig:
    mapping = {
        "data": data,
        "split": {"protocol": "loo-full"},
        "model": {"name": "pop"},
        "train": {"epochs": 1, "progress": False, "device": "cpu", "monitor": "hr@5"},
        "output_dir": str(tmp_path / "runs"),
        "artifacts_dir": str(tmp_path / "artifacts"),
        **extra,
    }
    return from_dict(ExperimentConfig, mapping, where="test")


def test_results_record_stages_and_raw_sha256(tmp_path) -> None:
    path = _csv(tmp_path)
    res = run_experiment(_experiment(tmp_path, {"path": str(path)}, ks=(1, 5)))
    saved = json.loads((Path(res["run_dir"]) / "results.json").read_text())
    pipeline = saved["data_pipeline"]
    assert pipeline["raw_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [s["stage"] for s in pipeline["stages"]] == ["raw", "dedup", "split (loo-full)"]
    assert pipeline["stages"][1]["dropped_rows"] == 3
    # the split keeps u1-u3 and so 3 items: K=5 is trivial (every item is in the top 5).
    assert saved["trivial_metrics"] is True
    assert any("only 3 items <= K=5" in w for w in saved["warnings"])


def test_train_prints_the_summary_and_warns_about_trivial_metrics(tmp_path, capsys) -> None:
    cfg = tmp_path / "x.yaml"
    cfg.write_text(
        "data: {path: synthetic, synthetic: {num_users: 30, num_items: 12, num_topics: 2, "
        "with_text: false, min_interactions: 3, mean_interactions: 4}}\n"
        "split: {protocol: loo-full}\nmodel: {name: pop}\nks: [10]\n"
        f"train: {{monitor: hr@10, progress: false}}\noutput_dir: {tmp_path / 'runs'}\n"
    )
    assert main(["train", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    summary = [line for line in out.splitlines() if line.startswith("data: raw ")]
    assert len(summary) == 1 and "-> dedup" in summary[0] and "-> split (loo-full)" in summary[0]
    assert "WARNING:" in out and "candidate items" in out


def test_trivial_warnings_follow_the_candidate_counts(tmp_path) -> None:
    # 5 users with 3 items each out of 7: in the test stage each user has seen 2, so 5 candidates.
    path = tmp_path / "y.csv"
    rows = [f"u{u},i{u + j},{u * 3 + j}" for u in range(5) for j in range(3)]
    path.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    split = split_interactions(apply_pipeline(load_interactions(path), DataConfig()), "loo-full")
    assert trivial_metric_warnings(split, (1, 4), None) == []
    got = trivial_metric_warnings(split, (1, 5), None)
    assert got == [
        "test: 5 of 5 users have <= 5 candidate items (items they have not seen): their "
        "metrics @5 are trivial"
    ]  # valid: 6 candidates each (1 seen), not trivial
    assert trivial_metric_warnings(split, (1, 7), None)[0].startswith("only 7 items <= K=7")
    assert trivial_metric_warnings(split, (1,), 100) == []
    assert trivial_metric_warnings(split, (6,), 6) == [
        "6 candidates per user <= K=6: metrics @6 are trivial"
    ]
