"""mmseq/nn/backends + mmseq/compat/dgl: PyG and DGL agree; caching; missing-DGL handling."""

from __future__ import annotations

import pytest
import torch

import mmseq.optional
from mmseq.compat.dgl import import_dgl
from mmseq.errors import MissingDependencyError
from mmseq.nn.backends import get_backend
from mmseq.nn.hypergraph_conv import TopicHypergraphConv
from mmseq.nn.rating_conv import RatingGCNConv
from mmseq.optional import WITH_DGL

DGL_REASON = (
    "DGL not installed; install with: make install "
    "(or: pip install --no-deps dgl==2.1.0 torchdata==0.9.0)"
)
requires_dgl = pytest.mark.skipif(not WITH_DGL, reason=DGL_REASON)


def _graph(n: int = 12, e: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n - 1, (2, e), generator=gen)  # node n-1 isolated
    return edge_index, torch.rand(e, generator=gen)


def _hypergraph(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    member = torch.rand(9, 4, generator=gen) < 0.4
    node, edge = member.nonzero().T
    hi = torch.stack([torch.cat([node, 10 + torch.arange(4)]), torch.cat([edge, torch.arange(4)])])
    counts = torch.randint(1, 4, (hi.size(1),), generator=gen).float()
    return hi, counts, torch.tensor([1.0, 0.5, 2.0, 3.0])  # node 9 in no hyperedge


def _dense_propagate(x: torch.Tensor, edge_index: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    A_t = torch.zeros(x.size(0), x.size(0)).index_put(
        (edge_index[1], edge_index[0]), w, accumulate=True
    )
    return A_t @ x


def test_pyg_propagate_matches_dense_including_grads_through_learnable_weights() -> None:
    edge_index, w = _graph()
    x = torch.randn(12, 3, requires_grad=True)
    out = get_backend("pyg").propagate(x, edge_index, w)
    torch.testing.assert_close(out, _dense_propagate(x, edge_index, w))
    assert torch.equal(out[11], torch.zeros(3))
    w1 = w.clone().requires_grad_()
    w2 = w.clone().requires_grad_()
    get_backend("pyg").propagate(x, edge_index, w1).square().sum().backward()
    _dense_propagate(x, edge_index, w2).square().sum().backward()
    torch.testing.assert_close(w1.grad, w2.grad)


def test_cached_operator_follows_in_place_changes() -> None:
    edge_index, w = _graph()
    x = torch.randn(12, 3)
    backend = get_backend("pyg")
    first = backend.propagate(x, edge_index, w)
    w.mul_(2.0)  # bumps the tensor version: the cached CSR must not be reused
    torch.testing.assert_close(backend.propagate(x, edge_index, w), 2 * first)
    backend.clear_cache()
    torch.testing.assert_close(backend.propagate(x, edge_index, w), 2 * first)


@requires_dgl
@pytest.mark.dgl
def test_rating_conv_dgl_equals_pyg_outputs_and_gradients() -> None:
    edge_index, w = _graph()
    torch.manual_seed(0)
    pyg = RatingGCNConv(6, 5, backend="pyg")
    dgl = RatingGCNConv(6, 5, backend="dgl")
    dgl.load_state_dict(pyg.state_dict())
    x = torch.randn(12, 6)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    w1, w2 = w.clone().requires_grad_(), w.clone().requires_grad_()
    out1, out2 = pyg(x1, edge_index, w1), dgl(x2, edge_index, w2)
    torch.testing.assert_close(out1, out2, atol=1e-5, rtol=1e-5)
    (out1 * torch.arange(5.0)).sum().backward()
    (out2 * torch.arange(5.0)).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w1.grad, w2.grad, atol=1e-5, rtol=1e-5)
    for (name, p1), (_, p2) in zip(pyg.named_parameters(), dgl.named_parameters()):
        torch.testing.assert_close(p1.grad, p2.grad, atol=1e-5, rtol=1e-5, msg=name)
    # The cached (non-learnable weight) path agrees too.
    torch.testing.assert_close(pyg(x, edge_index, w), dgl(x, edge_index, w), atol=1e-5, rtol=1e-5)


@requires_dgl
@pytest.mark.dgl
@pytest.mark.parametrize("weight_messages", [True, False])
def test_hypergraph_conv_dgl_equals_pyg_outputs_and_gradients(weight_messages: bool) -> None:
    hi, counts, hw = _hypergraph()
    torch.manual_seed(0)
    pyg = TopicHypergraphConv(6, 5, weight_messages=weight_messages, backend="pyg")
    dgl = TopicHypergraphConv(6, 5, weight_messages=weight_messages, backend="dgl")
    dgl.load_state_dict(pyg.state_dict())
    x = torch.randn(14, 6)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1 = pyg(x1, hi, hw, incidence_weight=counts, num_hyperedges=4)
    out2 = dgl(x2, hi, hw, incidence_weight=counts, num_hyperedges=4)
    torch.testing.assert_close(out1, out2, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out1).all()
    torch.testing.assert_close(out1[9], pyg.bias.detach())  # degree-zero node: bias only
    out1.square().sum().backward()
    out2.square().sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pyg.lin.weight.grad, dgl.lin.weight.grad, atol=1e-5, rtol=1e-5)
    # Learnable hyperedge weights: both backends differentiate through the normalisation.
    h1, h2 = hw.clone().requires_grad_(), hw.clone().requires_grad_()
    pyg(x, hi, h1, num_hyperedges=4).sum().backward()
    dgl(x, hi, h2, num_hyperedges=4).sum().backward()
    torch.testing.assert_close(h1.grad, h2.grad, atol=1e-5, rtol=1e-5)


@requires_dgl
@pytest.mark.dgl
def test_import_dgl_applies_the_graphbolt_workaround() -> None:
    dgl = import_dgl()
    assert hasattr(dgl, "heterograph") and "dgl.graphbolt" in __import__("sys").modules


def test_without_dgl_the_backend_raises_with_an_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = mmseq.optional.is_available
    monkeypatch.setattr(mmseq.optional, "is_available", lambda pkg: pkg != "dgl" and real(pkg))
    with pytest.raises(
        MissingDependencyError, match="install it with: .*pip install --no-deps dgl"
    ):
        get_backend("dgl")
    with pytest.raises(MissingDependencyError, match="'dgl' graph backend"):
        RatingGCNConv(4, 4, backend="dgl")
    with pytest.raises(MissingDependencyError):
        TopicHypergraphConv(4, 4, backend="dgl")
    with pytest.raises(MissingDependencyError, match="DGL backend"):
        import_dgl()
    assert isinstance(RatingGCNConv(4, 4, backend="pyg"), RatingGCNConv)  # PyG is unaffected
