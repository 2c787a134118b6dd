"""Message-passing backends: one set of primitives, implemented on torch sparse (PyG) and on DGL.

Both convolutions of ``mmseq.nn`` reduce to two primitives with identical signatures on every
backend:

* :meth:`GraphBackend.propagate`: weighted aggregation along directed edges,
  ``out[dst] = sum_{(src, dst)} w * x[src]`` (PyG's ``source_to_target`` flow);
* :meth:`GraphBackend.hypergraph_propagate`: ``D^-1 H W B^-1 H^T x`` over an incidence
  ``hyperedge_index = [node; hyperedge]``.

The hypergraph normalisation coefficients come from :func:`hypergraph_norm`, the one copy of that
maths (``graphs.normalize`` re-exports it; ``mmseq`` may not import ``graphs``, and the
convolution needs it at forward time). Backends differ only in how they aggregate, so a
PyG-vs-DGL comparison tests the message passing itself.

Speed: turning ``edge_index`` into a backend operator (a CSR matrix, a DGL graph) costs several
times one aggregation, so backends cache the operator per input tensors. An entry is reused only
while the very same tensor objects are alive and unmodified in place (checked through weak
references and ``Tensor._version``); weights that require grad are never cached.
"""

from __future__ import annotations

import importlib
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from mmseq.errors import DataError
from mmseq.optional import require
from mmseq.typing import EdgeIndex, HyperedgeIndex, OptTensor

__all__ = [
    "BACKEND_NAMES",
    "GraphBackend",
    "get_backend",
    "hypergraph_norm",
    "safe_reciprocal",
]

#: name -> (module, class, optional package it needs)
_FACTORIES: dict[str, tuple[str, str, str | None]] = {
    "pyg": ("mmseq.nn.backends.pyg", "PyGBackend", None),
    "dgl": ("mmseq.nn.backends.dgl", "DGLBackend", "dgl"),
}
BACKEND_NAMES: tuple[str, ...] = tuple(_FACTORIES)
_INSTANCES: dict[str, GraphBackend] = {}
_CACHE_SIZE = 16


def safe_reciprocal(deg: Tensor) -> Tensor:
    """``1 / deg`` with 0 where ``deg == 0`` (no inf, and no NaN in the gradient either)."""
    positive = deg > 0
    return torch.where(positive, 1.0 / torch.where(positive, deg, torch.ones_like(deg)), 0.0)


def hypergraph_norm(
    hyperedge_index: HyperedgeIndex,
    *,
    num_nodes: int,
    num_hyperedges: int,
    incidence_weight: OptTensor = None,
    hyperedge_weight: OptTensor = None,
    weight_messages: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    r"""Per-incidence coefficients of :math:`D^{-1} H W B^{-1} H^\top` (methods.md 1.4).

    With incidence weights :math:`h_{ve}` (1 for a plain incidence) and hyperedge weights
    :math:`w_e` (default 1): :math:`B_e = \sum_v h_{ve}`, :math:`D_v = \sum_e h_{ve} w_e`.
    Step 1 gathers ``e = sum_v (h_ve / B_e) x_v``; step 2 scatters
    ``x'_v = sum_e (h_ve w_e / D_v) e_e``. Each row of the product sums to 1 (or 0 for a node in no
    hyperedge). A zero degree gives a zero coefficient, never inf/NaN.

    ``weight_messages=False`` drops ``w_e`` from step 2 (it stays in ``D``): this is what
    ``torch_geometric.nn.HypergraphConv`` 2.8.1 computes (pyg-team/pytorch_geometric#6918).

    Args:
        hyperedge_index: (2, nnz) ``[node; hyperedge]``.
        num_nodes: N. num_hyperedges: M.
        incidence_weight: (nnz,) non-negative ``h_ve`` or None for 1 (default: None).
        hyperedge_weight: (M,) non-negative ``w_e`` or None for 1 (default: None).
        weight_messages: multiply step 2 by ``w_e`` (default: True, the documented formula).
        dtype: floating dtype of the result (default: float32).

    Returns:
        ``(to_hyperedge, to_node)``, both (nnz,): step-1 and step-2 coefficients.
    """
    node, edge = hyperedge_index[0], hyperedge_index[1]
    nnz = hyperedge_index.size(1)
    h = (
        torch.ones(nnz, dtype=dtype, device=node.device)
        if incidence_weight is None
        else incidence_weight.to(dtype)
    )
    w = (
        torch.ones(num_hyperedges, dtype=dtype, device=node.device)
        if hyperedge_weight is None
        else hyperedge_weight.to(dtype)
    )
    w_inc = w[edge]  # (nnz,)
    node_degree = torch.zeros(num_nodes, dtype=dtype, device=node.device).index_add(
        0, node, h * w_inc
    )
    edge_degree = torch.zeros(num_hyperedges, dtype=dtype, device=node.device).index_add(0, edge, h)
    to_hyperedge = h * safe_reciprocal(edge_degree)[edge]
    to_node = (h * w_inc if weight_messages else h) * safe_reciprocal(node_degree)[node]
    return to_hyperedge, to_node


class _OperatorCache:
    """Backend operators keyed by the identity and in-place version of their input tensors."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self.size = size
        self._entries: dict[tuple, tuple[list[Any], Any]] = {}

    @staticmethod
    def _key(tensors: Sequence[OptTensor], extra: tuple) -> tuple:
        ids = tuple(None if t is None else (id(t), t._version) for t in tensors)
        return ids + extra

    def get_or_build(
        self, tensors: Sequence[OptTensor], extra: tuple, build: Callable[[], Any]
    ) -> Any:
        key = self._key(tensors, extra)
        hit = self._entries.get(key)
        if hit is not None:
            refs, op = hit
            if all(
                (r is None and t is None) or (r is not None and r() is t)
                for r, t in zip(refs, tensors)
            ):
                return op
        op = build()
        refs = [None if t is None else weakref.ref(t) for t in tensors]
        # Drop entries whose tensors died, then the oldest ones beyond the size limit.
        for k in [
            k
            for k, (rs, _) in self._entries.items()
            if any(r is not None and r() is None for r in rs)
        ]:
            del self._entries[k]
        while len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (refs, op)
        return op

    def clear(self) -> None:
        self._entries.clear()


def _needs_grad(*tensors: OptTensor) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class GraphBackend(ABC):
    """Aggregation primitives shared by the convolutions; subclasses only build and apply operators.

    An operator is what :meth:`_prepare` returns for one directed, weighted bipartite edge set
    ``src -> dst`` (a square graph is the case ``num_src == num_dst``).
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self._cache = _OperatorCache()

    # ------------------------------------------------------------------ backend-specific
    @abstractmethod
    def _prepare(
        self,
        src: Tensor,
        dst: Tensor,
        weight: Tensor,
        num_src: int,
        num_dst: int,
        differentiable: bool,
    ) -> Any:
        """Build the operator for ``out[dst] += weight * x[src]``."""

    @abstractmethod
    def _apply(self, op: Any, x: Tensor) -> Tensor:
        """``(num_src, F) -> (num_dst, F)`` through ``op``."""

    # ------------------------------------------------------------------ shared primitives
    def propagate(
        self,
        x: Tensor,
        edge_index: EdgeIndex,
        edge_weight: OptTensor = None,
        *,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """``out[dst] = sum_{(src, dst)} edge_weight * x[src]``; duplicate edges add up.

        Args:
            x: (num_src, F) source features.
            edge_index: (2, E) ``[src; dst]``.
            edge_weight: (E,) or None for 1 (default: None).
            size: ``(num_src, num_dst)``; None for a square graph over ``x`` (default: None).

        Returns:
            (num_dst, F). A destination without in-edges gets 0.
        """
        num_src, num_dst = (x.size(0), x.size(0)) if size is None else size
        if x.size(0) != num_src:
            raise DataError(f"Expected 'x' to have {num_src} rows (got {x.size(0)})")
        differentiable = _needs_grad(edge_weight)

        def build() -> Any:
            _check_index(edge_index, "edge_index", (num_src, num_dst))
            w = _check_weight(edge_weight, "edge_weight", edge_index.size(1), signed=True)
            w = torch.ones(edge_index.size(1), device=x.device) if w is None else w
            return self._prepare(
                edge_index[0], edge_index[1], w.to(x.dtype), num_src, num_dst, differentiable
            )

        extra = ("graph", num_src, num_dst, x.dtype, x.device)
        op = (
            build()
            if differentiable
            else self._cache.get_or_build((edge_index, edge_weight), extra, build)
        )
        return self._apply(op, x)

    def hypergraph_propagate(
        self,
        x: Tensor,
        hyperedge_index: HyperedgeIndex,
        *,
        num_hyperedges: int | None = None,
        incidence_weight: OptTensor = None,
        hyperedge_weight: OptTensor = None,
        weight_messages: bool = True,
    ) -> Tensor:
        """``D^-1 H W B^-1 H^T x`` (see :func:`hypergraph_norm` for the weights).

        Args:
            x: (N, F) node features.
            hyperedge_index: (2, nnz) ``[node; hyperedge]``.
            num_hyperedges: M; None for ``max(hyperedge_index[1]) + 1`` as in PyG (default: None).
            incidence_weight: (nnz,) non-negative, or None (default: None).
            hyperedge_weight: (M,) non-negative, or None (default: None).
            weight_messages: see :func:`hypergraph_norm` (default: True).

        Returns:
            (N, F). A node in no hyperedge gets 0.
        """
        num_nodes = x.size(0)
        if num_hyperedges is None:
            num_hyperedges = int(hyperedge_index[1].max()) + 1 if hyperedge_index.numel() else 0
        differentiable = _needs_grad(incidence_weight, hyperedge_weight)

        def build() -> tuple[Any, Any]:
            _check_index(hyperedge_index, "hyperedge_index", (num_nodes, num_hyperedges))
            nnz = hyperedge_index.size(1)
            h = _check_weight(incidence_weight, "incidence_weight", nnz, signed=False)
            w = _check_weight(hyperedge_weight, "hyperedge_weight", num_hyperedges, signed=False)
            to_edge, to_node = hypergraph_norm(
                hyperedge_index,
                num_nodes=num_nodes,
                num_hyperedges=num_hyperedges,
                incidence_weight=h,
                hyperedge_weight=w,
                weight_messages=weight_messages,
                dtype=x.dtype,
            )
            node, edge = hyperedge_index[0], hyperedge_index[1]
            gather = self._prepare(node, edge, to_edge, num_nodes, num_hyperedges, differentiable)
            scatter = self._prepare(edge, node, to_node, num_hyperedges, num_nodes, differentiable)
            return gather, scatter

        extra = ("hypergraph", num_nodes, num_hyperedges, weight_messages, x.dtype, x.device)
        tensors = (hyperedge_index, incidence_weight, hyperedge_weight)
        gather, scatter = (
            build() if differentiable else self._cache.get_or_build(tensors, extra, build)
        )
        return self._apply(scatter, self._apply(gather, x))

    def clear_cache(self) -> None:
        """Forget every cached operator (they are rebuilt on the next call)."""
        self._cache.clear()


def _check_index(index: Tensor, name: str, size: tuple[int, int]) -> None:
    if index.dim() != 2 or index.size(0) != 2:
        raise DataError(f"Expected '{name}' of shape (2, E) (got {tuple(index.shape)})")
    if index.dtype not in (torch.int64, torch.int32):
        raise DataError(f"Expected '{name}' to hold integers (got {index.dtype})")
    if index.numel():
        for row, (label, bound) in enumerate(zip(("row 0", "row 1"), size)):
            lo, hi = int(index[row].min()), int(index[row].max())
            if lo < 0 or hi >= bound:
                raise DataError(
                    f"Expected '{name}' {label} in [0, {bound}) (got range [{lo}, {hi}])"
                )


def _check_weight(weight: OptTensor, name: str, length: int, *, signed: bool) -> OptTensor:
    if weight is None:
        return None
    if weight.shape != (length,):
        raise DataError(f"Expected '{name}' of shape ({length},) (got {tuple(weight.shape)})")
    if not torch.isfinite(weight).all():
        raise DataError(f"Expected '{name}' to be finite (got NaN or inf)")
    if not signed and weight.numel() and bool((weight < 0).any()):
        raise DataError(f"Expected '{name}' to be non-negative (got min {float(weight.min())})")
    return weight


def get_backend(name: str) -> GraphBackend:
    """The shared backend instance called ``name`` (``"pyg"`` or ``"dgl"``).

    Raises:
        ValueError: for an unknown name (listing the choices).
        MissingDependencyError: when the backend's package is not installed (with the install hint).
    """
    if name not in _FACTORIES:
        raise ValueError(f"Unknown graph backend '{name}'; choices: {list(BACKEND_NAMES)}")
    module, cls_name, package = _FACTORIES[name]
    if package is not None:
        require(package, feature=f"The '{name}' graph backend")
    inst = _INSTANCES.get(name)
    if inst is None:
        cls = getattr(importlib.import_module(module), cls_name)
        inst = _INSTANCES[name] = cls()
    return inst


def check_layer_args(in_channels: int, out_channels: int, backend: str) -> None:
    """Validate a conv layer's sizes and backend at construction (a missing DGL fails here)."""
    if in_channels <= 0 or out_channels <= 0:
        raise ValueError(
            f"Expected positive 'in_channels' and 'out_channels' "
            f"(got {in_channels}, {out_channels})"
        )
    get_backend(backend)


def check_node_features(x: Tensor, in_channels: int) -> None:
    """Expect ``x`` of shape (N, in_channels)."""
    if x.dim() != 2 or x.size(1) != in_channels:
        raise ValueError(f"Expected 'x' of shape (N, {in_channels}) (got {tuple(x.shape)})")
