"""mmseq/explain.py and ``mmseq explain``: shared topics by hand, label sources, CLI with a run."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import yaml

from graphs.compose import build_all
from mmseq.cli import main
from mmseq.config import load_experiment
from mmseq.data.prepare import graph_bundle_file, prepare_data
from mmseq.data.schema import Interactions, TopicAssignments
from mmseq.errors import ArtifactError, ConfigError, DataError
from mmseq.explain import explain_pair, format_explanation, resolve_id, shared_topics, topic_labels
from mmseq.io import write_checksum
from mmseq.train.experiment import run_experiment

SPECS = [{"builder": "rating_graph"},
         {"builder": "user_topic_hypergraph", "params": {"weights": "count"}},
         {"builder": "item_topic_hypergraph", "params": {"weights": "count"}}]


def pair_topics(num_users: int = 3, num_items: int = 4) -> TopicAssignments:
    """Hand-set sentence counts (k = 4 topics); topic 3 has nobody.

    user 0: t0 x2, t1 x1, t2 x3      item 1: t0 x1, t1 x4, t2 x1   (user 2, items 2-3: none)
    so user 0 / item 1 share t0 (2*1 = 2), t1 (1*4 = 4), t2 (3*1 = 3): order t1, t2, t0.
    """
    user_topic = np.zeros((num_users, 4), dtype=np.float32)
    user_topic[0, :3] = [2, 1, 3]
    user_topic[1, 0] = 1
    item_topic = np.zeros((num_items, 4), dtype=np.float32)
    item_topic[1, :3] = [1, 4, 1]
    item_topic[0, 0] = 5
    emb = np.eye(4, 8, dtype=np.float32)
    return TopicAssignments(emb, sp.csr_matrix(user_topic), sp.csr_matrix(item_topic),
                            ("0_strings_tone", "1_cable_hum", "2_tuner_clip", "3_case"),
                            (("strings", "tone"), ("cable", "hum"), ("tuner",), ("case",)),
                            meta={"cache_key": "abc123"})


def tiny_train() -> Interactions:
    user = np.array([0, 0, 1, 1, 2, 2], dtype=np.int64)
    item = np.array([0, 1, 1, 2, 2, 3], dtype=np.int64)
    return Interactions(user=user, item=item, rating=np.ones(6, dtype=np.float32),
                        timestamp=np.arange(6, dtype=np.int64),
                        user_ids=np.array(["alice", "bob", "carol"], dtype=object),
                        item_ids=np.array(["A", "B", "C", "D"], dtype=object))


@pytest.fixture(scope="module")
def bundle():
    return build_all(SPECS, tiny_train(), artifacts={"topics": pair_topics()}, cache_dir=None)


def test_shared_topics_ranked_by_product_of_counts(bundle) -> None:
    topics, uw, iw = shared_topics(bundle["user_topic_hypergraph"],
                                   bundle["item_topic_hypergraph"], 0, 1)
    assert topics.tolist() == [1, 2, 0]
    assert uw.tolist() == [1, 3, 2] and iw.tolist() == [4, 1, 1]


def test_no_shared_topic_gives_an_empty_explanation(bundle) -> None:
    expl = explain_pair(bundle, 2, 2)  # user 2 and item 2 are in no topic
    assert expl.links == () and expl.user_topics == 0 and expl.item_topics == 0
    assert "no shared topic" in format_explanation(expl)


def test_labels_from_the_topic_cache_then_fallback(bundle, tmp_path: Path) -> None:
    full = bundle["user_topic_hypergraph"]
    assert full.meta["topic_labels"][1] == "1_cable_hum"  # the builder stores labels ...
    # ... and a part without them (older bundles) falls back to the topic cache, then to numbers.
    meta = {k: v for k, v in full.meta.items() if k not in ("topic_labels", "topic_keywords")}
    part = dataclasses.replace(full, meta=meta)
    labels, _, source = topic_labels(part, tmp_path)
    assert labels == ["topic 0", "topic 1", "topic 2", "topic 3"] and source.startswith("none")
    cache = tmp_path / "topics" / "topics" / "abc123.npz"  # the topic stage's cache layout
    cache.parent.mkdir(parents=True)
    topics = pair_topics()
    with open(cache, "wb") as fh:
        np.savez(fh, labels=np.asarray(topics.labels, dtype=np.str_),
                 keywords_json=np.asarray(json.dumps([list(k) for k in topics.keywords])))
    write_checksum(cache)
    labels, keywords, source = topic_labels(part, tmp_path)
    assert labels[1] == "1_cable_hum" and keywords[1] == ("cable", "hum")
    assert source == str(cache)
    expl = explain_pair(bundle, 0, 1, artifacts_dir=tmp_path, top=2)
    assert [link.label for link in expl.links] == ["1_cable_hum", "2_tuner_clip"]
    assert expl.links[0].strength == 4.0
    text = format_explanation(expl)
    assert "1_cable_hum" in text and "user 1 x item 4 = 4" in text


def test_labels_stored_in_part_meta_take_precedence(bundle) -> None:
    part = bundle["user_topic_hypergraph"]
    meta = {**dict(part.meta), "topic_labels": ["a", "b", "c", "d"],
            "topic_keywords": [["x"], ["y"], ["z"], ["w"]]}
    labels, keywords, source = topic_labels(dataclasses.replace(part, meta=meta), None)
    assert labels == ["a", "b", "c", "d"] and keywords[2] == ("z",) and source.endswith(".meta")


def test_rank_by_model_affinity(bundle) -> None:
    affinity = (torch.tensor([0.9, -0.5, 0.1, 0.0]), torch.tensor([0.7, -0.3, 0.1, 0.0]))
    expl = explain_pair(bundle, 0, 1, affinity=affinity, rank_by="model")
    assert [link.topic for link in expl.links] == [0, 2, 1]
    assert expl.links[0].model_affinity == pytest.approx(0.8)
    with pytest.raises(ConfigError, match="--run"):
        explain_pair(bundle, 0, 1, rank_by="model")


def test_missing_hypergraphs_and_unknown_ids_are_clear_errors(bundle) -> None:
    with pytest.raises(ArtifactError, match="user_topic_hypergraph.*build_graphs"):
        explain_pair({"rating_graph": bundle["rating_graph"]}, 0, 1)
    ids = np.array(["alice", "bob", "7"], dtype=object)
    assert resolve_id(ids, "bob", "user") == 1
    assert resolve_id(ids, "7", "user") == 2  # a raw id wins over an index
    assert resolve_id(ids, "0", "user") == 0
    with pytest.raises(DataError, match="did you mean.*alice"):
        resolve_id(ids, "alicia", "user")


def _synthetic_config(tmp_path: Path) -> Path:
    cfg = {
        "data": {"path": "synthetic", "synthetic": {"num_users": 40, "num_items": 30,
                                                    "with_text": False, "seed": 1}},
        "graphs": SPECS,
        "model": {"name": "sdmtmp", "params": {"embedding_dim": 8, "topic_feature_dim": 8,
                                                "hyperedge_weights": "count"}},
        "train": {"epochs": 1, "progress": False, "device": "cpu", "threads": 1},
        "artifacts_dir": str(tmp_path / "artifacts"),
        "output_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _fit_topics(fit: Interactions, k: int = 4) -> TopicAssignments:
    """Item i in topic i % k (count 1 per training row); users inherit their items' topics."""
    rows = sp.csr_matrix((np.ones(len(fit)), (np.arange(len(fit)), fit.item % k)),
                         shape=(len(fit), k))
    by_user = sp.csr_matrix((np.ones(len(fit)), (fit.user, np.arange(len(fit)))),
                            shape=(fit.num_users, len(fit)))
    by_item = sp.csr_matrix((np.ones(len(fit)), (fit.item, np.arange(len(fit)))),
                            shape=(fit.num_items, len(fit)))
    return TopicAssignments(np.eye(k, 8, dtype=np.float32), (by_user @ rows).tocsr(),
                            (by_item @ rows).tocsr(), tuple(f"{g}_t" for g in range(k)))


def test_cli_explain_with_and_without_a_trained_run(tmp_path: Path, capsys) -> None:
    config = _synthetic_config(tmp_path)
    cfg = load_experiment(config)
    split = prepare_data(cfg).split
    given = {"topics": _fit_topics(split.fit)}
    bundle = build_all(SPECS, split.fit, artifacts=given, cache_dir=None)
    bundle.save(graph_bundle_file(cfg, split))
    user = int(split.fit.user[0])
    item = int(split.fit.item[0])  # the user's own item: they share its topic at least
    uid, iid = str(split.fit.user_ids[user]), str(split.fit.item_ids[item])

    assert main(["explain", "--config", str(config), "--user", uid, "--item", iid, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["user_id"] == uid and out["links"] and out["score"] is None
    assert out["links"][0]["topic"] == item % 4

    run_dir = tmp_path / "run"
    run_experiment(cfg, run_dir=run_dir, resume=False)
    assert main(["explain", "--config", str(config), "--user", uid, "--item", iid,
                 "--run", str(run_dir), "--rank-by", "model"]) == 0
    text = capsys.readouterr().out
    assert "model score" in text and "ranked by model" in text
    assert re.search(r"model [+-]\d\.\d{3}", text), text

    assert main(["explain", "--config", str(config), "--user", "nobody", "--item", iid]) == 2
    assert "Unknown user 'nobody'" in capsys.readouterr().err
