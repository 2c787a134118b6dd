"""Iterative k-core filtering on unique (user, item) pairs."""

from __future__ import annotations

import numpy as np

from mmseq.data.dedup import pair_keys
from mmseq.data.schema import Interactions
from mmseq.errors import ConfigError, DataError


def kcore_filter(data: Interactions, k: int) -> Interactions:
    """Keep the largest sub-table where every user and every item has >= ``k`` distinct partners.

    Degrees count unique (user, item) pairs, so duplicate rows do not help a user or item pass.
    Each round drops every user and item below ``k`` at once (``np.bincount`` over the surviving
    pairs) until nothing changes. All rows of surviving pairs are kept, in their order; ids are
    then re-indexed densely with :meth:`Interactions.compact`.

    Args:
        data: the interactions.
        k: the minimum number of distinct items per user and users per item (>= 1).

    Returns:
        The filtered, compacted table. ``meta["kcore"]`` holds ``k``, ``rounds`` (rounds that
        removed something) and the removed interactions, users and items.

    Raises:
        DataError: the k-core is empty (the message gives k and the input counts).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"Expected 'k' to be an integer >= 1 (got {k!r})")
    keys = np.unique(pair_keys(data))
    width = np.int64(max(data.num_items, 1))
    pair_user, pair_item = keys // width, keys % width
    alive = np.ones(len(keys), dtype=bool)
    rounds = 0
    while True:
        user_degree = np.bincount(pair_user[alive], minlength=data.num_users)
        item_degree = np.bincount(pair_item[alive], minlength=data.num_items)
        still = alive & (user_degree[pair_user] >= k) & (item_degree[pair_item] >= k)
        if still.sum() == alive.sum():
            break
        alive = still
        rounds += 1
    if not alive.any():
        raise DataError(
            f"{k}-core filtering of {data.meta.get('source', 'the data')} removes every row "
            f"(input: {len(data)} interactions, {len(keys)} unique (user, item) pairs, "
            f"{data.num_users} users, {data.num_items} items); use a smaller k or more data"
        )
    keep_user = np.zeros(data.num_users, dtype=bool)
    keep_user[pair_user[alive]] = True
    keep_item = np.zeros(data.num_items, dtype=bool)
    keep_item[pair_item[alive]] = True
    out = data.select(keep_user[data.user] & keep_item[data.item]).compact()
    report = {
        "k": int(k),
        "rounds": rounds,
        "removed_interactions": len(data) - len(out),
        "removed_users": int(np.unique(data.user).size) - out.num_users,
        "removed_items": int(np.unique(data.item).size) - out.num_items,
    }
    return out.with_meta(kcore=report)
