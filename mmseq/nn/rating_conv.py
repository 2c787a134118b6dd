"""Rating-aware graph convolution of SD-MTMP (methods.md section 1.3), NGCF form.

Wang et al., "Neural Graph Collaborative Filtering", SIGIR 2019; used by SD-MTMP over the
rating-weighted, symmetrically normalised user-item graph ``L = D^-1/2 A D^-1/2``
(``graphs`` artifact ``"rating_graph"``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from mmseq.nn.backends import check_layer_args, check_node_features, get_backend
from mmseq.typing import EdgeIndex, OptTensor


class RatingGCNConv(nn.Module):
    r"""One NGCF-style layer over a normalised (rating-weighted) adjacency.

    .. math::
        E' = \mathrm{LeakyReLU}\big((L + I) E W_1 + (L E \odot E) W_2\big)

    ``L`` arrives as ``(edge_index, edge_weight)`` (already normalised by ``graphs``; this layer
    never normalises) and is applied as ``(L E)[t] = sum_{(s, t)} w_st E[s]``. Weights are Xavier
    (Glorot) uniform, biases zero.

    Args:
        in_channels: input size d.
        out_channels: output size d'.
        bias: learn the additive biases ``b_1, b_2`` of NGCF (default: True).
        negative_slope: LeakyReLU slope for negative inputs (default: 0.2, as NGCF).
        dropout: message dropout on the layer output while training, as NGCF's reference code
            (default: 0.0).
        backend: ``"pyg"`` (torch sparse CSR) or ``"dgl"`` (default: ``"pyg"``).

    Shapes:
        - x: (N, in_channels) stacked users then items, N = num_users + num_items.
        - edge_index: (2, E); edge_weight: (E,) or None for 1.
        - output: (N, out_channels).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        bias: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        backend: str = "pyg",
    ) -> None:
        super().__init__()
        check_layer_args(in_channels, out_channels, backend)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Expected 'dropout' in [0, 1) (got {dropout})")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.negative_slope, self.dropout, self.backend = negative_slope, dropout, backend
        self.lin_aggregate = nn.Linear(in_channels, out_channels, bias=bias)  # W_1 on (L + I) E
        self.lin_interaction = nn.Linear(in_channels, out_channels, bias=bias)  # W_2 on L E (.) E
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin_aggregate, self.lin_interaction):
            nn.init.xavier_uniform_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor, edge_index: EdgeIndex, edge_weight: OptTensor = None) -> Tensor:
        check_node_features(x, self.in_channels)
        side = get_backend(self.backend).propagate(x, edge_index, edge_weight)  # (N, d) = L E
        out = self.lin_aggregate(side + x) + self.lin_interaction(side * x)  # (N, d')
        out = F.leaky_relu(out, self.negative_slope)
        return F.dropout(out, p=self.dropout, training=self.training)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, negative_slope={self.negative_slope}, "
            f"dropout={self.dropout}, backend={self.backend!r}"
        )


__all__ = ["RatingGCNConv"]
