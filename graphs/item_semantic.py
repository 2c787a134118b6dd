"""Item semantic graph (``"item_semantic_graph"``): kNN over item text embeddings.

The frozen item-item graph of LATTICE (Zhang et al., MM 2021) and FREEDOM (Zhou & Shen, MM 2023):
cosine similarity ``s_ij = x_i . x_j / (|x_i| |x_j|)`` between the items' text features (the
``item_text`` stage: mean training-sentence embedding per item), each item keeps its ``k`` most
similar other items, and the result is stored as ``D^-1/2 A D^-1/2`` with ``D`` the row sums.

``A`` is FREEDOM's directed kNN by default (``A_ij = 1`` when j is among i's top k; rows all have
degree k). ``symmetrize: true`` takes ``max(A, A^T)`` instead (an undirected graph), and
``weights: cosine`` keeps the similarity as the weight (LATTICE) instead of 1. Items without
training text are isolated: they have no neighbours and are nobody's neighbour. Similarities
<= 0 never become edges (weights must be non-negative); they are counted in ``meta``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from graphs.base import GRAPH_BUILDERS, NO_ARTIFACTS, GraphBuilder, coalesce, require_interactions
from graphs.normalize import symmetric_normalize
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions
from mmseq.errors import DataError


@dataclass(frozen=True)
class ItemSemanticGraphConfig:
    """Settings of the item kNN graph."""

    k: int = 10  # neighbours kept per item (LATTICE/FREEDOM: 10)
    weights: Literal["binary", "cosine"] = "binary"  # A_ij = 1 (FREEDOM) or s_ij (LATTICE)
    symmetrize: bool = False  # False: directed kNN (FREEDOM); True: max(A, A^T)
    chunk_size: int = 1024  # items per similarity block (memory: chunk_size x num_items floats)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"Expected 'k' >= 1 (got {self.k})")
        if self.chunk_size < 1:
            raise ValueError(f"Expected 'chunk_size' >= 1 (got {self.chunk_size})")


def knn_edges(
    features: np.ndarray, k: int, chunk_size: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Top-``k`` cosine neighbours of every item with a non-zero feature row.

    Shapes:
        features: (n, d) -> ``(source (E,), target (E,), cosine (E,), non_positive_dropped)``.
    """
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float64))
    norm = x.norm(dim=1)
    has_text = norm > 0
    x = x / norm.clamp_min(1e-12)[:, None]  # (n, d) unit rows; zero rows stay zero
    k = min(k, int(has_text.sum()) - 1)
    sources, targets, sims = [], [], []
    if k < 1:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0), 0
    blocked = torch.where(has_text, 0.0, -torch.inf)  # (n,) no-text items are never neighbours
    for start in range(0, x.size(0), chunk_size):  # a loop over blocks of rows, not over items
        rows = torch.arange(start, min(start + chunk_size, x.size(0)))
        sim = x[rows] @ x.T + blocked  # (b, n)
        sim[torch.arange(len(rows)), rows] = -torch.inf  # no self loops
        top = torch.topk(sim, k, dim=1, sorted=True)  # (b, k)
        keep = has_text[rows]
        sources.append(rows[keep].repeat_interleave(k))
        targets.append(top.indices[keep].reshape(-1))
        sims.append(top.values[keep].reshape(-1))
    src, dst, cos = (torch.cat(t).numpy() for t in (sources, targets, sims))
    positive = cos > 0
    return src[positive], dst[positive], cos[positive], int((~positive).sum())


@GRAPH_BUILDERS.register("item_semantic_graph")
class ItemSemanticGraphBuilder(GraphBuilder):
    """kNN item-item graph over the ``item_text`` artifact (directed unless ``symmetrize``)."""

    name = "item_semantic_graph"
    config_class = ItemSemanticGraphConfig
    requires = ("item_text",)
    directed = True

    def build(
        self,
        train: Interactions,
        artifacts: Mapping[str, Any] = NO_ARTIFACTS,
        config: ItemSemanticGraphConfig | None = None,
    ) -> GraphPart:
        config = config or ItemSemanticGraphConfig()
        require_interactions(train, self.name)
        features = np.asarray(self.artifact(artifacts, "item_text"))
        n = train.num_items
        if features.ndim != 2 or features.shape[0] != n or not np.isfinite(features).all():
            raise DataError(
                f"Graph builder '{self.name}': expected a finite ({n}, d) 'item_text' artifact "
                f"for the {n} items (got shape {features.shape})"
            )
        src, dst, cos, dropped = knn_edges(features, config.k, config.chunk_size)
        value = cos if config.weights == "cosine" else np.ones_like(cos)
        if config.symmetrize:
            # max(A, A^T): coalesce sums duplicates, so merge each pair's two directions first.
            both = np.concatenate([src * n + dst, dst * n + src])
            vals = np.concatenate([value, value])
            order = np.lexsort((vals, both))
            last = np.r_[both[order][1:] != both[order][:-1], True]
            key, value = both[order][last], vals[order][last]
            src, dst = key // n, key % n
        edge_index, raw = coalesce(src, dst, value, (n, n))
        has_text = np.any(features != 0, axis=1)
        meta = self.base_meta(train, config) | {
            "normalization": "D^-1/2 A D^-1/2 (D = row sums)",
            "directed": not config.symmetrize,
            "num_items": n,
            "items_without_text": int((~has_text).sum()),
            "non_positive_similarities_dropped": dropped,
            "edges": int(edge_index.size(1)),
        }
        return GraphPart(
            name=self.name,
            kind="graph",
            edge_index=edge_index,
            edge_weight=symmetric_normalize(edge_index, raw, n),
            shape=(n, n),
            node_offsets={"item": 0},
            meta=meta,
        )
