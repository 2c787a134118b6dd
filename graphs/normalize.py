"""Graph normalisations: the one copy of each (models and layers never re-normalise).

* :func:`symmetric_normalize`: ``L = D^-1/2 A D^-1/2`` (GCN / LightGCN / NGCF; methods.md 1.2),
  applied by the graph builders before saving.
* :func:`hypergraph_norm`: the coefficients of ``D^-1 H W B^-1 H^T`` (methods.md 1.4). The
  hypergraph convolution needs them at forward time and ``mmseq`` may not import ``graphs``, so the
  implementation lives in :mod:`mmseq.nn.backends` and is re-exported here, not copied.

Degree-zero rows get 0, never inf or NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmseq.errors import DataError
from mmseq.nn.backends import hypergraph_norm, safe_reciprocal
from mmseq.typing import EdgeIndex, OptTensor

__all__ = ["hypergraph_norm", "safe_reciprocal", "symmetric_normalize"]


def symmetric_normalize(edge_index: EdgeIndex, edge_weight: OptTensor, num_nodes: int) -> Tensor:
    r"""Entries of :math:`D^{-1/2} A D^{-1/2}` for ``A[s, t] = edge_weight`` (1 where None).

    ``D`` is the weighted degree, ``d_s = sum_t A[s, t]`` (the row sum; for the symmetric graphs
    that ``graphs`` builds, the column sum is the same), so the entry for ``(s, t)`` is
    ``w_st / sqrt(d_s d_t)``. Computed in float64, returned as float32. An isolated node (degree
    0) has no entries, and a zero degree maps to a zero factor, never inf/NaN.

    Args:
        edge_index: (2, E) ``[source; target]``.
        edge_weight: (E,) non-negative, or None for 1.
        num_nodes: N.

    Returns:
        (E,) float32, aligned with ``edge_index``.

    Raises:
        DataError: on a negative or non-finite weight, or an index out of ``[0, num_nodes)``.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise DataError(f"Expected 'edge_index' of shape (2, E) (got {tuple(edge_index.shape)})")
    num_edges = edge_index.size(1)
    weight = (
        torch.ones(num_edges, dtype=torch.float64)
        if edge_weight is None
        else edge_weight.to(torch.float64)
    )
    if weight.shape != (num_edges,):
        raise DataError(
            f"Expected 'edge_weight' of shape ({num_edges},) (got {tuple(weight.shape)})"
        )
    if num_edges == 0:
        return torch.zeros(0, dtype=torch.float32)
    if int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes:
        raise DataError(
            f"Expected 'edge_index' entries in [0, {num_nodes}) "
            f"(got range [{int(edge_index.min())}, {int(edge_index.max())}])"
        )
    if not torch.isfinite(weight).all() or bool((weight < 0).any()):
        bad = int(torch.nonzero(~torch.isfinite(weight) | (weight < 0))[0, 0])
        raise DataError(
            f"Expected non-negative finite 'edge_weight' (got {float(weight[bad])} at edge {bad})"
        )
    src, dst = edge_index[0], edge_index[1]
    degree = torch.zeros(num_nodes, dtype=torch.float64).index_add(0, src, weight)
    inv_sqrt = safe_reciprocal(degree).sqrt()
    return (inv_sqrt[src] * weight * inv_sqrt[dst]).to(torch.float32)
