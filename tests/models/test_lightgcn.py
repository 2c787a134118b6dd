"""LightGCN: propagation against a dense hand computation, graph caching, eval caches, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mmseq.data.graph_bundle import GraphPart
from mmseq.data.inputs import build_model_inputs
from mmseq.data.schema import Interactions
from mmseq.errors import ArtifactError
from mmseq.models.lightgcn import LightGCN, LightGCNConfig


def _graph() -> GraphPart:
    # 2 users, 2 items; edges u0-i0, u0-i1, u1-i1 -> node degrees u0 2, u1 1, i0 1, i1 2
    # normalised weights 1/sqrt(d_s d_t): u0-i0 1/sqrt2, u0-i1 1/2, u1-i1 1/sqrt2
    src = torch.tensor([0, 0, 1, 2, 3, 3])
    dst = torch.tensor([2, 3, 3, 0, 0, 1])
    r = 2 ** -0.5
    w = torch.tensor([r, 0.5, r, r, 0.5, r])
    return GraphPart("interaction_graph", "graph", torch.stack([src, dst]), w, (4, 4),
                     {"user": 0, "item": 2})


def _table() -> Interactions:
    return Interactions(
        user=np.array([0, 0, 1]), item=np.array([0, 1, 1]),
        rating=np.ones(3, dtype=np.float32), timestamp=np.arange(3),
        user_ids=np.array(["a", "b"], dtype=object), item_ids=np.array(["x", "y"], dtype=object),
    )


def _inputs(graph: GraphPart | None = None):
    graphs = {} if graph is None else {"interaction_graph": graph}
    return build_model_inputs(_table(), max_len=2, graphs=graphs)


def test_propagation_matches_dense_layer_mean() -> None:
    graph = _graph()
    inputs = _inputs(graph)
    model = LightGCN(LightGCNConfig(embedding_dim=3, num_layers=2), 2, 2)
    dense = torch.zeros(4, 4)
    dense[graph.edge_index[0], graph.edge_index[1]] = graph.edge_weight
    e0 = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    expect = (e0 + dense @ e0 + dense @ dense @ e0) / 3
    users, items = model.propagate(inputs)
    torch.testing.assert_close(users, expect[:2])
    torch.testing.assert_close(items, expect[2:])
    scores = model.score_all(torch.tensor([1]), inputs)
    torch.testing.assert_close(scores, (expect[1:2] @ expect[2:].T))


def test_adjacency_is_built_once_per_graph_object() -> None:
    graph = _graph()
    model = LightGCN(LightGCNConfig(), 2, 2)
    first = model.adjacency(_inputs(graph))
    assert model.adjacency(_inputs(graph)) is first  # same GraphPart: reused
    assert model.adjacency(_inputs(dataclasses.replace(graph))) is not first


def test_eval_cache_is_used_between_begin_and_end() -> None:
    inputs = _inputs(_graph())
    model = LightGCN(LightGCNConfig(embedding_dim=4), 2, 2)
    model.begin_eval(inputs)
    before = model.score_all(torch.tensor([0, 1]), inputs)
    with torch.no_grad():
        model.user_embedding.weight.add_(1.0)
    assert torch.equal(model.score_all(torch.tensor([0, 1]), inputs), before)  # cached
    model.end_eval()
    assert not torch.equal(model.score_all(torch.tensor([0, 1]), inputs), before)


def test_missing_or_mismatched_graph_is_an_artifact_error() -> None:
    model = LightGCN(LightGCNConfig(), 2, 2)
    with pytest.raises(ArtifactError, match="interaction_graph.*build_graphs"):
        model.score_all(torch.tensor([0]), _inputs())
    bigger = LightGCN(LightGCNConfig(), 2, 3)
    with pytest.raises(ArtifactError, match=r"shape \(5, 5\)"):
        bigger.adjacency(_inputs(_graph()))


def _item_graph() -> GraphPart:
    # 2 items, S = [[0, 1], [0.5, 0]] (a directed item graph: the builder's normalisation).
    return GraphPart("item_semantic_graph", "graph", torch.tensor([[0, 1], [1, 0]]),
                     torch.tensor([1.0, 0.5]), (2, 2), {"item": 0})


def _item_hypergraph() -> GraphPart:
    # 2 items x 2 attributes: item 0 in {a0, a1}, item 1 in {a1}.
    index = torch.tensor([[0, 0, 1], [0, 1, 1]])
    return GraphPart("item_attribute_hypergraph", "hypergraph", index, torch.ones(3), (2, 2),
                     {"item": 0})


def test_item_graph_option_adds_frozen_item_propagation() -> None:
    graph, extra = _graph(), _item_graph()
    inputs = build_model_inputs(
        _table(), max_len=2,
        graphs={"interaction_graph": graph, "item_semantic_graph": extra},
    )
    cfg = LightGCNConfig(embedding_dim=3, num_layers=1, item_graph="item_semantic_graph",
                         item_graph_layers=2)
    model = LightGCN(cfg, 2, 2)
    assert model.requires_graphs == ("interaction_graph", "item_semantic_graph")
    plain = LightGCN(LightGCNConfig(embedding_dim=3, num_layers=1), 2, 2)
    plain.load_state_dict(model.state_dict())
    s = torch.tensor([[0.0, 1.0], [0.5, 0.0]])
    e_item = model.item_embedding.weight.detach()
    users, items = model.propagate(inputs)
    base_users, base_items = plain.propagate(inputs)
    torch.testing.assert_close(users, base_users)  # users unchanged (FREEDOM)
    torch.testing.assert_close(items, base_items + s @ s @ e_item)


def test_item_hypergraph_acts_through_its_normalised_operator() -> None:
    inputs = build_model_inputs(
        _table(), max_len=2,
        graphs={"interaction_graph": _graph(), "item_attribute_hypergraph": _item_hypergraph()},
    )
    cfg = LightGCNConfig(embedding_dim=3, num_layers=1, item_graph="item_attribute_hypergraph")
    model = LightGCN(cfg, 2, 2)
    # H = [[1, 1], [0, 1]]; D_v = diag(2, 1), D_e = diag(1, 2):
    # S = D_v^-1 H D_e^-1 H^T = [[0.75, 0.25], [0.5, 0.5]].
    s = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    e_item = model.item_embedding.weight.detach()
    torch.testing.assert_close(model.item_graph_embeddings(inputs), s @ e_item)


def test_missing_item_graph_is_an_artifact_error() -> None:
    model = LightGCN(LightGCNConfig(item_graph="item_semantic_graph"), 2, 2)
    with pytest.raises(ArtifactError, match="item_graph 'item_semantic_graph'.*build_graphs"):
        model.score_all(torch.tensor([0]), _inputs(_graph()))
    with pytest.raises(ValueError, match="item_graph_layers"):
        LightGCNConfig(item_graph_layers=0)


def test_propagation_is_pygs_lgconv_bit_for_bit() -> None:
    # LightGCN runs torch.sparse.mm itself so that training it never imports PyG (which pulls
    # transformers and numba); the numbers are those of PyG's LGConv(normalize=False).
    from torch_geometric.nn import LGConv

    g = torch.Generator().manual_seed(0)
    dense = (torch.rand(30, 30, generator=g) < 0.2).float() * torch.rand(30, 30, generator=g)
    adj = dense.to_sparse_csr()
    x = torch.randn(30, 8, generator=g, requires_grad=True)
    ours = torch.sparse.mm(adj, x)
    theirs = LGConv(normalize=False)(x, adj)
    assert torch.equal(ours, theirs)
    (g_ours,) = torch.autograd.grad(ours.sum(), x)
    (g_theirs,) = torch.autograd.grad(theirs.sum(), x)
    assert torch.equal(g_ours, g_theirs)
