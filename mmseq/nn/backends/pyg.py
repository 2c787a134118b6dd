"""PyG-style backend on torch sparse CSR matrices (the fast path of shared/docs/environment.md).

An operator is the transposed adjacency ``adj_t`` (``num_dst x num_src``, PyG's convention) as a
``torch.sparse_csr`` matrix, plus its transpose for the backward pass: with both precomputed, one
aggregation forward and backward is two CSR products (about half the time of autograd's own CSR
backward, measured on this CPU). Weights that require grad use a gather / ``index_add`` path
instead, which autograd differentiates with respect to the weights too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from mmseq.nn.backends import GraphBackend


def to_csr(row: Tensor, col: Tensor, value: Tensor, shape: tuple[int, int]) -> Tensor:
    """A coalesced ``torch.sparse_csr`` matrix with ``M[row, col] = value`` (duplicates added)."""
    with warnings.catch_warnings():
        # torch warns that CSR is "beta" and that invariant checks are off; both are known here.
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*", category=UserWarning)
        coo = torch.sparse_coo_tensor(torch.stack([row, col]), value, shape).coalesce()
        return coo.to_sparse_csr()


class _CSRMatmul(torch.autograd.Function):
    """``adj_t @ x`` whose backward uses the precomputed ``adj`` (= ``adj_t`` transposed)."""

    @staticmethod
    def forward(ctx, adj_t: Tensor, adj: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        return adj_t @ x

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[None, None, Tensor]:  # type: ignore[override]
        # An expanded (stride-0) gradient, e.g. from .sum(), makes the CSR product ~2x slower.
        return None, None, ctx.adj @ grad_out.contiguous()


@dataclass(frozen=True)
class _CSROperator:
    adj_t: Tensor  # (num_dst, num_src) CSR
    adj: Tensor  # (num_src, num_dst) CSR


@dataclass(frozen=True)
class _ScatterOperator:
    src: Tensor  # (E,)
    dst: Tensor  # (E,)
    weight: Tensor  # (E,), may require grad
    num_dst: int


class PyGBackend(GraphBackend):
    """Aggregation with torch sparse CSR products (and ``index_add`` for learnable weights)."""

    name = "pyg"

    def _prepare(
        self,
        src: Tensor,
        dst: Tensor,
        weight: Tensor,
        num_src: int,
        num_dst: int,
        differentiable: bool,
    ) -> _CSROperator | _ScatterOperator:
        if differentiable:
            return _ScatterOperator(src, dst, weight, num_dst)
        weight = weight.detach()
        return _CSROperator(
            adj_t=to_csr(dst, src, weight, (num_dst, num_src)),
            adj=to_csr(src, dst, weight, (num_src, num_dst)),
        )

    def _apply(self, op: _CSROperator | _ScatterOperator, x: Tensor) -> Tensor:
        if isinstance(op, _ScatterOperator):
            msg = x.index_select(0, op.src) * op.weight.view(-1, *([1] * (x.dim() - 1)))  # (E, F)
            return x.new_zeros((op.num_dst, *x.shape[1:])).index_add(0, op.dst, msg)
        if x.dim() != 2:
            raise ValueError(f"Expected 'x' to be 2-D (N, F) (got shape {tuple(x.shape)})")
        return _CSRMatmul.apply(op.adj_t, op.adj, x.contiguous())
