"""LightGCN: linear propagation of ID embeddings over the normalised user-item graph.

He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
SIGIR 2020. The graph is the ``"interaction_graph"`` artifact (built by ``graphs/``, already
``D^-1/2 A D^-1/2``); this model only propagates over it.

Option ``item_graph`` (FREEDOM-style; Zhou & Shen, "A Tale of Two Graphs: Freezing and
Denoising Graph Structures for Multimodal Recommendation", MM 2023): the item ID embeddings are
additionally propagated over a frozen item-item graph ``S`` (any item part of the bundle, e.g.
``item_semantic_graph`` or ``item_cooccurrence``), ``h = S^L E_item``, and the final item
embedding is the LightGCN one plus ``h``; users are unchanged. An item hypergraph (items x
hyperedges, e.g. ``item_attribute_hypergraph``) acts through ``S = D_v^-1 H D_e^-1 H^T``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmseq.data.graph_bundle import GraphPart
from mmseq.data.sampling import PositivePairsCache, bpr_batches
from mmseq.errors import ArtifactError
from mmseq.losses import bpr_loss, l2_regularization
from mmseq.models.base import EmbeddingRecommender, LossOutput, ModelInputs
from mmseq.models.registry import MODELS

GRAPH = "interaction_graph"


@dataclass(frozen=True)
class LightGCNConfig:
    """LightGCN hyper-parameters (defaults from the paper)."""

    embedding_dim: int = 64  # d, width of the layer-0 (ego) embeddings
    num_layers: int = 3  # K propagation layers
    reg_weight: float = 1e-4  # lambda of the L2 penalty on the batch's ego embeddings
    init_std: float = 0.1  # std of the normal initialisation of the ego embeddings
    item_graph: str = ""  # name of an extra frozen item-item graph/hypergraph part; "" = none
    item_graph_layers: int = 1  # L, propagation steps over item_graph (FREEDOM: 1)

    def __post_init__(self) -> None:
        if self.item_graph_layers < 1:
            raise ValueError(f"Expected 'item_graph_layers' >= 1 (got {self.item_graph_layers})")


def item_operator(part: GraphPart, num_items: int) -> tuple[Tensor, ...]:
    """Sparse factors of the item-item operator ``S`` of ``part`` (see :func:`apply_item_operator`).

    A kind-"graph" part (``(num_items, num_items)``, already normalised by its builder) gives
    ``(S,)``; a kind-"hypergraph" part ``H`` of shape ``(num_items, E)`` gives
    ``(D_v^-1 H, D_e^-1 H^T)`` with ``D_v``, ``D_e`` the weighted node and hyperedge degrees
    (degree 0 -> factor 0).
    """
    if dict(part.node_offsets).get("item", 0) != 0 or part.shape[0] != num_items:
        raise ArtifactError(
            f"Expected item graph '{part.name}' over the {num_items} items (rows 0..{num_items - 1}"
            f"; got shape {tuple(part.shape)}, offsets {dict(part.node_offsets)})"
        )
    if part.kind == "graph":
        return (part.to_sparse_csr(),)
    w = part.edge_weight
    node_deg = torch.zeros(part.shape[0], dtype=w.dtype, device=w.device)
    edge_deg = torch.zeros(part.shape[1], dtype=w.dtype, device=w.device)
    node_deg = node_deg.index_add(0, part.edge_index[0], w)
    edge_deg = edge_deg.index_add(0, part.edge_index[1], w)
    inv_v = torch.where(node_deg > 0, 1.0 / node_deg, torch.zeros_like(node_deg))
    inv_e = torch.where(edge_deg > 0, 1.0 / edge_deg, torch.zeros_like(edge_deg))
    src, dst = part.edge_index
    left = torch.sparse_coo_tensor(part.edge_index, inv_v[src] * w, part.shape)
    right = torch.sparse_coo_tensor(part.edge_index.flip(0), inv_e[dst] * w, part.shape[::-1])
    return left.coalesce().to_sparse_csr(), right.coalesce().to_sparse_csr()


def apply_item_operator(factors: tuple[Tensor, ...], x: Tensor) -> Tensor:
    """``S x`` for the factors of :func:`item_operator`. Shapes: x (num_items, d) -> same."""
    for factor in reversed(factors):
        x = factor @ x
    return x


@MODELS.register("lightgcn")
class LightGCN(EmbeddingRecommender):
    """``E^(k+1) = L E^(k)``, ``E = mean_k E^(k)`` (k = 0..K), ``score(u, i) = e_u . e_i``.

    ``L`` is ``inputs.graphs["interaction_graph"]`` (users first, then items), turned into a torch
    CSR matrix once per graph object and propagated with ``torch.sparse.mm``: exactly what PyG's
    ``LGConv(normalize=False)`` runs on a CSR adjacency (tested), without importing PyG (whose
    import pulls transformers and numba: +1.8 s and +126 MiB for every run).
    Loss: ``BPR + lambda * L2`` on the ego (layer-0) embeddings of the batch.

    Shapes:
        score_all: users (B,) -> (B, num_items).
    """

    config_class = LightGCNConfig
    requires_graphs = (GRAPH,)

    def __init__(self, config: LightGCNConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        self.user_embedding = nn.Embedding(num_users, config.embedding_dim)
        self.item_embedding = nn.Embedding(num_items, config.embedding_dim)
        nn.init.normal_(self.user_embedding.weight, std=config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=config.init_std)
        self._pairs = PositivePairsCache()
        self._adj: tuple[GraphPart, Tensor] | None = None
        self._item_op: tuple[GraphPart, tuple[Tensor, ...]] | None = None
        if config.item_graph:
            self.requires_graphs = (GRAPH, config.item_graph)

    # ------------------------------------------------------------------ graph
    def adjacency(self, inputs: ModelInputs) -> Tensor:
        """The interaction graph as a (N, N) sparse CSR tensor, cached per graph object."""
        part = inputs.graphs.get(GRAPH)
        if part is None:
            raise ArtifactError(
                f"LightGCN needs the graph '{GRAPH}' in inputs.graphs "
                f"(has: {sorted(inputs.graphs)}); "
                f"add {{builder: {GRAPH}}} to the config's 'graphs' list and run "
                "scripts/build_graphs.py --config <config>"
            )
        n = self.num_users + self.num_items
        if tuple(part.shape) != (n, n):
            raise ArtifactError(
                f"Expected graph '{GRAPH}' of shape ({n}, {n}) for {self.num_users} users + "
                f"{self.num_items} items (got {tuple(part.shape)}); rebuild it for this data"
            )
        if self._adj is None or self._adj[0] is not part:
            self._adj = (part, part.to_sparse_csr())
        return self._adj[1]

    def final_embeddings(self, inputs: ModelInputs) -> tuple[Tensor, Tensor]:
        return self.propagate(inputs)

    def propagate(self, inputs: ModelInputs) -> tuple[Tensor, Tensor]:
        """Layer-mean embeddings ``(users (num_users, d), items (num_items, d))``."""
        adj = self.adjacency(inputs)
        x = torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # (N, d)
        total = x
        for _ in range(self.config.num_layers):
            x = torch.sparse.mm(adj, x)  # (N, d)
            total = total + x
        mean = total / (self.config.num_layers + 1)
        users, items = mean[: self.num_users], mean[self.num_users :]
        if self.config.item_graph:
            items = items + self.item_graph_embeddings(inputs)
        return users, items

    def item_graph_embeddings(self, inputs: ModelInputs) -> Tensor:
        """``h = S^L E_item`` over the frozen item graph (num_items, d) (FREEDOM)."""
        name = self.config.item_graph
        part = inputs.graphs.get(name)
        if part is None:
            raise ArtifactError(
                f"LightGCN (item_graph '{name}') needs the graph '{name}' in inputs.graphs "
                f"(has: {sorted(inputs.graphs)}); add its builder to the config's 'graphs' list "
                "and run scripts/build_graphs.py --config <config>"
            )
        if self._item_op is None or self._item_op[0] is not part:
            self._item_op = (part, item_operator(part, self.num_items))
        h = self.item_embedding.weight  # (num_items, d)
        for _ in range(self.config.item_graph_layers):
            h = apply_item_operator(self._item_op[1], h)
        return h

    # ------------------------------------------------------------------ training
    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        self.adjacency(inputs)  # fail before the epoch starts if a graph is missing
        if self.config.item_graph:
            self.item_graph_embeddings(inputs)
        return bpr_batches(inputs.user, inputs.item, self.num_items, batch_size, generator,
                           seen=self._pairs.get(inputs))

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        users, items = self.propagate(inputs)
        u = users[batch["user"]]  # (B, d)
        bpr = bpr_loss((u * items[batch["pos"]]).sum(-1), (u * items[batch["neg"]]).sum(-1))
        reg = self.config.reg_weight * l2_regularization(
            self.user_embedding(batch["user"]),
            self.item_embedding(batch["pos"]),
            self.item_embedding(batch["neg"]),
        )
        return LossOutput(bpr + reg, {"bpr": bpr.detach(), "l2": reg.detach()})

    # ------------------------------------------------------------------ scoring
