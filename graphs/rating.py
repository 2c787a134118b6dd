"""User-item bipartite graphs: binary (LightGCN) and rating-weighted (SD-MTMP, methods.md 1.2).

Both are stored as one square adjacency over users then items (``node_offsets = {"user": 0,
"item": num_users}``) holding ``L = D^-1/2 A D^-1/2`` with ``A = [[0, R], [R^T, 0]]``, ``D`` the
weighted degree and no self loops. ``R`` is 0/1 for ``"interaction_graph"`` and the rating for
``"rating_graph"``.

Repeated (user, item) training rows (the data layer normally removes them already) become ONE
edge. Its rating is chosen by ``RatingGraphConfig.duplicates``: ``"max"`` by default, because it
does not depend on row order or timestamp ties; ``"last"`` (most recent, ties by file order),
``"sum"`` and ``"mean"`` are the alternatives. The number merged is in ``meta``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from graphs.base import GRAPH_BUILDERS, NO_ARTIFACTS, GraphBuilder, coalesce, require_interactions
from graphs.normalize import symmetric_normalize
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions
from mmseq.errors import DataError

DuplicatePolicy = Literal["max", "last", "sum", "mean"]


def merge_duplicate_pairs(
    train: Interactions, values: np.ndarray, policy: DuplicatePolicy
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One value per distinct (user, item) pair of ``train``.

    Args:
        train: the interactions.
        values: (N,) one value per row (e.g. the rating).
        policy: ``"max"``, ``"last"`` (chronologically last; ties by file order), ``"sum"``,
            ``"mean"``.

    Returns:
        ``(user, item, value, merged)``: the pairs sorted by (user, item), their merged values and
        how many rows were merged away.
    """
    key = train.user.astype(np.int64) * train.num_items + train.item.astype(np.int64)
    values = np.asarray(values, dtype=np.float64)
    if policy in ("max", "last"):
        if policy == "max":
            secondary = values
        else:
            secondary = np.empty(len(train), dtype=np.int64)
            secondary[train.chronological_order()] = np.arange(len(train))
        order = np.lexsort((secondary, key))
        sorted_key = key[order]
        is_last = np.r_[sorted_key[1:] != sorted_key[:-1], True]
        chosen = order[is_last]
        uniq, merged_values = key[chosen], values[chosen]
    elif policy in ("sum", "mean"):
        uniq, inverse = np.unique(key, return_inverse=True)
        merged_values = np.bincount(inverse, weights=values, minlength=len(uniq))
        if policy == "mean":
            merged_values = merged_values / np.bincount(inverse, minlength=len(uniq))
    else:
        raise ValueError(
            f"Unknown duplicate policy {policy!r}; choices: ['max', 'last', 'sum', 'mean']"
        )
    user, item = uniq // train.num_items, uniq % train.num_items
    return user, item, merged_values, int(len(key) - len(uniq))


def bipartite_part(
    name: str,
    user: np.ndarray,
    item: np.ndarray,
    values: np.ndarray,
    num_users: int,
    num_items: int,
    meta: dict[str, Any],
) -> GraphPart:
    """The normalised square adjacency ``[[0, R], [R^T, 0]]`` as a kind-"graph" part."""
    n = num_users + num_items
    rows = np.concatenate([user, num_users + item])
    cols = np.concatenate([num_users + item, user])
    edge_index, raw = coalesce(rows, cols, np.concatenate([values, values]), (n, n))
    degree = np.bincount(edge_index[0].numpy(), minlength=n)
    meta = meta | {
        "normalization": "D^-1/2 A D^-1/2 (weighted degree; degree 0 -> 0)",
        "self_loops": False,
        "num_users": num_users,
        "num_items": num_items,
        "edges": int(len(user)),
        "isolated_users": int((degree[:num_users] == 0).sum()),
        "isolated_items": int((degree[num_users:] == 0).sum()),
    }
    return GraphPart(
        name=name,
        kind="graph",
        edge_index=edge_index,
        edge_weight=symmetric_normalize(edge_index, raw, n),
        shape=(n, n),
        node_offsets={"user": 0, "item": num_users},
        meta=meta,
    )


@dataclass(frozen=True)
class InteractionGraphConfig:
    """No settings: binary weights, symmetric normalisation, no self loops (LightGCN)."""


@GRAPH_BUILDERS.register("interaction_graph")
class InteractionGraphBuilder(GraphBuilder):
    """Binary user-item graph, symmetrically normalised (He et al., LightGCN, SIGIR 2020)."""

    name = "interaction_graph"
    config_class = InteractionGraphConfig

    def build(
        self,
        train: Interactions,
        artifacts: Mapping[str, Any] = NO_ARTIFACTS,
        config: InteractionGraphConfig | None = None,
    ) -> GraphPart:
        config = config or InteractionGraphConfig()
        require_interactions(train, self.name)
        user, item, ones, merged = merge_duplicate_pairs(train, np.ones(len(train)), "max")
        meta = self.base_meta(train, config) | {"weights": "binary", "duplicates_merged": merged}
        return bipartite_part(self.name, user, item, ones, train.num_users, train.num_items, meta)


@dataclass(frozen=True)
class RatingGraphConfig:
    """Settings of the rating-weighted user-item graph."""

    duplicates: DuplicatePolicy = "max"  # rating of a repeated (user, item) pair: max|last|sum|mean


@GRAPH_BUILDERS.register("rating_graph")
class RatingGraphBuilder(GraphBuilder):
    """Rating-weighted user-item graph ``D^-1/2 A D^-1/2``, ``A = [[0, R], [R^T, 0]]`` (SD-MTMP)."""

    name = "rating_graph"
    config_class = RatingGraphConfig

    def build(
        self,
        train: Interactions,
        artifacts: Mapping[str, Any] = NO_ARTIFACTS,
        config: RatingGraphConfig | None = None,
    ) -> GraphPart:
        config = config or RatingGraphConfig()
        require_interactions(train, self.name)
        rating = np.asarray(train.rating, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(rating) | (rating <= 0))
        if len(bad):
            raise DataError(
                f"Graph builder '{self.name}': expected positive finite ratings in the training "
                f"table (row {bad[0]} has {rating[bad[0]]!r}; {len(bad)} such rows)"
            )
        user, item, value, merged = merge_duplicate_pairs(train, rating, config.duplicates)
        meta = self.base_meta(train, config) | {"weights": "rating", "duplicates_merged": merged}
        return bipartite_part(self.name, user, item, value, train.num_users, train.num_items, meta)
