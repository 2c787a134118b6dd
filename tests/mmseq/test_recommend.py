"""mmseq/recommend.py, mmseq/export.py and ``mmseq recommend``: top-k against direct scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import torch

import mmseq
from mmseq.cli import main
from mmseq.errors import ConfigError, DataError
from mmseq.recommend import gather_rows, lookup_ids
from mmseq.runs import load_trained_run


def direct_top_k(run_dir: Path, k: int, exclude: str) -> tuple[dict, dict]:
    """Top-k by raw id from a plain ``score_all`` of every user, masked by a Python set."""
    loaded = load_trained_run(run_dir)
    split, data = loaded.prepared.split, loaded.prepared.data
    table = split.all_interactions() if exclude == "all" else split.history("test")
    seen: dict[int, set[int]] = {}
    for u, i in zip(table.user.tolist(), table.item.tolist()):
        seen.setdefault(u, set()).add(i)
    with torch.no_grad():
        scores = loaded.model.score_all(torch.arange(data.num_users), loaded.test_inputs).numpy()
    items, values = {}, {}
    for u in range(data.num_users):
        row = scores[u].astype(np.float64)
        row[list(seen.get(u, ()))] = -np.inf
        order = np.argsort(-row, kind="stable")[:k]
        order = order[np.isfinite(row[order])]
        items[str(data.user_ids[u])] = [str(data.item_ids[i]) for i in order]
        values[str(data.user_ids[u])] = row[order]
    return items, values


def _same_ranking(got: list[str], got_scores, want: list[str], want_scores) -> None:
    # Equal scores may come in either order; the scores by rank and the item sets must agree.
    np.testing.assert_allclose(np.asarray(got_scores, dtype=np.float64), want_scores, rtol=1e-5)
    assert len(got) == len(want) and set(got) == set(want)


@pytest.mark.parametrize("exclude", ["all", "eval"])
def test_api_recommend_matches_direct_scoring(demo_run: Path, exclude: str) -> None:
    run = mmseq.load_run(demo_run)
    want, want_scores = direct_top_k(demo_run, 5, exclude)
    users = [str(u) for u in run.user_ids[[3, 0, 17]]]
    recs = run.recommend(users, k=5, exclude=exclude)
    assert recs.users.tolist() == users  # request order
    for user in users:
        got = recs.for_user(user)
        _same_ranking([i for i, _ in got], [s for _, s in got], want[user], want_scores[user])
    # Every user, in small batches, gives the same as one batch.
    every = list(run.iter_recommend(None, 5, exclude=exclude, batch_size=7))
    assert [len(b) for b in every] == [7, 7, 7, 7, 7, 5]
    for batch in every:
        for user in batch.users:
            got = batch.for_user(user)
            _same_ranking([i for i, _ in got], [s for _, s in got], want[user], want_scores[user])


def test_api_score_metrics_and_explain(demo_run: Path) -> None:
    run = mmseq.load_run(demo_run)
    loaded = load_trained_run(demo_run)
    with torch.no_grad():
        full = loaded.model.score_all(torch.tensor([2, 5]), loaded.test_inputs).numpy()
    got = run.score([run.user_ids[2], run.user_ids[5]], [run.item_ids[4], run.item_ids[0]])
    np.testing.assert_allclose(got, full[:, [4, 0]], rtol=1e-6)
    saved = json.loads((demo_run / "results.json").read_text())
    assert run.metrics == saved["metrics"] and "ndcg@10" in run.metrics
    user = str(run.user_ids[0])
    item = run.recommend(user, k=1).for_user(user)[0][0]
    expl = run.explain(user, item)
    assert expl.user_id == user and expl.item_id == item and expl.ranked_by == "model"
    assert expl.score == pytest.approx(float(run.score(user, item)[0, 0]))
    assert all(
        link.label.split("_")[1] in ("strings", "cable", "tuner", "case") for link in expl.links
    )


def test_unknown_ids_name_the_id_and_close_matches(demo_run: Path) -> None:
    run = mmseq.load_run(demo_run)
    with pytest.raises(
        DataError, match=r"Unknown user id 'u0001' \(40 users.*; did you mean \['u000"
    ):
        run.recommend(["u00000", "u0001"])
    with pytest.raises(DataError, match=r"Unknown item id 'nope'"):
        run.score("u00000", ["i00000", "nope"])
    with pytest.raises(ConfigError, match="'k'"):
        run.recommend("u00000", k=0)


def test_lookup_and_gather_rows_by_hand() -> None:
    ids = np.array(["b", "a", "c"], dtype=object)
    assert lookup_ids(ids, ["c", "b", "c"], "user").tolist() == [2, 0, 2]
    indptr = torch.tensor([0, 2, 2, 5])  # row 0: {7, 8}; row 1: {}; row 2: {1, 2, 3}
    indices = torch.tensor([7, 8, 1, 2, 3])
    sub_indptr, sub_indices = gather_rows(indptr, indices, torch.tensor([2, 1, 0, 2]))
    assert sub_indptr.tolist() == [0, 3, 3, 5, 8]
    assert sub_indices.tolist() == [1, 2, 3, 7, 8, 1, 2, 3]


def test_cli_recommend_user_and_all(demo_run: Path, tmp_path: Path, capsys) -> None:
    want, _ = direct_top_k(demo_run, 4, "all")
    assert (
        main(
            [
                "recommend",
                "--run",
                str(demo_run),
                "--user",
                "u00003",
                "-k",
                "4",
                "--explain",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out[0]["user"] == "u00003"
    assert {r["item"] for r in out[0]["items"]} == set(want["u00003"])
    assert all("links" in r["explanation"] for r in out[0]["items"])
    assert (
        main(["recommend", "--run", str(demo_run), "--user", "u00003", "-k", "4", "--explain"]) == 0
    )
    text = capsys.readouterr().out
    assert text.startswith("user u00003: top 4") and "topics: " in text

    for suffix in ("parquet", "csv"):
        path = tmp_path / f"recs.{suffix}"
        assert (
            main(
                [
                    "recommend",
                    "--run",
                    str(demo_run),
                    "--all",
                    "--out",
                    str(path),
                    "-k",
                    "4",
                    "--batch-size",
                    "16",
                ]
            )
            == 0
        )
        table = pq.read_table(path) if suffix == "parquet" else pcsv.read_csv(path)
        cols = table.to_pydict()
        assert table.column_names == ["user", "rank", "item", "score"]
        assert len(set(cols["user"])) == len(want)
        for user, items in want.items():
            got = [str(i) for u, i in zip(cols["user"], cols["item"]) if str(u) == user]
            assert set(got) == set(items), user
        assert "recommendations for 40 users" in capsys.readouterr().out

    assert main(["recommend", "--run", str(demo_run), "--user", "nobody"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Unknown user id 'nobody'" in err
    assert main(["recommend", "--run", str(demo_run), "--all"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["recommend", "--run", str(demo_run), "--all", "--out", "x.txt"]) == 2
    assert main(["recommend", "--run", str(tmp_path / "missing"), "--user", "u1"]) == 2


def test_import_mmseq_stays_light_and_the_api_loads_lazily(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys, mmseq\n"
        "assert 'torch' not in sys.modules and 'mmseq.api' not in sys.modules\n"
        "assert 'load_run' in dir(mmseq) and 'run_experiment' in dir(mmseq)\n"
        "try:\n    mmseq.nope\nexcept AttributeError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "has no attribute 'nope'" in out.stdout
    import mmseq.api
    import mmseq.recommend

    assert mmseq.load_run is mmseq.recommend.load_run
    assert mmseq.run_experiment is mmseq.api.run_experiment


def test_run_experiment_overrides_dotted_and_nested(tmp_path: Path) -> None:
    from mmseq.api import override_strings, resolve_config
    from mmseq.config import load_experiment

    assert override_strings({"train.epochs": 3, "model": {"params": {"beta": 0.5}}}) == [
        "train.epochs=3",
        "model.params.beta=0.5",
    ]
    demo = Path(__file__).resolve().parents[2] / "configs" / "experiments" / "demo_sdmtmp.yaml"
    cfg = resolve_config(
        demo,
        **{"train.epochs": 3},
        model={"params": {"beta": 0.5}},
        seed=4,
        output_dir=tmp_path / "runs",
    )
    assert cfg.train.epochs == 3 and cfg.seed == 4 and cfg.output_dir == str(tmp_path / "runs")
    assert cfg.model.params["beta"] == 0.5 and cfg.model.params["gamma1"] == 0.4  # merged
    base = load_experiment(demo)
    same = resolve_config(base, train={"epochs": 3})  # a config object, nested override
    assert same.train.epochs == 3 and same.data_root == base.data_root
    assert same.train.lr == base.train.lr and same.model == base.model
    assert resolve_config(base) is base
    with pytest.raises(ConfigError, match="trian"):
        resolve_config(demo, **{"trian.epochs": 3})


def test_a_run_without_topics_recommends_but_does_not_explain(
    demo_run: Path, tmp_path: Path, capsys
) -> None:
    from mmseq.config import ExperimentConfig, from_dict

    cfg = from_dict(ExperimentConfig, json.loads((demo_run / "results.json").read_text())["config"])
    results = mmseq.run_experiment(
        cfg,
        run_dir=tmp_path / "bprmf",
        resume=False,
        model={"name": "bprmf", "params": {}},
        graphs=[{"builder": "interaction_graph"}],  # no topic hypergraphs (and no bundle)
    )
    run = mmseq.load_run(results["run_dir"])
    assert not run.has_topics and len(run.recommend("u00003", k=3).for_user("u00003")) == 3
    assert main(["recommend", "--run", results["run_dir"], "--user", "u00003", "--explain"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--explain needs topic hypergraphs" in err and "\n" not in err
    assert main(["report", "--run", results["run_dir"]]) == 0
    text = (Path(results["run_dir"]) / "report.html").read_text()
    assert 'id="recommendations"' in text and 'id="topics"' not in text
