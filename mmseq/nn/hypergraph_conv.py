"""Topic hypergraph convolution of SD-MTMP (methods.md section 1.4).

Feng et al., "Hypergraph Neural Networks", AAAI 2019; Bai et al., "Hypergraph Convolution and
Hypergraph Attention", Pattern Recognition 2021 (``torch_geometric.nn.HypergraphConv`` without
attention). SD-MTMP applies one layer to ``[P^(0); E_T]`` over the user-topic (or item-topic)
hypergraph built by ``graphs``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmseq.nn.backends import check_layer_args, check_node_features, get_backend
from mmseq.typing import HyperedgeIndex, OptTensor


class TopicHypergraphConv(nn.Module):
    r"""Hypergraph convolution ``X' = D^-1 H W B^-1 H^T X Theta + b``.

    ``H`` is the node x hyperedge incidence (entries 1, or ``incidence_weight`` such as sentence
    counts), ``W`` the diagonal hyperedge weights (default 1), ``B_e = sum_v h_ve`` the hyperedge
    degree and ``D_v = sum_e h_ve w_e`` the weighted node degree. Rows with a zero degree give 0
    (plus the bias), never NaN.

    With binary incidences and unit hyperedge weights this equals
    ``torch_geometric.nn.HypergraphConv(in, out)`` (no attention) given the same ``lin.weight``
    and ``bias``; parameter names match, so its ``state_dict`` loads here. PyG 2.8.1 uses ``W``
    only inside ``D`` (pyg-team/pytorch_geometric#6918); ``weight_messages=False`` reproduces
    that for non-uniform hyperedge weights.

    Args:
        in_channels: input size.
        out_channels: output size.
        bias: learn an additive bias (default: True).
        weight_messages: apply ``W`` to the hyperedge-to-node messages as the formula says
            (default: True); False = PyG 2.8.1 behaviour.
        backend: ``"pyg"`` (torch sparse CSR) or ``"dgl"`` (default: ``"pyg"``).

    Shapes:
        - x: (N, in_channels), e.g. users then the k topic nodes.
        - hyperedge_index: (2, nnz) ``[node; hyperedge]``; hyperedge_weight: (M,) or None;
          incidence_weight: (nnz,) or None.
        - output: (N, out_channels).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        bias: bool = True,
        weight_messages: bool = True,
        backend: str = "pyg",
    ) -> None:
        super().__init__()
        check_layer_args(in_channels, out_channels, backend)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight_messages, self.backend = weight_messages, backend
        self.lin = nn.Linear(in_channels, out_channels, bias=False)  # Theta
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lin.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self,
        x: Tensor,
        hyperedge_index: HyperedgeIndex,
        hyperedge_weight: OptTensor = None,
        *,
        incidence_weight: OptTensor = None,
        num_hyperedges: int | None = None,
    ) -> Tensor:
        """Args: see the class; ``num_hyperedges`` None = ``max(hyperedge_index[1]) + 1``."""
        check_node_features(x, self.in_channels)
        out = get_backend(self.backend).hypergraph_propagate(
            self.lin(x),
            hyperedge_index,
            num_hyperedges=num_hyperedges,
            incidence_weight=incidence_weight,
            hyperedge_weight=hyperedge_weight,
            weight_messages=self.weight_messages,
        )  # (N, d')
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, weight_messages={self.weight_messages}, "
            f"backend={self.backend!r}"
        )


__all__ = ["TopicHypergraphConv"]
