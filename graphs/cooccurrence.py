"""Item co-occurrence graph (``"item_cooccurrence"``), a modality no model hard-codes.

Items are linked when one follows the other within ``window`` steps of a user's chronological
TRAINING sequence (ties in time keep file order). ``A[a, b]`` counts such transitions in either
direction (symmetric); repeats of the same item are not self loops (they are counted in ``meta``
and skipped). Stored as ``D^-1/2 A D^-1/2`` by default.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphs.base import GRAPH_BUILDERS, NO_ARTIFACTS, GraphBuilder, coalesce, require_interactions
from graphs.normalize import symmetric_normalize
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions

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
        artifacts: Mapping[str, Any] = NO_ARTIFACTS,
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
