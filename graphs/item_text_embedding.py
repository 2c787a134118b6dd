"""Item text embedding (``"item_text_embedding"``): each item's review-text vector, a node feature.

Text-aware sequential recommenders add a projection of the item's text embedding to its ID
embedding. This builder carries the ``item_text`` stage's artifact (mean embedding of the item's
TRAINING review sentences, topics/item_text.py) into the graph bundle, so that models receive it
through their inputs like every other modality:

    ``features["text"]``: (num_items, d_text) float32, ``x_i = mean_{s in S_i} e(s)``
    (optionally scaled to unit L2 norm, ``normalize: l2``).

Structure: an edgeless ``"graph"`` over the items (``shape = (n, n)``, ``node_offsets =
{"item": 0}``, ``nnz = 0``): a node-feature part, the PyG convention of ``x`` with an empty
``edge_index``. Items without a training sentence keep the zero row (counted in
``meta.items_without_text``), whatever ``normalize`` says. Leak-free because the stage reads the
fit rows only; the builder reads nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from graphs.base import GRAPH_BUILDERS, NO_ARTIFACTS, GraphBuilder, require_interactions
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions
from mmseq.errors import DataError

#: The name of the dense feature this builder emits (models read ``part.features[TEXT_FEATURE]``).
TEXT_FEATURE = "text"


@dataclass(frozen=True)
class ItemTextEmbeddingConfig:
    """Settings of the item text feature."""

    normalize: Literal["none", "l2"] = "none"  # none: the stage's mean as is; l2: unit rows


@GRAPH_BUILDERS.register("item_text_embedding")
class ItemTextEmbeddingBuilder(GraphBuilder):
    """Edgeless item part carrying ``features["text"]`` (n, d_text) from the ``item_text`` stage."""

    name = "item_text_embedding"
    config_class = ItemTextEmbeddingConfig
    requires = ("item_text",)
    features_only: ClassVar[bool] = True

    def build(
        self,
        train: Interactions,
        artifacts: Mapping[str, Any] = NO_ARTIFACTS,
        config: ItemTextEmbeddingConfig | None = None,
    ) -> GraphPart:
        config = config or ItemTextEmbeddingConfig()
        require_interactions(train, self.name)
        features = np.asarray(self.artifact(artifacts, "item_text"), dtype=np.float32)
        n = train.num_items
        if features.ndim != 2 or features.shape[0] != n or not np.isfinite(features).all():
            raise DataError(
                f"Graph builder '{self.name}': expected a finite ({n}, d) 'item_text' artifact "
                f"for the {n} items (got shape {features.shape})"
            )
        has_text = np.any(features != 0, axis=1)  # (n,)
        if config.normalize == "l2":
            norm = np.linalg.norm(features.astype(np.float64), axis=1, keepdims=True)
            features = np.divide(
                features, norm, out=np.zeros_like(features), where=norm > 0
            ).astype(np.float32)
        meta = self.base_meta(train, config) | {
            "num_items": n,
            "text_dim": int(features.shape[1]),
            "items_with_text": int(has_text.sum()),
            "items_without_text": int((~has_text).sum()),
        }
        return GraphPart(
            name=self.name,
            kind="graph",
            edge_index=torch.zeros(2, 0, dtype=torch.int64),
            edge_weight=torch.zeros(0, dtype=torch.float32),
            shape=(n, n),
            node_offsets={"item": 0},
            features={TEXT_FEATURE: torch.from_numpy(np.ascontiguousarray(features))},
            meta=meta,
        )
