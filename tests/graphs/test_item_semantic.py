"""graphs/item_semantic.py: the kNN graph worked out by hand, options, isolated items, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphs.item_semantic import ItemSemanticGraphBuilder, ItemSemanticGraphConfig, knn_edges
from mmseq.data.schema import Interactions
from mmseq.errors import ArtifactError, DataError

# 4 items (tiny_interactions has 4); item 3 has no text. Cosines: s01 = 0.8, s02 = 0.6, s12 = 0.96.
FEATURES = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 0.0]], dtype=np.float32)


def _dense(part) -> torch.Tensor:
    out = torch.zeros(part.shape)
    out[part.edge_index[0], part.edge_index[1]] = part.edge_weight
    return out


def test_knn_edges_by_hand() -> None:
    src, dst, cos, dropped = knn_edges(FEATURES, k=1)
    # top-1: 0 -> 1 (0.8), 1 -> 2 (0.96), 2 -> 1 (0.96); item 3 (no text) has none.
    assert list(zip(src.tolist(), dst.tolist())) == [(0, 1), (1, 2), (2, 1)]
    np.testing.assert_allclose(cos, [0.8, 0.96, 0.96], rtol=1e-6)
    src, dst, cos, dropped = knn_edges(FEATURES, k=5)  # k capped at the 2 other text items
    assert sorted(zip(src.tolist(), dst.tolist())) == [
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 2),
        (2, 0),
        (2, 1),
    ]
    assert dropped == 0
    # Opposite vectors: cosine -1 is never an edge, and is counted.
    src, _, _, dropped = knn_edges(np.array([[1.0, 0.0], [-1.0, 0.0]]), k=1)
    assert len(src) == 0 and dropped == 2


def test_directed_binary_graph_by_hand(tiny_interactions: Interactions) -> None:
    part = ItemSemanticGraphBuilder().build(
        tiny_interactions, {"item_text": FEATURES}, ItemSemanticGraphConfig(k=1)
    )
    # A: 0->1, 1->2, 2->1 (binary); row degrees d = [1, 1, 1, 0]; L_st = 1 / sqrt(d_s d_t) = 1.
    expected = torch.zeros(4, 4)
    expected[0, 1] = expected[1, 2] = expected[2, 1] = 1.0
    torch.testing.assert_close(_dense(part), expected)
    assert part.meta["items_without_text"] == 1 and part.meta["directed"] is True


def test_symmetrized_cosine_graph_by_hand(tiny_interactions: Interactions) -> None:
    cfg = ItemSemanticGraphConfig(k=1, symmetrize=True, weights="cosine")
    dense = _dense(
        ItemSemanticGraphBuilder().build(tiny_interactions, {"item_text": FEATURES}, cfg)
    )
    # max(A, A^T): 0-1 at 0.8, 1-2 at 0.96; degrees d = [0.8, 1.76, 0.96, 0].
    d = torch.tensor([0.8, 1.76, 0.96])
    expected = torch.zeros(4, 4)
    expected[0, 1] = expected[1, 0] = 0.8 / (d[0] * d[1]).sqrt()
    expected[1, 2] = expected[2, 1] = 0.96 / (d[1] * d[2]).sqrt()
    torch.testing.assert_close(dense, expected)


def test_errors(tiny_interactions: Interactions) -> None:
    with pytest.raises(ArtifactError, match="needs the 'item_text' artifact"):
        ItemSemanticGraphBuilder().build(tiny_interactions)
    with pytest.raises(DataError, match=r"finite \(4, d\) 'item_text'"):
        ItemSemanticGraphBuilder().build(tiny_interactions, {"item_text": FEATURES[:3]})
    with pytest.raises(ValueError, match="'k' >= 1"):
        ItemSemanticGraphConfig(k=0)
