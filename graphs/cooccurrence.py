"""Extra modalities no model hard-codes: item co-occurrence graph and item-attribute hypergraph.

* ``"item_cooccurrence"``: items are linked when one follows the other within ``window`` steps
  of a user's chronological TRAINING sequence (ties in time keep file order). ``A[a, b]`` counts
  such transitions in either direction (symmetric); repeats of the same item are not self loops
  (they are counted in ``meta`` and skipped). Stored as ``D^-1/2 A D^-1/2`` by default.
* ``"item_attribute_hypergraph"``: one hyperedge per attribute of ``Interactions.item_attributes``
  (e.g. S3-Rec's item2attributes), holding every item with that attribute. Attributes describe
  items, not interactions, so they carry no held-out information.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from graphs.base import GRAPH_BUILDERS, GraphBuilder, coalesce, require_interactions
from graphs.normalize import symmetric_normalize
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions, TopicAssignments
from mmseq.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemCooccurrenceConfig:
    """Settings of the item co-occurrence graph."""

    window: int = 1  # link each item to the next `window` items of the same user's sequence
    min_count: int = 1  # keep item pairs seen at least this many times (>= 1)
    normalize: bool = True  # store D^-1/2 A D^-1/2 (True) or the raw counts (False)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"Expected 'window' >= 1 (got {self.window})")
        if self.min_count < 1:
            raise ValueError(f"Expected 'min_count' >= 1 (got {self.min_count})")


def sequence_pairs(train: Interactions, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) item pairs with b at most ``window`` steps after a in one user's training sequence."""
    order = train.chronological_order()
    user, item = train.user[order], train.item[order]
    firsts, seconds = [], []
    for offset in range(1, window + 1):  # a loop over offsets, not over users
        same_user = user[offset:] == user[:-offset]
        firsts.append(item[:-offset][same_user])
        seconds.append(item[offset:][same_user])
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64)


@GRAPH_BUILDERS.register("item_cooccurrence")
class ItemCooccurrenceBuilder(GraphBuilder):
    """Item-item graph of consecutive items in users' training sequences."""

    name = "item_cooccurrence"
    config_class = ItemCooccurrenceConfig

    def build(
        self,
        train: Interactions,
        *,
        topics: TopicAssignments | None = None,
        config: ItemCooccurrenceConfig | None = None,
    ) -> GraphPart:
        config = config or ItemCooccurrenceConfig()
        require_interactions(train, self.name)
        n = train.num_items
        first, second = sequence_pairs(train, config.window)
        distinct = first != second
        a, b = first[distinct], second[distinct]
        edge_index, counts = coalesce(
            np.concatenate([a, b]), np.concatenate([b, a]), np.ones(2 * len(a)), (n, n)
        )
        keep = counts >= config.min_count
        edge_index, counts = edge_index[:, keep], counts[keep]
        if edge_index.size(1) == 0:
            logger.warning(
                "%s: no item pair passed (window %d, min_count %d): empty graph",
                self.name,
                config.window,
                config.min_count,
            )
        weight = symmetric_normalize(edge_index, counts, n) if config.normalize else counts
        meta = self.base_meta(train, config) | {
            "normalization": "D^-1/2 A D^-1/2" if config.normalize else "none (counts)",
            "num_items": n,
            "transitions": int(len(first)),
            "repeat_transitions_skipped": int((~distinct).sum()),
            "pairs_below_min_count": int((~keep).sum() // 2),
            "edges": int(edge_index.size(1) // 2),
            "isolated_items": int(n - len(np.unique(edge_index[0].numpy()))),
        }
        return GraphPart(
            name=self.name,
            kind="graph",
            edge_index=edge_index,
            edge_weight=weight,
            shape=(n, n),
            node_offsets={"item": 0},
            meta=meta,
        )


@dataclass(frozen=True)
class ItemAttributeHypergraphConfig:
    """No settings: binary incidence, one hyperedge per attribute column (empty ones kept)."""


@GRAPH_BUILDERS.register("item_attribute_hypergraph")
class ItemAttributeHypergraphBuilder(GraphBuilder):
    """Items x attributes incidence from ``Interactions.item_attributes``."""

    name = "item_attribute_hypergraph"
    config_class = ItemAttributeHypergraphConfig

    def build(
        self,
        train: Interactions,
        *,
        topics: TopicAssignments | None = None,
        config: ItemAttributeHypergraphConfig | None = None,
    ) -> GraphPart:
        config = config or ItemAttributeHypergraphConfig()
        require_interactions(train, self.name)
        if train.item_attributes is None:
            raise DataError(
                f"Graph builder '{self.name}': the data set has no item attributes "
                "(Interactions.item_attributes is None; source: "
                f"{train.meta.get('source', 'unknown')})"
            )
        attrs = sp.coo_matrix(train.item_attributes)
        values = np.asarray(attrs.data, dtype=np.float64)
        if values.size and (not np.isfinite(values).all() or values.min() < 0):
            raise DataError(f"Graph builder '{self.name}': item_attributes must be finite and >= 0")
        present = values > 0
        rows, cols = attrs.row[present], attrs.col[present]
        num_items, num_attributes = attrs.shape
        edge_index, weight = coalesce(rows, cols, np.ones(len(rows)), (num_items, num_attributes))
        weight = weight.clamp(max=1.0)  # binary even if the CSR held duplicate entries
        meta = self.base_meta(train, config) | {
            "num_items": int(num_items),
            "num_attributes": int(num_attributes),
            "memberships": int(edge_index.size(1)),
            "items_without_attribute": int(num_items - len(np.unique(rows))),
            "empty_attributes": int(num_attributes - len(np.unique(cols))),
        }
        return GraphPart(
            name=self.name,
            kind="hypergraph",
            edge_index=edge_index,
            edge_weight=weight,
            shape=(num_items, num_attributes),
            node_offsets={"item": 0},
            meta=meta,
        )
