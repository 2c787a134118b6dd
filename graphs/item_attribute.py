"""Item-attribute hypergraph (``"item_attribute_hypergraph"``) from ``item_attributes``.

One hyperedge per attribute (e.g. S3-Rec's ``item2attributes`` for Beauty, Toys, Sports, Yelp and
LastFM, which the readers load), holding every item with that attribute. Attributes describe
items, not interactions, so they carry no held-out information and need no artifact stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphs.base import GRAPH_BUILDERS, NO_ARTIFACTS, GraphBuilder, coalesce, require_interactions
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions
from mmseq.errors import DataError


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
        artifacts: Mapping[str, Any] = NO_ARTIFACTS,
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
