"""Duplicate (user, item) rows: keep one row per pair.

Amazon 2018 "5-core" files repeat a review for several style variants of one product (see the
MANIFEST notes in shared/data), so the same (user, item) pair can occur many times.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from mmseq.data.schema import Interactions
from mmseq.errors import ConfigError

DEDUP_POLICIES = ("first", "last")


def pair_keys(data: Interactions) -> np.ndarray:
    """One int64 key per row identifying its (user, item) pair: ``user * num_items + item``."""
    return data.user.astype(np.int64) * np.int64(max(data.num_items, 1)) + data.item


def deduplicate(data: Interactions, policy: Literal["first", "last"] = "first") -> Interactions:
    """Keep one row per (user, item) pair, in the original row order.

    Args:
        data: the interactions.
        policy: "first" keeps the pair's first row in file order (its rating, time and text);
            "last" keeps its last row (default: "first").

    Returns:
        The kept rows in the SAME id space (every user and item keeps at least one row).
        ``meta["duplicates_removed"]`` adds the number of rows dropped; ``meta["dedup_policy"]``
        records the policy.
    """
    if policy not in DEDUP_POLICIES:
        raise ConfigError(f"Expected 'policy' to be one of {list(DEDUP_POLICIES)} (got {policy!r})")
    keys = pair_keys(data)
    if policy == "first":
        _, rows = np.unique(keys, return_index=True)
    else:
        _, rev = np.unique(keys[::-1], return_index=True)
        rows = len(keys) - 1 - rev
    rows = np.sort(rows)
    removed = len(data) - len(rows)
    out = data if removed == 0 else data.select(rows)
    previous = int(data.meta.get("duplicates_removed", 0))
    return out.with_meta(duplicates_removed=previous + removed, dedup_policy=policy)
