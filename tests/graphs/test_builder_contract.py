"""Conformance suite over every registered graph builder (house style 24).

Each builder in GRAPH_BUILDERS gets: index bounds and layout, weight sign and finiteness,
provenance, determinism (also under a shuffled row order), and no validation/test leakage
through build_all on split-like fit tables.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from graph_test_data import chronological_fit, stand_in_artifacts, synthetic_log

from graphs import GRAPH_BUILDERS, build_all
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions

BUILDERS = GRAPH_BUILDERS.names()

# Non-default params where the defaults make a 9-item graph uninformative: k = 10 neighbours of
# 9 items is the complete graph, which no change of the fit rows could alter (the control below).
PARAMS = {"item_semantic_graph": {"k": 3}}


def _build(name: str, train: Interactions) -> GraphPart:
    # k = num_items topics (each item its own topic) so that memberships vary between users.
    artifacts = stand_in_artifacts(train, k=train.num_items)
    spec = {"builder": name, "params": PARAMS.get(name, {})}
    return build_all([spec], train, artifacts=artifacts, cache_dir=None)[name]


def _assert_same(a: GraphPart, b: GraphPart) -> None:
    assert a.shape == b.shape and a.kind == b.kind
    assert torch.equal(a.edge_index, b.edge_index)
    assert torch.equal(a.edge_weight, b.edge_weight)
    assert set(a.features) == set(b.features)
    for key in a.features:
        assert torch.equal(a.features[key], b.features[key])


def test_the_expected_builders_are_registered() -> None:
    assert {
        "interaction_graph",
        "rating_graph",
        "user_topic_hypergraph",
        "item_topic_hypergraph",
        "item_cooccurrence",
        "item_attribute_hypergraph",
        "item_semantic_graph",
        "item_text_embedding",
    } <= set(BUILDERS)


@pytest.mark.parametrize("name", BUILDERS)
def test_bounds_layout_weights_and_provenance(name: str) -> None:
    train = synthetic_log()
    part = _build(name, train)
    assert part.name == name and part.kind in ("graph", "hypergraph")
    assert part.edge_index.dtype == torch.int64 and part.edge_weight.dtype == torch.float32
    if GRAPH_BUILDERS.get(name).features_only:  # an edgeless part: its features are the content
        assert part.nnz == 0 and part.features
        for value in part.features.values():
            assert value.dtype == torch.float32 and bool(torch.isfinite(value).all())
            assert value.shape[0] == part.shape[0]  # one row per node
    else:
        assert part.nnz > 0
    if part.nnz:
        assert int(part.edge_index[0].min()) >= 0
        assert int(part.edge_index[0].max()) < part.shape[0]
        assert int(part.edge_index[1].min()) >= 0
        assert int(part.edge_index[1].max()) < part.shape[1]
    assert torch.isfinite(part.edge_weight).all() and bool((part.edge_weight >= 0).all())
    offsets = sorted(dict(part.node_offsets).values())
    assert offsets[0] == 0 and offsets[-1] < part.shape[0]
    if part.kind == "graph":
        dense = torch.zeros(part.shape)
        dense[part.edge_index[0], part.edge_index[1]] = part.edge_weight
        if not GRAPH_BUILDERS.get(name).directed:  # a builder that says so may be directed
            torch.testing.assert_close(dense, dense.T)
        assert not bool((part.edge_index[0] == part.edge_index[1]).any())  # no self loops
    key = part.edge_index[0] * part.shape[1] + part.edge_index[1]
    assert torch.all(key[1:] > key[:-1]), "edges must be sorted and unique"
    for field in ("builder", "settings", "train_hash", "cache_key", "shape", "nnz"):
        assert field in part.meta
    assert part.meta["train_hash"] == train.content_hash()


@pytest.mark.parametrize("name", BUILDERS)
def test_deterministic_and_independent_of_row_order(name: str) -> None:
    train = synthetic_log()
    _assert_same(_build(name, train), _build(name, train))
    shuffled = train.select(np.random.default_rng(1).permutation(len(train)))
    _assert_same(_build(name, train), _build(name, shuffled))


@pytest.mark.parametrize("name", BUILDERS)
def test_no_validation_or_test_leakage(name: str) -> None:
    data = synthetic_log()
    fit_mask = chronological_fit(data)
    # Change EVERY held-out row (item, rating, later time) and keep the fit rows as they are.
    held = ~fit_mask
    rng = np.random.default_rng(7)
    item = data.item.copy()
    item[held] = rng.integers(0, data.num_items, held.sum())
    rating = data.rating.copy()
    rating[held] = 6.0 - rating[held]
    timestamp = data.timestamp.copy()
    timestamp[held] += 10_000
    other = dataclasses.replace(data, item=item, rating=rating, timestamp=timestamp)
    assert np.array_equal(chronological_fit(other), fit_mask)

    fit_a, fit_b = data.select(fit_mask), other.select(fit_mask)
    _assert_same(_build(name, fit_a), _build(name, fit_b))
    if name != "item_attribute_hypergraph":  # attributes describe items, not interactions
        # Control, so that the test can fail: changing the FIT rows does change the graph.
        changed = dataclasses.replace(fit_a, item=(fit_a.item + 1) % data.num_items)
        a, c = _build(name, fit_a), _build(name, changed)
        assert not (
            torch.equal(a.edge_index, c.edge_index)
            and torch.equal(a.edge_weight, c.edge_weight)
            and all(torch.equal(a.features[k], c.features[k]) for k in a.features)
        )
    if name in ("interaction_graph", "rating_graph"):
        # Every edge is a fit pair: no held-out (user, item) reaches the graph.
        part = _build(name, fit_a)
        m = data.num_users
        src, dst = part.edge_index
        users = src[src < m].numpy()
        items = (dst[src < m] - m).numpy()
        fit_pairs = set(zip(fit_a.user.tolist(), fit_a.item.tolist()))
        assert set(zip(users.tolist(), items.tolist())) == fit_pairs
