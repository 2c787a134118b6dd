"""scripts/build_graphs.py on real data: its printed summary agrees with counts from the data."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from mmseq.config import load_experiment
from mmseq.data.prepare import prepare_data

REPO = Path(__file__).resolve().parents[1]


def _main():
    spec = importlib.util.spec_from_file_location(
        "build_graphs_script", REPO / "scripts" / "build_graphs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.data
def test_summary_counts_match_musical_instruments(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Cheap builders only: the topic hypergraphs' counts are checked by hand in tests/graphs, and
    # a cold topic stage on this data set takes minutes (docs/topics.md).
    overrides = [
        f"artifacts_dir={tmp_path}",
        "graphs=[{builder: interaction_graph}, {builder: rating_graph}, "
        "{builder: item_cooccurrence}]",
    ]
    config = REPO / "configs/experiments/musical_instruments.yaml"
    args = ["--config", str(config), "--no-progress"]
    for o in overrides:
        args += ["--set", o]
    assert _main()(args) == 0
    out = capsys.readouterr().out

    fit = prepare_data(load_experiment(config, overrides)).split.fit
    pairs = {(u, i) for u, i in zip(fit.user.tolist(), fit.item.tolist())}
    rows = {
        m.group(1): m.groups()
        for m in re.finditer(
            r"^(\w+)\s+(graph|hypergraph)\s+\w+\s+(.+?)\s{2,}(\d+)\s+(\d+)\s+(\d+)\s*$", out, re.M
        )
    }
    assert f"fit rows {len(fit)} of 10261" in out
    for name in ("interaction_graph", "rating_graph"):
        _, kind, nodes, num_nodes, edges, nnz = rows[name]
        assert nodes.split() == ["user=1429", "item=900"] and int(num_nodes) == 1429 + 900
        # Undirected: each distinct training (user, item) pair is stored in both directions.
        assert int(edges) == int(nnz) == 2 * len(pairs)
    # Item co-occurrence: consecutive items of each user's time-ordered fit sequence, both ways.
    order = fit.chronological_order()
    u, i = fit.user[order], fit.item[order]
    same_user = u[1:] == u[:-1]
    consecutive = {
        tuple(sorted(p))
        for p in zip(i[:-1][same_user].tolist(), i[1:][same_user].tolist())
        if p[0] != p[1]
    }
    assert int(rows["item_cooccurrence"][4]) == 2 * len(consecutive)
