"""The results store: keys, the guard against other configs/code, and make_results on top of it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

import mmseq.results_store as store
from mmseq.config import from_dict, load_experiment
from mmseq.models import MODELS

REPO = Path(__file__).resolve().parents[2]

TINY = """
data:
  path: synthetic
  synthetic: {num_users: 60, num_items: 40, seed: 0}
split: {protocol: loo-full}
model: {name: pop}
train: {epochs: 1, threads: 1, progress: false}
seed: 0
"""


def _results(**test) -> dict:
    return {
        "test": {"ndcg@10": 0.5, **test},
        "valid": {"ndcg@10": 0.4},
        "best_epoch": 3,
        "epochs_run": 5,
        "history": [
            {
                "epoch": 1,
                "loss": {"total": 1.0, "ce": 1.0},
                "valid": {"ndcg@10": 0.4, "hr@5": 0.1, "mrr": 0.2},
                "seconds": 2.0,
            }
        ],
        "seconds": {"fit": 10.0, "test": 1.0},
    }


def _cfg(tmp_path: Path, overrides: list[str] | None = None):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return load_experiment(path, overrides or [])


def test_defaults_written_out_are_the_same_run(tmp_path: Path) -> None:
    a = store.StoreKey.of(_cfg(tmp_path, ["model.name=sasrec", "model.params={}"]))
    b = store.StoreKey.of(
        _cfg(tmp_path, ["model.name=sasrec", "model.params={loss: ce, dropout: 0.2}"])
    )
    c = store.StoreKey.of(_cfg(tmp_path, ["model.name=sasrec", "model.params={loss: sampled}"]))
    d = store.StoreKey.of(_cfg(tmp_path, ["model.name=sasrec", "seed=1"]))
    assert a == b and a.identity != c.identity and a.identity != d.identity
    assert a.code == c.code  # same model class, same protocol code


def test_round_trip_and_trimmed_history(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    entry = store.entry_from_results(cfg, _results(), provenance={"git_sha": "x"})
    path = store.save(tmp_path / "store", cfg, entry)
    assert path.parent.name == "pop" and path.stat().st_size < 4000
    got = store.lookup(tmp_path / "store", cfg)
    assert got["test"] == {"ndcg@10": 0.5} and got["wall_s"] == 11.0
    assert got["history"] == [{"epoch": 1, "loss": 1.0, "valid": {"ndcg@10": 0.4}, "seconds": 2.0}]
    assert store.lookup(tmp_path / "store", _cfg(tmp_path, ["seed=1"])) is None


def test_other_code_version_is_never_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(tmp_path)
    store.save(tmp_path / "s", cfg, store.entry_from_results(cfg, _results(), provenance={}))
    monkeypatch.setattr(MODELS.get("pop"), "result_version", "2")
    assert store.lookup(tmp_path / "s", cfg) is None
    assert len(store.stale(tmp_path / "s")) == 1
    monkeypatch.setattr(store, "EVAL_VERSION", "2")
    monkeypatch.setattr(MODELS.get("pop"), "result_version", "1")
    assert store.lookup(tmp_path / "s", cfg) is None


def test_a_file_under_another_key_is_never_returned(tmp_path: Path) -> None:
    cfg, other = _cfg(tmp_path), _cfg(tmp_path, ["seed=1"])
    path = store.save(
        tmp_path / "s", other, store.entry_from_results(other, _results(), provenance={})
    )
    shutil.copy(path, store.StoreKey.of(cfg).path(tmp_path / "s"))  # renamed: seed 1's numbers
    assert store.lookup(tmp_path / "s", cfg) is None
    assert store.stale(tmp_path / "s") == [store.StoreKey.of(cfg).path(tmp_path / "s")]
    entry = store.entry_from_results(cfg, _results(), provenance={})
    entry["config"] = json.loads(path.read_text())["config"]  # right key, edited config
    store.StoreKey.of(cfg).path(tmp_path / "s").write_text(json.dumps(entry))
    assert store.lookup(tmp_path / "s", cfg) is None
    assert store.stale(tmp_path / "s") == [store.StoreKey.of(cfg).path(tmp_path / "s")]


def test_results_without_test_metrics_are_not_stored(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="test metrics"):
        store.entry_from_results(_cfg(tmp_path), {"test": None}, provenance={})


# -- scripts/make_results.py on the store -----------------------------------------------------
def _make_results():
    spec = importlib.util.spec_from_file_location(
        "make_results_script", REPO / "scripts" / "make_results.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _table(mr, tmp_path: Path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    return from_dict(
        mr.TableSpec,
        {
            "caption": "tiny",
            "config": str(tmp_path / "tiny.yaml"),
            "columns": ["ndcg@10"],
            "seeds": [0, 1],
            "set": ["train.epochs=1"],
            "rows": [{"label": "POP", "set": []}],
        },
        where="test",
    )


def test_make_results_trains_only_what_is_missing_and_skips_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mr = _make_results()
    spec, root, runs = _table(mr, tmp_path), tmp_path / "store", tmp_path / "runs"
    first = mr.run_table("tiny", spec, [0], None, runs, store=root)
    assert len(first["rows"][0]["runs"]) == 2 and len(list(root.glob("pop/*.json"))) == 2
    out = capsys.readouterr().out  # each run announced, then one line per epoch
    assert out.count("[tiny] POP seed 1: training in") == 1
    # POP has no training epochs: its one line is the validation of epoch 0
    assert out.count("epoch 0/1 | loss - | valid hr@5=") == 2

    def no_training(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a stored run was trained again")

    monkeypatch.setattr(mr, "run_experiment", no_training)
    again = mr.run_table("tiny", spec, [0], None, runs, store=root)
    assert [r["test"] for r in again["rows"][0]["runs"]] == [
        r["test"] for r in first["rows"][0]["runs"]
    ]
    # The code changed: the stored results are of other code, so none enters the table.
    monkeypatch.setattr(MODELS.get("pop"), "result_version", "2")
    stale = mr.run_table("tiny", spec, [0], None, runs, store=root, train=False)
    assert stale["rows"][0]["runs"] == []
    text = mr.to_markdown([stale], [0, 1], 0.0, "x.md")
    assert "POP (0/2 seeds)" in text
    assert "validations; 1 torch thread per run; seeds" in text  # the runs' threads, stated


def test_reuse_imports_only_run_directories_of_the_same_config(tmp_path: Path) -> None:
    mr = _make_results()
    spec, runs = _table(mr, tmp_path), tmp_path / "runs"
    mr.run_table("tiny", spec, [0], None, runs, store=tmp_path / "a")
    run_dirs = sorted((runs / "tiny").iterdir())
    assert len(run_dirs) == 2
    # Seed 1's run directory put where seed 0's belongs: its recorded config is not the row's.
    shutil.rmtree(run_dirs[0])
    shutil.copytree(run_dirs[1], run_dirs[0])
    table = mr.run_table(
        "tiny", spec, [0], None, runs, reuse=True, store=tmp_path / "b", train=False
    )
    assert [r["seed"] for r in table["rows"][0]["runs"]] == [1]


class _SessionEnd(Exception):
    """Stands for a session's end cutting a long run off."""


def _cut_off_after(mr, monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Make make_results' next training stop (an exception) right after ``epoch``."""
    real = mr.run_experiment

    class CutOff(mr.Callback):
        def on_epoch_end(self, e: int, logs: dict) -> None:
            if e == epoch:
                raise _SessionEnd

    def cut(*args, callbacks=(), **kwargs):  # noqa: ANN002, ANN003, ANN202
        monkeypatch.setattr(mr, "run_experiment", real)  # only this one run is cut off
        return real(*args, callbacks=[*callbacks, CutOff()], **kwargs)

    monkeypatch.setattr(mr, "run_experiment", cut)


def test_an_interrupted_run_resumes_where_it_stopped_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mr = _make_results()
    (tmp_path / "tiny.yaml").write_text(TINY)
    spec = from_dict(
        mr.TableSpec,
        {
            "caption": "tiny",
            "config": str(tmp_path / "tiny.yaml"),
            "columns": ["ndcg@10"],
            "seeds": [0],
            "set": ["train.epochs=4", "train.eval_every=1", "train.patience=10"],
            "rows": [{"label": "SASRec", "set": ["model.name=sasrec", "model.params={}"]}],
        },
        where="test",
    )
    whole = mr.run_table("tiny", spec, [0], None, tmp_path / "a", store=tmp_path / "sa")
    whole = whole["rows"][0]["runs"][0]

    _cut_off_after(mr, monkeypatch, 2)
    with pytest.raises(_SessionEnd):
        mr.run_table("tiny", spec, [0], None, tmp_path / "b", store=tmp_path / "sb")
    (run_dir,) = (tmp_path / "b" / "tiny").iterdir()
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert not list((tmp_path / "sb").glob("*/*.json"))  # nothing stored for a cut-off run
    capsys.readouterr()

    resumed = mr.run_table("tiny", spec, [0], None, tmp_path / "b", store=tmp_path / "sb")
    resumed = resumed["rows"][0]["runs"][0]
    assert "resuming from the checkpoint of epoch 2" in capsys.readouterr().out
    assert resumed["test"] == whole["test"] and resumed["best_epoch"] == whole["best_epoch"]
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in whole["history"]]
    assert resumed["provenance"]["resumed_at_epochs"] == [3]
    assert [p["from_epoch"] for p in resumed["provenance"]["parts"]] == [1, 3]
    assert "resumed_at_epochs" not in whole["provenance"]
    # The time of the epochs trained before the cut-off is counted.
    assert resumed["wall_s"] >= sum(h["seconds"] for h in resumed["history"])
    assert not (run_dir / "checkpoints").exists()  # stored: the checkpoint is gone

    # --fresh: a cut-off run starts over instead.
    _cut_off_after(mr, monkeypatch, 1)
    with pytest.raises(_SessionEnd):
        mr.run_table("tiny", spec, [0], None, tmp_path / "c", store=tmp_path / "sc")
    capsys.readouterr()
    again = mr.run_table(
        "tiny", spec, [0], None, tmp_path / "c", store=tmp_path / "sc", fresh=True
    )
    assert "resuming" not in capsys.readouterr().out
    again = again["rows"][0]["runs"][0]
    assert again["test"] == whole["test"] and "resumed_at_epochs" not in again["provenance"]


def test_a_resume_without_recorded_parts_is_still_reported(tmp_path: Path) -> None:
    mr = _make_results()
    parts = mr.RunParts(tmp_path / "run")  # a checkpoint that no make_results process recorded
    parts.on_fit_start(None, 4)
    assert [p["from_epoch"] for p in parts.parts] == [1, 4] and parts.parts[0]["git_sha"] is None
    again = mr.RunParts(tmp_path / "run")
    again.on_fit_start(None, 6)
    assert [p["from_epoch"] for p in again.parts] == [1, 4, 6]
    fresh = mr.RunParts(tmp_path / "run")
    fresh.on_fit_start(None, 1)  # a fresh start resets the list
    assert [p["from_epoch"] for p in fresh.parts] == [1]


def test_validation_curves_average_the_seeds_by_epoch() -> None:
    mr = _make_results()
    runs = [
        {
            "history": [
                {"epoch": 2, "valid": {"ndcg@10": 0.1}},
                {"epoch": 4, "valid": {"ndcg@10": 0.3}},
            ]
        },
        {"history": [{"epoch": 2, "valid": {"ndcg@10": 0.2}}, {"epoch": 3}]},
    ]
    lines = mr.validation_curves([{"model": "m", "runs": runs}], "ndcg@10")
    assert lines[2] == "| model | 2 | 4 |" and lines[4] == "| m | 0.1500 | 0.3000 |"


def _tables_dir(tmp_path: Path, rows: list[dict]) -> Path:
    """A folder with one table file, ``tiny``, over the TINY experiment."""
    (tmp_path / "tiny.yaml").write_text(TINY)
    folder = tmp_path / "tables"
    folder.mkdir()
    table = {
        "caption": "tiny",
        "config": str(tmp_path / "tiny.yaml"),
        "columns": ["ndcg@10", "hr@10"],
        "seeds": [0, 1],
        "set": ["train.epochs=2", "train.eval_every=1"],
        "rows": rows,
    }
    (folder / "tiny.yaml").write_text(json.dumps(table))  # JSON is YAML
    return folder


def test_jobs_train_the_missing_cells_in_workers_with_the_same_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mr = _make_results()
    folder = _tables_dir(tmp_path, [
        {"label": "SASRec", "set": ["model.name=sasrec", "model.params={}"]},
        {"label": "POP", "set": []},
    ])
    spec = mr.load_tables(folder)["tiny"]
    inline = mr.run_table("tiny", spec, [0], None, tmp_path / "runs_a", store=tmp_path / "a")
    # POP seed 0 already stored: only the three other cells go to workers.
    pop0 = next(iter(sorted((tmp_path / "a" / "pop").glob("*.json"))))
    (tmp_path / "b" / "pop").mkdir(parents=True)
    shutil.copy(pop0, tmp_path / "b" / "pop" / pop0.name)
    capsys.readouterr()
    code = mr.main(["--tables", str(folder), "--only", "tiny", "--store", str(tmp_path / "b"),
                    "--runs", str(tmp_path / "runs_b"), "--out", str(tmp_path / "t.md"),
                    "--jobs", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "3 cell(s) to train, 2 at a time" in out
    assert out.count("worker done") == 3 and "POP seed 0: started" not in out
    parallel = mr.run_table("tiny", spec, [0], None, tmp_path / "runs_b", store=tmp_path / "b",
                            train=False)
    for a, b in zip(inline["rows"], parallel["rows"], strict=True):
        assert [r["test"] for r in a["runs"]] == [r["test"] for r in b["runs"]]
        assert len(b["runs"]) == 2
    assert (tmp_path / "runs_b" / "logs" / "tiny-SASRec-seed1.log").is_file()
    assert "| SASRec |" in (tmp_path / "t.md").read_text()


def test_a_cell_another_process_is_training_is_left_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmseq.lock import file_lock

    mr = _make_results()
    spec = _table(mr, tmp_path)
    runs, root = tmp_path / "runs", tmp_path / "store"
    cells = list(mr.table_cells("tiny", spec, [0], None, runs))
    busy = cells[1][4]  # seed 1's run directory
    with file_lock(busy):  # a second open file description: flock conflicts as across processes
        table = mr.run_table("tiny", spec, [0], None, runs, store=root)
    assert [r["seed"] for r in table["rows"][0]["runs"]] == [0]
    out = capsys.readouterr().out
    assert "POP seed 1: another process is training it" in out and "POP seed 1: training" not in out
    assert len(list(root.glob("pop/*.json"))) == 1
    # Released: the next command trains it.
    again = mr.run_table("tiny", spec, [0], None, runs, store=root)
    assert [r["seed"] for r in again["rows"][0]["runs"]] == [0, 1]


def test_a_failed_worker_is_named_and_fails_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mr = _make_results()
    bad = tmp_path / "bad.txt"
    bad.write_text("not an S3-Rec line\n")  # a data error only the worker meets (when it loads)
    folder = _tables_dir(tmp_path, [
        {"label": "POP", "set": []},
        {"label": "broken", "set": [f"data.path={bad}", "data.format=s3rec"]},
    ])
    code = mr.main(["--tables", str(folder), "--only", "tiny", "--store", str(tmp_path / "s"),
                    "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "t.md"),
                    "--jobs", "2", "--seeds", "0"])
    out = capsys.readouterr().out
    assert code == 1
    assert "broken seed 0: worker FAILED" in out and "tiny-broken-seed0.log" in out
    assert "| POP |" in (tmp_path / "t.md").read_text()  # both POP seeds, from their workers
    assert "broken (0/2 seeds)" in (tmp_path / "t.md").read_text()


def test_an_unknown_row_label_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mr = _make_results()
    folder = _tables_dir(tmp_path, [{"label": "POP", "set": []}])
    with pytest.raises(SystemExit):
        mr.main(["--tables", str(folder), "--only", "tiny", "--rows", "PoP", "--no-train",
                 "--store", str(tmp_path / "s"), "--out", str(tmp_path / "t.md")])
    err = capsys.readouterr().err
    assert "no row labelled ['PoP']" in err and "'POP'" in err
