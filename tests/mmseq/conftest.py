"""A tiny trained demo run (SD-MTMP on the demo config, shrunk), shared by the run-use tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from graphs.compose import build_all
from mmseq.config import load_experiment
from mmseq.data.prepare import graph_bundle_file, prepare_data
from mmseq.data.schema import Interactions, TopicAssignments
from mmseq.train.experiment import run_experiment

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "experiments" / "demo_sdmtmp.yaml"


def hand_topics(fit: Interactions, k: int = 4) -> TopicAssignments:
    """Item i in topic i % k (one sentence per training row); users inherit their items' topics.

    Stands in for BERTopic so that the demo trains in seconds.
    """
    rows = sp.csr_matrix(
        (np.ones(len(fit)), (np.arange(len(fit)), fit.item % k)), shape=(len(fit), k)
    )
    by_user = sp.csr_matrix(
        (np.ones(len(fit)), (fit.user, np.arange(len(fit)))), shape=(fit.num_users, len(fit))
    )
    by_item = sp.csr_matrix(
        (np.ones(len(fit)), (fit.item, np.arange(len(fit)))), shape=(fit.num_items, len(fit))
    )
    words = (("strings", "tone"), ("cable", "hum"), ("tuner", "clip"), ("case", "strap"))
    return TopicAssignments(
        np.eye(k, 8, dtype=np.float32),
        (by_user @ rows).tocsr(),
        (by_item @ rows).tocsr(),
        tuple(f"{g}_{words[g][0]}" for g in range(k)),
        words[:k],
        meta={"topic_sizes": [10, 8, 6, 4][:k]},
    )


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``configs/experiments/demo_sdmtmp.yaml`` on 40 users x 30 items, 3 epochs; its run dir."""
    root = tmp_path_factory.mktemp("demo")
    overrides = {
        "data": {
            "path": "synthetic",
            "synthetic": {"num_users": 40, "num_items": 30, "with_text": False, "seed": 1},
        },
        "train": {"epochs": 3, "progress": False, "device": "cpu", "threads": 1},
        "artifacts_dir": str(root / "artifacts"),
        "output_dir": str(root / "runs"),
    }
    mapping = yaml.safe_load(DEMO.read_text())
    mapping["model"]["params"].update(embedding_dim=8, topic_feature_dim=8)
    for key, value in overrides.items():
        mapping[key] = {**mapping.get(key, {}), **value} if isinstance(value, dict) else value
    config = root / "demo_sdmtmp.yaml"
    config.write_text(yaml.safe_dump(mapping))
    cfg = load_experiment(config)
    split = prepare_data(cfg).split
    topics = hand_topics(split.fit)
    bundle = build_all(list(cfg.graphs), split.fit, artifacts={"topics": topics}, cache_dir=None)
    bundle.save(graph_bundle_file(cfg, split))
    run_dir = root / "run"
    run_experiment(cfg, run_dir=run_dir, resume=False)
    return run_dir
