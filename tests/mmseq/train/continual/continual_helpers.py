"""Tiny hand-made interaction tables for the continual tests."""

from __future__ import annotations

import numpy as np

from mmseq.data.schema import Interactions


def table(user: list[int], item: list[int], time: list[int], num_users: int,
          num_items: int) -> Interactions:
    """An Interactions table with the given columns (ratings 1, no text)."""
    n = len(user)
    return Interactions(
        user=np.asarray(user, dtype=np.int64),
        item=np.asarray(item, dtype=np.int64),
        rating=np.ones(n, dtype=np.float32),
        timestamp=np.asarray(time, dtype=np.int64),
        user_ids=np.array([f"u{u}" for u in range(num_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(num_items)], dtype=object),
        meta={"source": "hand", "has_rating": False, "has_time": True},
    )


def cyclic_interactions(num_users: int = 24, per_user: int = 9, num_items: int = 12,
                        seed: int = 0) -> Interactions:
    """Users walk item cycles (item k is followed by k + 1 mod num_items) at random global times.

    Every user starts at a random item and time; times grow by one unit per step, so the global
    time order mixes users and every period holds several users' steps.
    """
    rng = np.random.default_rng(seed)
    start_item = rng.integers(0, num_items, num_users)
    start_time = rng.integers(0, 20, num_users)
    steps = np.arange(per_user)
    user = np.repeat(np.arange(num_users), per_user)
    item = ((start_item[:, None] + steps[None, :]) % num_items).ravel()
    time = (start_time[:, None] + steps[None, :]).ravel()
    return table(user.tolist(), item.tolist(), time.tolist(), num_users, num_items)
