"""scripts/tune.py: a validation-only grid search that never scores the test part."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import mmseq.train.experiment as experiment

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("tune_script", REPO / "scripts" / "tune.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _grid(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "tiny_grid.yaml"
    path.write_text(
        f"config: {REPO / 'configs/experiments/demo.yaml'}\n"
        "metric: ndcg@10\n"
        "seed: 0\n"
        f"set: [train.threads=1, train.epochs=2, model.name=bprmf, 'model.params={{}}', "
        f"output_dir={tmp_path / 'runs'}]\n" + body
    )
    return path


def test_grid_runs_every_combination_without_scoring_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_test_scoring(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the test part was scored during a grid search")

    monkeypatch.setattr(experiment, "evaluate", no_test_scoring)  # the test stage's evaluate
    tune = _module()
    grid = _grid(tmp_path, "grid:\n  model.params.embedding_dim: [8, 16]\n")
    assert tune.main([str(grid), "--out", str(tmp_path / "tuning")]) == 0

    out = capsys.readouterr().out
    runs = sorted((tmp_path / "tuning" / "tiny_grid").glob("*/results.json"))
    assert len(runs) == 2
    dims = set()
    for path in runs:
        saved = json.loads(path.read_text())
        assert saved["metrics"] == {}  # nothing from the test part
        assert 0.0 <= saved["extra"]["valid"]["ndcg@10"] <= 1.0
        dims.add(saved["config"]["model"]["params"]["embedding_dim"])
    assert dims == {8, 16}
    table = (tmp_path / "tuning" / "tiny_grid" / "summary.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith(("| 8 ", "| 16 "))]
    assert len(rows) == 2
    values = [float(r.split("|")[2]) for r in rows]
    assert values == sorted(values, reverse=True)  # ranked best first
    assert "best on validation: --set model.params.embedding_dim=" in out


def test_finished_combinations_are_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tune = _module()
    grid = _grid(tmp_path, "grid:\n  model.params.embedding_dim: [8]\n")
    assert tune.main([str(grid), "--out", str(tmp_path / "tuning")]) == 0
    first = (tmp_path / "tuning" / "tiny_grid" / "summary.md").read_text()

    def no_training(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a finished combination was trained again")

    monkeypatch.setattr(tune, "run_experiment", no_training)
    assert tune.main([str(grid), "--out", str(tmp_path / "tuning")]) == 0
    assert (tmp_path / "tuning" / "tiny_grid" / "summary.md").read_text() == first


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("grid:\n  model.params.embedding_dim: []\n", "grid.model.params.embedding_dim must be"),
        ("grid: {}\n", "'grid' must map config keys"),
        ("grid:\n  model.params.embedding_dim: [8]\nepochs: 3\n", "unknown key(s) ['epochs']"),
        ("metric: hr@3\ngrid:\n  model.params.embedding_dim: [8]\n", "metric 'hr@3'"),
    ],
)
def test_bad_grid_files_name_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, message: str
) -> None:
    tune = _module()
    grid = _grid(tmp_path, body)
    if body.startswith("metric"):  # the base template already has a metric line
        text = grid.read_text().replace("metric: ndcg@10\n", "")
        grid.write_text(text)
    assert tune.main([str(grid), "--out", str(tmp_path / "tuning")]) == 2
    err = capsys.readouterr().err
    assert message in err and "tiny_grid" in err
