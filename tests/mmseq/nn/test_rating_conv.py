"""mmseq/nn/rating_conv.py: the NGCF-form layer of methods.md 1.3, checked by hand."""

from __future__ import annotations

import copy

import pytest
import torch

from mmseq.nn.rating_conv import RatingGCNConv

# Nodes 0 - 1 joined with L = 0.5 both ways; node 2 isolated (degree 0).
EDGE_INDEX = torch.tensor([[0, 1], [1, 0]])
EDGE_WEIGHT = torch.tensor([0.5, 0.5])


def _conv(**kwargs) -> RatingGCNConv:
    conv = RatingGCNConv(2, 2, **kwargs)
    with torch.no_grad():
        conv.lin_aggregate.weight.copy_(torch.eye(2))  # W1 = I
        conv.lin_interaction.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))  # W2 swaps
    return conv


def test_forward_by_hand_including_an_isolated_node_and_leaky_relu() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [-5.0, 6.0]])
    # L E        = [[1.5, 2], [0.5, 1], [0, 0]]
    # (L + I) E  = [[2.5, 4], [3.5, 5], [-5, 6]]               (W1 = I)
    # L E (.) E  = [[1.5, 4], [1.5, 4], [0, 0]]  -> W2 swaps -> [[4, 1.5], [4, 1.5], [0, 0]]
    # sum        = [[6.5, 5.5], [7.5, 6.5], [-5, 6]]; LeakyReLU(0.2): -5 -> -1
    conv = _conv(bias=False)
    out = conv(x, EDGE_INDEX, EDGE_WEIGHT)
    torch.testing.assert_close(out, torch.tensor([[6.5, 5.5], [7.5, 6.5], [-1.0, 6.0]]))


def test_biases_add_b1_plus_b2() -> None:
    conv = _conv(bias=True)
    with torch.no_grad():
        conv.lin_aggregate.bias.copy_(torch.tensor([1.0, 0.0]))
        conv.lin_interaction.bias.copy_(torch.tensor([0.0, 2.0]))
    out = conv(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), EDGE_INDEX, EDGE_WEIGHT)
    # Without biases: [[6.5, 5.5], [7.5, 6.5], [5, 6]]; plus (1, 2).
    torch.testing.assert_close(out, torch.tensor([[7.5, 7.5], [8.5, 8.5], [6.0, 8.0]]))


def test_matches_the_dense_formula_and_gradients_reach_every_parameter() -> None:
    gen = torch.Generator().manual_seed(0)
    n, e = 9, 20
    edge_index = torch.randint(0, n - 1, (2, e), generator=gen)  # node n-1 isolated
    edge_weight = torch.rand(e, generator=gen)
    L = torch.zeros(n, n).index_put_((edge_index[1], edge_index[0]), edge_weight, accumulate=True)
    x = torch.randn(n, 4, generator=gen)
    conv = RatingGCNConv(4, 3, negative_slope=0.1)
    out = conv(x, edge_index, edge_weight)
    w1, b1 = conv.lin_aggregate.weight, conv.lin_aggregate.bias
    w2, b2 = conv.lin_interaction.weight, conv.lin_interaction.bias
    dense = torch.nn.functional.leaky_relu(
        ((L + torch.eye(n)) @ x) @ w1.T + b1 + ((L @ x) * x) @ w2.T + b2, 0.1
    )
    torch.testing.assert_close(out, dense)
    out.square().sum().backward()
    for name, p in conv.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_xavier_init_zero_bias_dropout_and_argument_errors() -> None:
    torch.manual_seed(0)
    conv = RatingGCNConv(64, 32, dropout=0.5)
    bound = (6 / (64 + 32)) ** 0.5
    weight = conv.lin_aggregate.weight.detach()
    assert float(weight.abs().max()) <= bound
    assert float(weight.std()) > bound / 3  # uniform, not all zeros
    assert torch.equal(conv.lin_interaction.bias, torch.zeros(32))
    x = torch.ones(3, 64)
    conv.eval()
    assert torch.equal(conv(x, EDGE_INDEX, EDGE_WEIGHT), conv(x, EDGE_INDEX, EDGE_WEIGHT))
    conv.train()
    assert bool((conv(x, EDGE_INDEX, EDGE_WEIGHT) == 0).any())
    with pytest.raises(ValueError, match="dropout"):
        RatingGCNConv(4, 4, dropout=1.0)
    with pytest.raises(ValueError, match="Unknown graph backend 'torch'"):
        RatingGCNConv(4, 4, backend="torch")
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        _conv()(torch.ones(3, 5), EDGE_INDEX, EDGE_WEIGHT)
    copy.deepcopy(conv)  # modules hold no backend state (safe for checkpoint copies)
