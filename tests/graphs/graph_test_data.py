"""Test data for the graph tests (imported by conftest and the test modules)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mmseq.data.schema import Interactions, TopicAssignments


def topics_from(train: Interactions, k: int = 3, dim: int = 4) -> TopicAssignments:
    """Deterministic stand-in for the topic stage, computed from ``train`` rows only.

    Each training row contributes one "sentence" to topic ``item % k`` (and a second one to
    topic ``(item + 1) % k`` when the rating is 5), for its user and its item.
    """
    topic = train.item % k
    extra = train.rating >= 5
    rows_u = np.concatenate([train.user, train.user[extra]])
    rows_i = np.concatenate([train.item, train.item[extra]])
    cols = np.concatenate([topic, (train.item[extra] + 1) % k])
    ones = np.ones(len(cols), dtype=np.float32)
    user_topic = sp.csr_matrix((ones, (rows_u, cols)), shape=(train.num_users, k))
    item_topic = sp.csr_matrix((ones, (rows_i, cols)), shape=(train.num_items, k))
    emb = np.arange(k * dim, dtype=np.float32).reshape(k, dim) / 10.0
    return TopicAssignments(
        emb, user_topic, item_topic, tuple(f"t{g}" for g in range(k)), meta={"source": "tests"}
    )


def synthetic_log(
    num_users: int = 12, num_items: int = 9, per_user: int = 6, seed: int = 0
) -> Interactions:
    """Every user rates ``per_user`` distinct items at distinct times; items have 3 attributes."""
    rng = np.random.default_rng(seed)
    items = np.argsort(rng.random((num_users, num_items)), axis=1)[:, :per_user]
    user = np.repeat(np.arange(num_users), per_user)
    item = items.reshape(-1)
    order = rng.permutation(len(user))  # file order differs from time order
    attrs = sp.csr_matrix(
        (np.arange(num_items)[:, None] % np.array([2, 3, 4]) == 0).astype(np.float32)
    )
    return Interactions(
        user=user[order].astype(np.int64),
        item=item[order].astype(np.int64),
        rating=rng.integers(1, 6, len(user)).astype(np.float32)[order],
        timestamp=(np.tile(np.arange(per_user), num_users) * 100 + user)[order].astype(np.int64),
        user_ids=np.array([f"u{j}" for j in range(num_users)], dtype=object),
        item_ids=np.array([f"i{j}" for j in range(num_items)], dtype=object),
        item_attributes=attrs,
        meta={"source": "synthetic_log"},
    )


def chronological_fit(data: Interactions, held_out: int = 2) -> np.ndarray:
    """Boolean mask of the fit rows: all but each user's last ``held_out`` interactions."""
    order = data.chronological_order()
    user = data.user[order]
    counts = np.bincount(user, minlength=data.num_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(order)) - starts[user]
    fit = np.zeros(len(data), dtype=bool)
    fit[order] = position < counts[user] - held_out
    return fit


def item_text_from(train: Interactions, dim: int = 5) -> np.ndarray:
    """Deterministic stand-in for the ``item_text`` stage, from ``train`` rows only.

    Each row contributes ``rating * onehot(user % dim) + onehot((user + 1) % dim)`` to its item;
    an item's feature is the mean over its rows (zeros for an item with no row).
    """
    contrib = np.zeros((len(train), dim))
    rows = np.arange(len(train))
    contrib[rows, train.user % dim] += train.rating
    contrib[rows, (train.user + 1) % dim] += 1.0
    total = np.zeros((train.num_items, dim))
    np.add.at(total, train.item, contrib)
    counts = np.bincount(train.item, minlength=train.num_items)[:, None]
    return (total / np.maximum(counts, 1)).astype(np.float32)


def stand_in_artifacts(train: Interactions, k: int | None = None) -> dict:
    """Stand-ins for every built-in stage, each computed from ``train`` only."""
    return {
        "topics": topics_from(train, k=train.num_items if k is None else k),
        "item_text": item_text_from(train),
    }
