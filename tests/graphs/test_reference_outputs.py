"""The stage interface changed how builders are called, not what they build.

The digests below were computed with the builders as they were before the artifact-stage
interface (commit be1e303, ``build(train, *, topics, config)``) on the same inputs, by this very
``_digest``; the builders must still emit array-identical parts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from graph_test_data import synthetic_log, topics_from

from graphs import build_all
from mmseq.config import load_experiment
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.prepare import prepare_data

REPO = Path(__file__).resolve().parents[2]

REFERENCE = {
    "synthetic_log/interaction_graph": "a2d6eeee252c4489",
    "synthetic_log/item_attribute_hypergraph": "2f1ded07298e87e9",
    "synthetic_log/item_cooccurrence": "17703b6a1e51fd4b",
    "synthetic_log/item_topic_hypergraph": "55049dfd09d10e05",
    "synthetic_log/rating_graph": "5e5c6a29334f8988",
    "synthetic_log/user_topic_hypergraph": "0636de4c5ff6f80a",
    "demo/interaction_graph": "0ddb9c940c86d25f",
    "demo/item_cooccurrence": "6b710e85652e6682",
    "demo/item_topic_hypergraph": "d6ad9f15c6cb1a7f",
    "demo/rating_graph": "c06844af1a65cebc",
    "demo/user_topic_hypergraph": "c85052211a1b8019",
}


def _digest(part: GraphPart) -> str:
    h = hashlib.sha256()
    tensors = (
        part.edge_index,
        part.edge_weight,
        *[part.features[k] for k in sorted(part.features)],
    )
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())
    h.update(repr(tuple(part.shape)).encode())
    return h.hexdigest()[:16]


@pytest.fixture(scope="module")
def fits() -> dict:
    demo = load_experiment(REPO / "configs/experiments/demo.yaml")
    return {"synthetic_log": synthetic_log(), "demo": prepare_data(demo).split.fit}


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_builders_emit_the_reference_arrays(key: str, fits: dict) -> None:
    label, name = key.split("/")
    train = fits[label]
    artifacts = {"topics": topics_from(train, k=5)}
    part = build_all([{"builder": name}], train, artifacts=artifacts, cache_dir=None)[name]
    assert _digest(part) == REFERENCE[key]
