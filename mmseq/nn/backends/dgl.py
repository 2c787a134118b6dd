"""DGL backend: the same primitives as :mod:`mmseq.nn.backends.pyg` with DGL message passing.

DGL is optional: it is imported (through :func:`mmseq.compat.dgl.import_dgl`, which applies the
torch-2.13 workaround) only when this backend is constructed. An operator is a unidirectional
bipartite ``dgl.heterograph`` ``('src', 'to', 'dst')`` plus its edge weights; aggregation is
``update_all(fn.u_mul_e, fn.sum)``, whose gradient DGL provides for features and weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from mmseq.compat.dgl import import_dgl
from mmseq.nn.backends import GraphBackend


@dataclass(frozen=True)
class _DGLOperator:
    graph: Any  # dgl.DGLGraph with node types 'src', 'dst'
    weight: Tensor  # (E, 1)


class DGLBackend(GraphBackend):
    """Aggregation with DGL's ``update_all``; raises MissingDependencyError without DGL."""

    name = "dgl"

    def __init__(self) -> None:
        super().__init__()
        self._dgl = import_dgl(feature="The 'dgl' graph backend")
        import dgl.function as fn  # after import_dgl: needs the graphbolt stub

        self._fn = fn

    def _prepare(
        self,
        src: Tensor,
        dst: Tensor,
        weight: Tensor,
        num_src: int,
        num_dst: int,
        differentiable: bool,
    ) -> _DGLOperator:
        graph = self._dgl.heterograph(
            {("src", "to", "dst"): (src, dst)},
            num_nodes_dict={"src": num_src, "dst": num_dst},
            idtype=src.dtype,
            device=src.device,
        )
        w = weight if differentiable else weight.detach()
        return _DGLOperator(graph, w.view(-1, 1))  # (E, 1) broadcasts over features

    def _apply(self, op: _DGLOperator, x: Tensor) -> Tensor:
        if x.dim() != 2:
            raise ValueError(f"Expected 'x' to be 2-D (N, F) (got shape {tuple(x.shape)})")
        g = op.graph
        with g.local_scope():
            g.srcdata["x"] = x
            g.edata["w"] = op.weight
            g.update_all(self._fn.u_mul_e("x", "w", "m"), self._fn.sum("m", "y"))
            return g.dstdata["y"]
