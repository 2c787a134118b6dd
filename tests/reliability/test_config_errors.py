"""Bad configuration at the door: every case ends with ONE line on stderr and exit status 2.

The commands run in-process through their ``main`` (``mmseq.cli.main`` and
``scripts/build_graphs.py``'s ``main``), the very functions the console entry points call, so a
case costs milliseconds; ``test_one_case_through_a_real_subprocess`` checks the process boundary.
Each case names what is wrong (the key, the value, the nearest valid key) and, where the error
comes from the YAML file itself, the file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from rel_helpers import REPO, run_cli

from mmseq.cli import main as mmseq_main

BASE = "data: {path: synthetic, synthetic: {num_users: 30, num_items: 20, with_text: false}}\n"


def _build_graphs_main():
    path = REPO / "scripts" / "build_graphs.py"
    spec = importlib.util.spec_from_file_location("build_graphs_cli", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


# (case id, YAML appended to BASE (None = replace the file text), --set overrides, expected parts)
TRAIN_CASES = [
    ("unknown-top-level-key", "trian: {epochs: 1}\n", [], ["'trian'", "'train'", "x.yaml"]),
    ("unknown-train-key", "train: {epoch: 3}\n", [], ["x.yaml.train", "'epoch'", "'epochs'"]),
    ("unknown-split-key", "split: {protocl: loo-full}\n", [], ["x.yaml.split", "'protocl'",
                                                                 "'protocol'"]),
    ("unknown-synthetic-key (3 levels)",
     None, [], ["data.synthetic", "'num_user'", "'num_users'"]),
    ("unknown-model-param", "model: {name: sasrec, params: {hiden: 3}}\n", [],
     ["model.params (sasrec)", "'hiden'", "embedding_dim"]),
    ("string-for-int", "train: {epochs: ten}\n", [], ["x.yaml.train.epochs", "integer", "'ten'"]),
    ("list-for-float", "train: {lr: [1, 2]}\n", [], ["x.yaml.train.lr", "number", "[1, 2]"]),
    ("float-for-int", "seed: 1.5\n", [], ["x.yaml.seed", "integer", "1.5"]),
    ("string-for-bool", "train: {progress: 'yes'}\n", [], ["x.yaml.train.progress", "true/false"]),
    ("scalar-for-section", "train: 5\n", [], ["x.yaml.train", "mapping", "TrainConfig"]),
    ("string-for-model-param-int", "model: {name: bprmf, params: {embedding_dim: big}}\n", [],
     ["model.params (bprmf).embedding_dim", "integer", "'big'"]),
    ("unknown-model", "model: {name: sasrek}\n", [],
     ["'sasrek'", "choices", "did you mean 'sasrec'"]),
    ("unknown-protocol", "split: {protocol: loo}\n", [], ["x.yaml.split.protocol", "'loo'",
                                                          "loo-full"]),
    ("out-of-range-synthetic-value", "data: {synthetic: {num_topics: 50}}\n", [],
     ["num_topics", "50"]),
    ("override-without-equals", "", ["train.epochs"], ["Override 'train.epochs'",
                                                        "key.path=value"]),
    ("override-invalid-yaml", "", ["train.epochs=[1"], ["Override 'train.epochs=[1'",
                                                         "not valid YAML"]),
    ("override-through-a-value", "seed: 0\n", ["seed.x=1"], ["Override 'seed.x=1'",
                                                            "'seed' is not a section"]),
    ("override-unknown-key", "", ["train.epohcs=2"], ["x.yaml.train", "'epohcs'", "'epochs'"]),
    ("override-wrong-type", "", ["train.batch_size=many"], ["x.yaml.train.batch_size", "'many'"]),
    ("top-level-not-a-mapping", None, [], ["x.yaml", "mapping at the top level", "list"]),
    ("invalid-yaml-file", None, [], ["x.yaml", "invalid YAML"]),
]
WHOLE_FILE = {
    "unknown-synthetic-key (3 levels)": "data: {path: synthetic, synthetic: {num_user: 3}}\n",
    "top-level-not-a-mapping": "- data\n- model\n",
    "invalid-yaml-file": "data: {path: synthetic\nmodel: [\n",
    "out-of-range-synthetic-value": "data: {path: synthetic, synthetic: {num_topics: 50}}\n",
}


def _one_line_error(capsys, rc: int, expected: list[str]) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("INFO", "WARNING"))]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for part in expected:
        assert part in lines[0], f"{part!r} missing from: {lines[0]}"
    return lines[0]


@pytest.mark.parametrize("case,yaml_text,overrides,expected", TRAIN_CASES,
                         ids=[c[0] for c in TRAIN_CASES])
def test_train_rejects_bad_config_in_one_line(case, yaml_text, overrides, expected,
                                              tmp_path: Path, capsys) -> None:
    config = tmp_path / "x.yaml"
    config.write_text(WHOLE_FILE.get(case) or BASE + (yaml_text or ""))
    args = ["train", "--config", str(config), "--run-dir", str(tmp_path / "run")]
    for item in overrides:
        args += ["--set", item]
    rc = mmseq_main(args)
    _one_line_error(capsys, rc, expected)
    assert not (tmp_path / "run" / "results.json").exists()


def test_missing_config_file_names_it(tmp_path: Path, capsys) -> None:
    rc = mmseq_main(["train", "--config", str(tmp_path / "nope.yaml")])
    _one_line_error(capsys, rc, ["Config file not found", "nope.yaml"])


GRAPH_CASES = [
    ("unknown-graph-builder", "graphs: [{builder: ratinggraph}]\n",
     ["'ratinggraph'", "choices", "did you mean 'rating_graph'"]),
    ("unknown-graph-spec-key", "graphs: [{buildr: rating_graph}]\n",
     ["graphs[0]", "'buildr'", "'builder'"]),
    ("unknown-graph-param", "graphs: [{builder: rating_graph, params: {duplicate: max}}]\n",
     ["graphs[0].params (builder 'rating_graph')", "'duplicate'", "'duplicates'"]),
    ("graph-spec-not-a-mapping", "graphs: [rating_graph]\n",
     ["graphs[0]", "expected a mapping", "'rating_graph'"]),
    ("unknown-topic-key",
     "topics: {min_topic_sze: 5}\ngraphs: [{builder: user_topic_hypergraph}]\n",
     ["x.yaml: topics", "'min_topic_sze'", "'min_topic_size'"]),
]


@pytest.mark.parametrize("case,yaml_text,expected", GRAPH_CASES, ids=[c[0] for c in GRAPH_CASES])
def test_build_graphs_rejects_bad_config_in_one_line(case, yaml_text, expected,
                                                     tmp_path: Path, capsys) -> None:
    config = tmp_path / "x.yaml"
    config.write_text(BASE + f"artifacts_dir: {tmp_path / 'artifacts'}\n" + yaml_text)
    rc = _build_graphs_main()(["--config", str(config), "--no-progress"])
    _one_line_error(capsys, rc, expected)
    assert not list((tmp_path / "artifacts").rglob("*.pt"))  # nothing half-built was left


@pytest.mark.slow
def test_one_case_through_a_real_subprocess(tmp_path: Path) -> None:
    config = tmp_path / "x.yaml"
    config.write_text(BASE + "train: {lr: [1, 2]}\n")
    out = run_cli("train", "--config", str(config), "--run-dir", str(tmp_path / "run"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    expected = f"error: {config}.train.lr: expected a number (got [1, 2])"
    assert out.stderr.strip().splitlines() == [expected]
