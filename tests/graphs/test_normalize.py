"""graphs/normalize.py: symmetric and hypergraph normalisation, checked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from graphs.normalize import hypergraph_norm, symmetric_normalize
from mmseq.errors import DataError


def test_symmetric_normalize_path_graph_by_hand() -> None:
    # Path 0 -(2)- 1 -(1)- 2 plus isolated node 3. Weighted degrees: d0 = 2, d1 = 3, d2 = 1, d3 = 0.
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    weight = torch.tensor([2.0, 2.0, 1.0, 1.0])
    out = symmetric_normalize(edge_index, weight, num_nodes=4)
    expected = torch.tensor(
        [2 / math.sqrt(6), 2 / math.sqrt(6), 1 / math.sqrt(3), 1 / math.sqrt(3)]
    )
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected)


def test_symmetric_normalize_zero_degree_rows_give_zero_not_nan() -> None:
    # Node 1's only edge has weight 0: its degree is 0, and so is the normalised entry.
    edge_index = torch.tensor([[0, 1, 0, 2], [1, 0, 2, 0]])
    weight = torch.tensor([0.0, 0.0, 4.0, 4.0])
    out = symmetric_normalize(edge_index, weight, num_nodes=4)  # node 3 isolated
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert symmetric_normalize(torch.zeros(2, 0, dtype=torch.long), None, 5).numel() == 0


def test_symmetric_normalize_rejects_negative_weights_and_bad_indices() -> None:
    ei = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(DataError, match="at edge 1"):
        symmetric_normalize(ei, torch.tensor([1.0, -1.0]), 2)
    with pytest.raises(DataError, match=r"\[0, 2\)"):
        symmetric_normalize(torch.tensor([[0, 2], [2, 0]]), None, 2)


def test_hypergraph_norm_tiny_incidence_by_hand() -> None:
    # Hyperedges e0 = {0, 1, 2}, e1 = {1, 3}, e2 = {} (empty); node 4 in no hyperedge.
    # w = (1, 2, 5): B = (3, 2, 0), D = (1, 1 + 2, 1, 2, 0).
    hi = torch.tensor([[0, 1, 2, 1, 3], [0, 0, 0, 1, 1]])
    w = torch.tensor([1.0, 2.0, 5.0])
    to_edge, to_node = hypergraph_norm(hi, num_nodes=5, num_hyperedges=3, hyperedge_weight=w)
    torch.testing.assert_close(to_edge, torch.tensor([1 / 3, 1 / 3, 1 / 3, 1 / 2, 1 / 2]))
    torch.testing.assert_close(to_node, torch.tensor([1.0, 1 / 3, 1.0, 2 / 3, 1.0]))
    # The operator D^-1 H W B^-1 H^T is row-stochastic except the isolated node's zero row.
    P = torch.zeros(5, 3)
    P[hi[0], hi[1]] = to_node
    Q = torch.zeros(3, 5)
    Q[hi[1], hi[0]] = to_edge
    torch.testing.assert_close((P @ Q).sum(1), torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0]))
    # PyG 2.8.1 reading: W only inside D.
    _, pyg_node = hypergraph_norm(
        hi, num_nodes=5, num_hyperedges=3, hyperedge_weight=w, weight_messages=False
    )
    torch.testing.assert_close(pyg_node, torch.tensor([1.0, 1 / 3, 1.0, 1 / 3, 1 / 2]))


def test_hypergraph_norm_with_count_incidence_by_hand() -> None:
    # Counts h = (2, 1, 1 | 1, 3): B = (4, 4), D = (2, 1 + 1, 1, 3).
    hi = torch.tensor([[0, 1, 2, 1, 3], [0, 0, 0, 1, 1]])
    h = torch.tensor([2.0, 1.0, 1.0, 1.0, 3.0])
    to_edge, to_node = hypergraph_norm(hi, num_nodes=4, num_hyperedges=2, incidence_weight=h)
    torch.testing.assert_close(to_edge, torch.tensor([2 / 4, 1 / 4, 1 / 4, 1 / 4, 3 / 4]))
    torch.testing.assert_close(to_node, torch.tensor([1.0, 1 / 2, 1.0, 1 / 2, 1.0]))


def test_hypergraph_norm_zero_degrees_have_finite_gradients() -> None:
    hi = torch.tensor([[0, 1], [0, 0]])
    w = torch.tensor([0.0, 1.0], requires_grad=True)  # node 0 and 1 have weighted degree 0
    to_edge, to_node = hypergraph_norm(hi, num_nodes=3, num_hyperedges=2, hyperedge_weight=w)
    assert torch.equal(to_node, torch.zeros(2))
    (to_edge.sum() + to_node.sum()).backward()
    assert torch.isfinite(w.grad).all()
