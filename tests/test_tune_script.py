"""scripts/tune.py: an Optuna study on validation only; many workers share one SQLite study."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmseq.train.experiment as experiment
import mmseq.train.tune as tune_lib

optuna = pytest.importorskip("optuna")

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("tune_script", REPO / "scripts" / "tune.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _grid(tmp_path: Path, body: str, epochs: int = 2) -> Path:
    path = tmp_path / "tiny_grid.yaml"
    path.write_text(
        f"config: {REPO / 'configs/experiments/demo.yaml'}\n"
        "metric: ndcg@10\n"
        "seed: 0\n"
        f"set: [train.threads=1, train.epochs={epochs}, train.progress=false, model.name=bprmf, "
        f"'model.params={{}}', output_dir={tmp_path / 'runs'}]\n" + body
    )
    return path


def _study(out: Path) -> optuna.Study:
    return optuna.load_study(study_name="tiny_grid", storage=f"sqlite:///{out / 'study.db'}")


def test_grid_runs_every_combination_without_scoring_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_test_scoring(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the test part was scored during a study")

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
    trials = _study(tmp_path / "tuning" / "tiny_grid").trials
    assert sorted(round(t.value, 4) for t in trials) == sorted(values)  # the study holds them


def test_finished_study_and_finished_runs_are_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tune = _module()
    grid = _grid(tmp_path, "grid:\n  model.params.embedding_dim: [8]\n")
    out = tmp_path / "tuning" / "tiny_grid"
    assert tune.main([str(grid), "--out", str(tmp_path / "tuning")]) == 0
    first = (out / "summary.md").read_text()

    def no_training(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(tune_lib, "run_experiment", no_training)
    assert tune.main([str(grid), "--out", str(tmp_path / "tuning")]) == 0  # grid exhausted
    assert (out / "summary.md").read_text() == first
    assert len(_study(out).trials) == 1
    (out / "study.db").unlink()  # a new study over the same runs reads their results back
    assert tune.main([str(grid), "--out", str(tmp_path / "tuning")]) == 0
    assert (out / "summary.md").read_text() == first
    assert _study(out).trials[0].user_attrs["read_back"] is True


@pytest.mark.slow  # two fresh interpreters (torch + optuna imports)
def test_two_processes_share_one_sqlite_study(tmp_path: Path) -> None:
    grid = _grid(
        tmp_path,
        "grid:\n  model.params.embedding_dim: [4, 8]\n  train.lr: [0.01, 0.02]\n",
        epochs=1,
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "tune.py"),
        str(grid),
        "--out",
        str(tmp_path / "tuning"),
    ]
    # Two trials each: whichever order they start in, both workers take part.
    procs = [
        subprocess.Popen(
            [*cmd, "--worker", str(w), "--trials", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in (0, 1)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-2000:]

    trials = _study(tmp_path / "tuning" / "tiny_grid").trials
    states = {t.state for t in trials}
    assert states == {optuna.trial.TrialState.COMPLETE}
    points = {(t.params["model.params.embedding_dim"], t.params["train.lr"]) for t in trials}
    assert points == {(4, 0.01), (4, 0.02), (8, 0.01), (8, 0.02)}
    assert sorted(t.user_attrs["worker"] for t in trials) == [0, 0, 1, 1]
    assert not any(t.user_attrs["read_back"] for t in trials)  # each point trained once
    assert len(list((tmp_path / "tuning" / "tiny_grid").glob("*/results.json"))) == 4


class _AlwaysPrune:
    """A stand-in trial: takes grid values, records reports, prunes at the first one."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, int]] = []

    def suggest_categorical(self, name: str, choices: list) -> object:  # noqa: ARG002
        return choices[0]

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return True


def test_a_pruned_trial_stops_after_its_first_validation(tmp_path: Path) -> None:
    grid = _grid(tmp_path, "grid:\n  model.params.embedding_dim: [8]\n")
    spec = tune_lib.load_study_spec(grid, REPO)
    trial = _AlwaysPrune()
    with pytest.raises(optuna.TrialPruned, match="epoch 1"):
        tune_lib.run_trial(trial, spec, tmp_path / "out")
    assert [step for _, step in trial.reports] == [1]
    assert 0.0 <= trial.reports[0][0] <= 1.0
    assert not list((tmp_path / "out").glob("*/results.json"))  # no result for a pruned run


def test_tpe_samples_ranges(tmp_path: Path) -> None:
    grid = _grid(
        tmp_path,
        "sampler: tpe\ntrials: 3\npruner: none\nspace:\n"
        "  train.lr: {low: 0.001, high: 0.1, log: true}\n"
        "  model.params.embedding_dim: {low: 4, high: 12}\n",
    )
    spec = tune_lib.load_study_spec(grid, REPO)
    study = tune_lib.run_study(spec, tmp_path / "tuning" / "tiny_grid")
    assert len(study.trials) == 3
    for t in study.trials:
        assert 0.001 <= t.params["train.lr"] <= 0.1
        assert isinstance(t.params["model.params.embedding_dim"], int)
        assert 4 <= t.params["model.params.embedding_dim"] <= 12


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("grid:\n  model.params.embedding_dim: []\n", "space.model.params.embedding_dim must be"),
        ("grid: {}\n", "'space' ('grid') must map config keys"),
        ("grid:\n  model.params.embedding_dim: [8]\nepochs: 3\n", "unknown key(s) ['epochs']"),
        ("metric: hr@3\ngrid:\n  model.params.embedding_dim: [8]\n", "metric 'hr@3'"),
        ("grid:\n  train.lr: {low: 0.1, high: 0.2}\n", "the grid sampler needs lists"),
        ("sampler: tpe\nspace:\n  train.lr: {low: 0.2, high: 0.1}\n", "needs low < high"),
        ("sampler: random\ngrid:\n  train.lr: [0.1]\n", "sampler must be 'grid' or 'tpe'"),
    ],
)
def test_bad_study_files_name_the_problem(
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
