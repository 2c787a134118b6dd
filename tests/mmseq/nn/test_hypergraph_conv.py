"""mmseq/nn/hypergraph_conv.py: equal to PyG's HypergraphConv; weighted forms by hand."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import HypergraphConv

from mmseq.errors import DataError
from mmseq.nn.hypergraph_conv import TopicHypergraphConv


def _random_hypergraph(seed: int = 0) -> tuple[torch.Tensor, int, int]:
    """8 users + 3 topic nodes, 3 hyperedges; user 7 in no hyperedge; nnz with topic nodes."""
    gen = torch.Generator().manual_seed(seed)
    member = torch.rand(7, 3, generator=gen) < 0.5
    users, topics = member.nonzero().T
    hi = torch.stack(
        [torch.cat([users, 8 + torch.arange(3)]), torch.cat([topics, torch.arange(3)])]
    )
    return hi, 11, 3


def _pair(x_dim: int = 5, out: int = 4) -> tuple[TopicHypergraphConv, HypergraphConv]:
    torch.manual_seed(0)
    pyg = HypergraphConv(x_dim, out)
    ours = TopicHypergraphConv(x_dim, out)
    with torch.no_grad():
        pyg.bias.normal_()
    ours.load_state_dict(pyg.state_dict())  # same parameter names: lin.weight, bias
    return ours, pyg


def test_equals_pyg_hypergraphconv_outputs_and_gradients() -> None:
    hi, n, m = _random_hypergraph()
    ours, pyg = _pair()
    x1 = torch.randn(n, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    out1 = ours(x1, hi, num_hyperedges=m)
    out2 = pyg(x2, hi, num_edges=m)
    torch.testing.assert_close(out1, out2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out1[7], ours.bias)  # node in no hyperedge: 0 + bias, no NaN
    (out1**2).sum().backward()
    (out2**2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.lin.weight.grad, pyg.lin.weight.grad, atol=1e-5, rtol=1e-5)


def test_weighted_hyperedges_pyg_reading_and_the_documented_formula() -> None:
    hi, n, m = _random_hypergraph()
    w = torch.tensor([0.5, 2.0, 3.0])
    ours, pyg = _pair()
    x = torch.randn(n, 5, generator=torch.Generator().manual_seed(2))
    ours.weight_messages = False  # PyG 2.8.1 uses W only inside D
    torch.testing.assert_close(
        ours(x, hi, w, num_hyperedges=m), pyg(x, hi, w, num_edges=m), atol=1e-5, rtol=1e-5
    )
    ours.weight_messages = True  # D^-1 H W B^-1 H^T X Theta + b, dense
    H = torch.zeros(n, m)
    H[hi[0], hi[1]] = 1.0
    D, B = H @ w, H.sum(0)
    d_inv = torch.where(D > 0, 1 / D, torch.zeros_like(D))
    dense = d_inv[:, None] * (H @ torch.diag(w) @ torch.diag(1 / B) @ H.T @ x @ ours.lin.weight.T)
    torch.testing.assert_close(ours(x, hi, w, num_hyperedges=m), dense + ours.bias)


def test_count_incidence_by_hand() -> None:
    # Nodes 0, 1 and topic node 2 in hyperedge 0 with counts (3, 1, 1): B = 5, D = (3, 1, 1).
    # Step 1: e = (3 x0 + x1 + x2) / 5; step 2: each member gets (h / D) e = e. Node 3 alone: 0.
    conv = TopicHypergraphConv(1, 1, bias=False)
    with torch.no_grad():
        conv.lin.weight.fill_(1.0)
    hi = torch.tensor([[0, 1, 2], [0, 0, 0]])
    x = torch.tensor([[10.0], [5.0], [0.0], [7.0]])
    out = conv(x, hi, incidence_weight=torch.tensor([3.0, 1.0, 1.0]), num_hyperedges=1)
    torch.testing.assert_close(out, torch.tensor([[7.0], [7.0], [7.0], [0.0]]))


def test_bad_inputs_are_named() -> None:
    conv = TopicHypergraphConv(2, 2)
    x = torch.ones(3, 2)
    with pytest.raises(DataError, match=r"'hyperedge_index' row 0 in \[0, 3\)"):
        conv(x, torch.tensor([[0, 5], [0, 0]]))
    with pytest.raises(DataError, match="'incidence_weight' to be non-negative"):
        conv(x, torch.tensor([[0, 1], [0, 0]]), incidence_weight=torch.tensor([1.0, -1.0]))
    with pytest.raises(DataError, match=r"'hyperedge_weight' of shape \(1,\)"):
        conv(x, torch.tensor([[0, 1], [0, 0]]), torch.ones(2))
