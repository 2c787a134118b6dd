"""finetune / joint / ader end to end on a tiny synthetic sequence set, configs and the script."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from continual_helpers import cyclic_interactions

from mmseq.config import ModelSection
from mmseq.errors import ConfigError
from mmseq.train.continual.config import (
    ADERConfig,
    ContinualConfig,
    PeriodConfig,
    PeriodTrainConfig,
    load_continual_config,
)
from mmseq.train.continual.periods import assign_periods
from mmseq.train.continual.report import format_table, markdown_section, paper_finding
from mmseq.train.continual.samples import SequenceTable
from mmseq.train.continual.strategies import run_comparison

REPO = Path(__file__).resolve().parents[4]


def _config(**changes: object) -> ContinualConfig:
    cfg = ContinualConfig(
        model=ModelSection("sasrec", {"embedding_dim": 16, "num_layers": 1, "num_heads": 1,
                                      "dropout": 0.1, "max_len": 5}),
        train=PeriodTrainConfig(epochs=2, batch_size=32, lr=0.01, max_len=5, device="cpu"),
        periods=PeriodConfig(num_periods=4),
        ader=ADERConfig(exemplar_budget=15, lambda_base=1.0),
        ks=(5,),
    )
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(scope="module")
def comparison():
    data = cyclic_interactions()
    return data, run_comparison(_config(), data)


def test_every_strategy_reports_every_next_period(comparison) -> None:
    _, result = comparison
    assert list(result.strategies) == ["finetune", "joint", "ader"]
    for rows in result.strategies.values():
        assert [(r["train_period"], r["eval_period"]) for r in rows] == [(1, 2), (2, 3), (3, 4)]
        for r in rows:
            assert set(r["metrics"]) == {"recall@5", "ndcg@5", "mrr"}
            assert all(0.0 <= v <= 1.0 for v in r["metrics"].values())
            assert r["counts"]["samples"] > 0
    # Period 1 is trained once: the first evaluation is the same model for everyone.
    firsts = [rows[0]["metrics"] for rows in result.strategies.values()]
    assert firsts[0] == firsts[1] == firsts[2]
    assert len({json.dumps(rows[-1]["metrics"]) for rows in result.strategies.values()}) == 3


def test_training_sets_of_each_strategy(comparison) -> None:
    data, result = comparison
    periods = assign_periods(data.timestamp, 4)
    table = SequenceTable.build(data, periods.index)
    per_period = [int(table.sample_rows([t]).numel()) for t in range(4)]
    assert [p["samples"] for p in result.periods] == per_period
    finetune = [r["info"]["train_samples"] for r in result.strategies["finetune"]]
    joint = [r["info"]["train_samples"] for r in result.strategies["joint"]]
    assert finetune == per_period[:3]
    assert joint == np.cumsum(per_period[:3]).tolist()
    ader = result.strategies["ader"]
    budget = 15
    for t in (1, 2):
        info = ader[t]["info"]
        assert info["exemplars_replayed"] == min(budget, ader[t - 1]["info"]["train_samples"])
        assert info["train_samples"] == per_period[t] + info["exemplars_replayed"]
        assert info["exemplars_kept"] == budget
        seen_before, seen_now = (result.periods[t - 1]["items_seen"],
                                 result.periods[t]["items_seen"])
        expected = math.sqrt(seen_before / seen_now * info["exemplars_replayed"] / per_period[t])
        assert info["lambda"] == pytest.approx(expected)
        assert info["loss"]["kd"] >= 0.0


def test_runs_are_deterministic(comparison) -> None:
    data, result = comparison
    again = run_comparison(_config(strategies=("ader",)), data)
    assert again.strategies["ader"] == result.strategies["ader"]


def test_methods_lambda_rule_is_a_switch() -> None:
    data = cyclic_interactions()
    cfg = _config(strategies=("ader",), periods=PeriodConfig(num_periods=3),
                  ader=ADERConfig(exemplar_budget=15, lambda_base=2.0, lambda_rule="methods"),
                  train=PeriodTrainConfig(epochs=1, batch_size=64, max_len=5, device="cpu"))
    result = run_comparison(cfg, data)
    info = result.strategies["ader"][1]["info"]
    p = result.periods
    assert info["lambda"] == pytest.approx(2.0 * math.sqrt(p[0]["items_seen"] / p[1]["items_seen"]))


@pytest.mark.parametrize("name, reason", [("bprmf", "not sequential"),
                                          ("lightgcn", "graphs"), ("pop", "trainable")])
def test_non_sequential_backbones_are_rejected(name: str, reason: str) -> None:
    cfg = _config(model=ModelSection(name, {}))
    with pytest.raises(ConfigError, match=reason):
        run_comparison(cfg, cyclic_interactions())


def test_unknown_strategy_fails_before_training() -> None:
    with pytest.raises(ConfigError, match="did you mean 'joint'"):
        run_comparison(_config(strategies=("jiont",)), cyclic_interactions())


def test_reports(comparison) -> None:
    _, result = comparison
    table = format_table(result, "recall@5").splitlines()
    assert table[0].split() == ["recall@5", "P1->P2", "P2->P3", "P3->P4", "mean"]
    assert [line.split()[0] for line in table[1:]] == ["finetune", "joint", "ader"]
    mean = result.mean("ader", "recall@5")
    assert float(table[3].split()[-1]) == pytest.approx(mean, abs=5e-5)
    md = markdown_section(result, title="tiny", metrics=["recall@5"])
    assert md.startswith("## tiny") and "| ader |" in md and "P1→P2" in md
    finding = paper_finding(result, "recall@5")
    assert finding["checked"] and len(finding["holds_per_period"]) == 2


def test_shipped_configs_parse_and_point_at_the_shared_data() -> None:
    for name in ("ader_musical_instruments", "ader_movielens"):
        cfg = load_continual_config(REPO / "configs" / "continual" / f"{name}.yaml")
        assert cfg.model.name == "sasrec" and cfg.strategies == ("finetune", "joint", "ader")
        assert cfg.ader.lambda_rule == "issue"
        assert cfg.data.path.startswith("../../../shared/data/")


def test_config_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("ader: {lambda_rul: issue}\n")
    with pytest.raises(ConfigError, match="did you mean 'lambda_rule'"):
        load_continual_config(path)
    path.write_text("ader: {lambda_rule: paper}\n")
    with pytest.raises(ConfigError, match="'issue', 'methods'"):
        load_continual_config(path)
    path.write_text("periods: {num_periods: 1}\n")
    with pytest.raises(ConfigError, match="num_periods"):
        load_continual_config(path)


def test_script_prints_a_json_last_line_and_writes_markdown(tmp_path: Path, capsys) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_continual",
                                                  REPO / "scripts" / "run_continual.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "data: {path: synthetic, synthetic: {num_users: 40, num_items: 30, with_text: false}}\n"
        "model: {name: sasrec, params: {embedding_dim: 8, num_layers: 1, max_len: 5}}\n"
        "train: {epochs: 1, batch_size: 64, max_len: 5, device: cpu}\n"
        "periods: {num_periods: 3}\n"
        "ader: {exemplar_budget: 20}\n"
        "ks: [10]\n"
    )
    out_md = tmp_path / "results_ader.md"
    assert script.main(["--config", str(config), "--results-md", str(out_md)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert set(summary["metrics"]) == {"finetune", "joint", "ader"}
    assert len(summary["metrics"]["ader"]["recall@10"]) == 2
    assert "| joint |" in out_md.read_text()


@pytest.mark.data
def test_musical_instruments_periods(shared_data: Path) -> None:
    from mmseq.data.readers import load_interactions

    data = load_interactions(shared_data / "amazon2014-musical-instruments-5core"
                             / "reviews_Musical_Instruments_5.json.gz", "amazon")
    periods = assign_periods(data.timestamp, 5)
    assert periods.sizes.sum() == 10261
    assert periods.sizes.min() >= 2000 and periods.sizes.max() <= 2110  # ties move whole days
    for k in range(4):
        times = data.timestamp
        assert times[periods.index == k].max() < times[periods.index == k + 1].min()
