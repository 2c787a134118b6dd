"""Leakage, end to end: held-out rows cannot change anything a model trains on.

For each protocol, every validation and test interaction gets a different review text, rating and
timestamp (moved later, so the split keeps the same rows). Then the training side is rebuilt:
the topic stage (cheap injected encoder and reducer), every registered graph builder, and the
fit-stage ``ModelInputs`` (sequences, ratings, times, graphs). Each must be byte-identical.
Builder-level and topic-level versions of this check live in
``tests/graphs/test_builder_contract.py::test_no_validation_or_test_leakage`` and
``tests/topics/test_leakage.py::test_valid_and_test_text_never_reaches_the_topics``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA

from graphs import GRAPH_BUILDERS
from graphs.compose import build_all
from mmseq.data.inputs import build_model_inputs
from mmseq.data.schema import Interactions
from mmseq.data.split import PROTOCOLS, split_interactions
from mmseq.data.synthetic import SyntheticConfig, generate_synthetic
from topics import TopicConfig, TopicExtractor

_spec = importlib.util.spec_from_file_location(
    "topic_helpers_for_reliability", Path(__file__).parents[1] / "topics" / "topic_helpers.py"
)
topic_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(topic_helpers)


class HashEncoder(topic_helpers.KeywordEncoder):
    """Keyword vectors over the synthetic data's topic words: cheap, deterministic, offline."""

    @property
    def encoder_id(self) -> str:
        return "reliability-hash-v1"


@pytest.fixture(scope="module")
def data() -> Interactions:
    base = generate_synthetic(SyntheticConfig(num_users=40, num_items=30, num_topics=4, seed=5))
    rng = np.random.default_rng(0)
    attrs = sp.csr_matrix((rng.random((base.num_items, 6)) < 0.3).astype(np.float32))
    return dataclasses.replace(base, item_attributes=attrs)


def held_out_rows(data: Interactions, protocol: str) -> np.ndarray:
    """Row indices (into ``data``) of the valid and test parts: the split run on row numbers."""
    marked = dataclasses.replace(data, rating=np.arange(len(data), dtype=np.float32))
    split = split_interactions(marked, protocol)
    return np.sort(np.concatenate([split.valid.rating, split.test.rating]).astype(np.int64))


def perturb(data: Interactions, rows: np.ndarray) -> Interactions:
    rating = data.rating.copy()
    rating[rows] = 6.0 - rating[rows]  # 1 <-> 5, 2 <-> 4
    rating[rows[rating[rows] == 3.0]] = 1.0
    timestamp = data.timestamp.copy()
    timestamp[rows] += 10 * (int(data.timestamp.max()) - int(data.timestamp.min()) + 1)
    review = data.review.copy()
    review[rows] = "Leaked cable sentence about the tuner strings. Another leaked strings line."
    summary = None if data.summary is None else data.summary.copy()
    if summary is not None:
        summary[rows] = "leaked"
    return dataclasses.replace(data, rating=rating, timestamp=timestamp, review=review,
                               summary=summary)


def training_side(data: Interactions, protocol: str, cache: Path) -> dict[str, bytes]:
    """Every byte the training stage derives from ``data`` (topics, graphs, fit inputs)."""
    split = split_interactions(data, protocol)
    extractor = TopicExtractor(TopicConfig(min_topic_size=5), encoder=HashEncoder(),
                               reducer=PCA(n_components=3, random_state=0, svd_solver="full"),
                               progress=False)
    topics = extractor.fit(split.fit, cache_dir=None)
    specs = [{"builder": name} for name in GRAPH_BUILDERS.names()]
    bundle = build_all(specs, split.fit, artifacts={"topics": topics}, cache_dir=cache)
    inputs = build_model_inputs(split.fit, max_len=10, graphs=dict(bundle.parts))
    out: dict[str, bytes] = {}
    out["topics.topic_embeddings"] = np.ascontiguousarray(topics.topic_embeddings).tobytes()
    for name in ("user_topic", "item_topic"):
        mat = sp.csr_matrix(getattr(topics, name))
        out[f"topics.{name}"] = b"|".join(a.tobytes() for a in (mat.data, mat.indices, mat.indptr))
    out["topics.labels"] = "\x1f".join(topics.labels).encode()
    for f in dataclasses.fields(inputs):
        value = getattr(inputs, f.name)
        if f.name in ("graphs", "extras"):
            continue
        out[f"inputs.{f.name}"] = value.numpy().tobytes() if hasattr(value, "numpy") else \
            str(value).encode()
    for name, part in inputs.graphs.items():
        out[f"graph.{name}"] = b"|".join(
            [part.edge_index.numpy().tobytes(), part.edge_weight.numpy().tobytes(),
             str(part.shape).encode()]
            + ([] if part.hyperedge_weight is None else [part.hyperedge_weight.numpy().tobytes()])
            + [t.numpy().tobytes() for _, t in sorted(part.features.items())])
    return out


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_held_out_text_ratings_and_times_never_reach_training(data, protocol,
                                                              tmp_path: Path) -> None:
    rows = held_out_rows(data, protocol)
    assert len(rows) >= 2 * 40 - 1  # at least one valid and one test row per (kept) user
    changed = perturb(data, rows)
    # The perturbation is real: every held-out row differs in text, rating and time...
    assert np.all(changed.review[rows] != data.review[rows])
    assert np.all(changed.rating[rows] != data.rating[rows])
    assert np.all(changed.timestamp[rows] != data.timestamp[rows])
    # ... and it keeps the split: the same rows are held out.
    np.testing.assert_array_equal(held_out_rows(changed, protocol), rows)

    before = training_side(data, protocol, tmp_path / "a")
    after = training_side(changed, protocol, tmp_path / "b")
    assert set(before) == set(after)
    assert {f"graph.{n}" for n in GRAPH_BUILDERS.names()} <= set(before)  # all builders ran
    differing = [k for k in before if before[k] != after[k]]
    assert differing == []


def test_the_check_can_fail_when_a_fit_row_changes(data, tmp_path: Path) -> None:
    """Control: the same comparison notices a change to ONE fit row's rating."""
    protocol = "loo-full"
    rows = held_out_rows(data, protocol)
    fit_row = int(np.setdiff1d(np.arange(len(data)), rows)[0])
    rating = data.rating.copy()
    rating[fit_row] = 6.0 - rating[fit_row] if rating[fit_row] != 3.0 else 1.0
    before = training_side(data, protocol, tmp_path / "a")
    after = training_side(dataclasses.replace(data, rating=rating), protocol, tmp_path / "b")
    differing = {k for k in before if before[k] != after[k]}
    assert {"inputs.rating", "inputs.seq_ratings", "graph.rating_graph"} <= differing
