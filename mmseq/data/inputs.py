"""Model inputs: the history table as device-ready tensors plus per-user padded sequences.

:class:`ModelInputs` lives here, in the data layer, because it is plain data that
``mmseq.data`` builds and both ``mmseq.models`` and ``mmseq.eval`` read (the layer test forbids
``mmseq.data`` -> ``mmseq.models``); ``mmseq.models.base`` re-exports it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions
from mmseq.errors import DataError


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Everything a model may look at, as tensors on one device.

    The history is the fit part of the split while training and validating, and fit + valid when
    scoring the test set (shared/docs/protocols.md). Graph parts are built from the fit part only.

    Attributes:
        num_users, num_items: sizes of the id space.
        user, item: (N,) int64 history interactions, chronological per user.
        rating: (N,) float32.
        timestamp: (N,) int64 seconds (or positions, for data without time).
        seq_items: (num_users, L) int64, the last L history items of each user, item index + 1,
            left-padded with 0 (most recent item in the last column).
        seq_ratings: (num_users, L) float32, aligned with ``seq_items`` (0 at padding).
        seq_times: (num_users, L) int64 seconds, aligned with ``seq_items`` (0 at padding).
        seq_lengths: (num_users,) int64 number of non-padding entries (<= L).
        graphs: graph parts by name (e.g. ``"interaction_graph"``, ``"rating_graph"``).
        extras: other named tensors (e.g. ``"item_attributes"`` (num_items, A) dense/sparse).
    """

    num_users: int
    num_items: int
    user: Tensor
    item: Tensor
    rating: Tensor
    timestamp: Tensor
    seq_items: Tensor
    seq_ratings: Tensor
    seq_times: Tensor
    seq_lengths: Tensor
    graphs: Mapping[str, GraphPart] = field(default_factory=dict)
    extras: Mapping[str, Tensor] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.user.device

    def to(self, device: torch.device | str) -> ModelInputs:
        moved: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                moved[f.name] = v.to(device)
        moved["graphs"] = {k: g.to(device) for k, g in self.graphs.items()}
        moved["extras"] = {k: t.to(device) for k, t in self.extras.items()}
        return dataclasses.replace(self, **moved)


def build_model_inputs(
    history: Interactions,
    *,
    max_len: int,
    graphs: Mapping[str, GraphPart] | None = None,
    extras: Mapping[str, Tensor] | None = None,
) -> ModelInputs:
    """Tensors of ``history`` (on CPU) with each user's last ``max_len`` items as a padded row.

    Rows are ordered by (user, timestamp), stably (ties keep the table's row order, which is how
    the splits order a user's history). Users without history get an all-padding row.

    Args:
        history: the interactions a model may see (the split's history for the stage).
        max_len: width L of the sequence matrices (>= 1).
        graphs: graph parts by name, passed through (each must fit the id space).
        extras: other named tensors, passed through.

    Returns:
        A :class:`ModelInputs`; ``seq_items[u, L - 1]`` is ``u``'s most recent item + 1.

    Shapes:
        user/item/rating/timestamp: (N,); seq_*: (num_users, max_len); seq_lengths: (num_users,).
    """
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"Expected 'max_len' to be a positive integer (got {max_len!r})")
    num_users, num_items = history.num_users, history.num_items
    order = history.chronological_order()
    user = history.user[order].astype(np.int64)
    item = history.item[order].astype(np.int64)
    rating = history.rating[order].astype(np.float32)
    timestamp = history.timestamp[order].astype(np.int64)

    counts = np.bincount(user, minlength=num_users)
    ends = np.cumsum(counts)  # row index one past each user's last (most recent) row
    from_end = ends[user] - 1 - np.arange(len(user))  # 0 = the user's most recent row
    keep = from_end < max_len
    rows, cols = user[keep], max_len - 1 - from_end[keep]
    seq_items = np.zeros((num_users, max_len), dtype=np.int64)
    seq_ratings = np.zeros((num_users, max_len), dtype=np.float32)
    seq_times = np.zeros((num_users, max_len), dtype=np.int64)
    seq_items[rows, cols] = item[keep] + 1
    seq_ratings[rows, cols] = rating[keep]
    seq_times[rows, cols] = timestamp[keep]

    parts = dict(graphs or {})
    for name, part in parts.items():
        _check_graph(name, part, num_users, num_items)
    return ModelInputs(
        num_users=num_users,
        num_items=num_items,
        user=torch.from_numpy(user),
        item=torch.from_numpy(item),
        rating=torch.from_numpy(rating),
        timestamp=torch.from_numpy(timestamp),
        seq_items=torch.from_numpy(seq_items),
        seq_ratings=torch.from_numpy(seq_ratings),
        seq_times=torch.from_numpy(seq_times),
        seq_lengths=torch.from_numpy(np.minimum(counts, max_len).astype(np.int64)),
        graphs=parts,
        extras=dict(extras or {}),
    )


def _check_graph(name: str, part: GraphPart, num_users: int, num_items: int) -> None:
    if not isinstance(part, GraphPart):
        raise TypeError(f"Expected graphs['{name}'] to be a GraphPart (got {type(part).__name__})")
    offsets = dict(part.node_offsets)
    if part.kind == "graph" and offsets.get("user") == 0 and "item" in offsets:
        n = num_users + num_items
        if offsets["item"] != num_users or tuple(part.shape) != (n, n):
            raise DataError(
                f"Expected graph '{name}' to have shape ({n}, {n}) with items from {num_users} "
                f"(got shape {tuple(part.shape)}, offsets {offsets}); "
                "was it built for another data set?"
            )
