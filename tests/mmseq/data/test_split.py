"""Chronological splits: hand-worked part sizes, tie order, drops, history, leak-freedom."""

from __future__ import annotations

import numpy as np
import pytest

from mmseq.data.schema import Interactions
from mmseq.data.split import PROTOCOLS, split_interactions
from mmseq.errors import ConfigError, DataError


def make_table(user, item, timestamp, num_users=None, num_items=None) -> Interactions:
    user = np.asarray(user, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    num_users = int(user.max()) + 1 if num_users is None else num_users
    num_items = int(item.max()) + 1 if num_items is None else num_items
    return Interactions(
        user=user,
        item=item,
        rating=np.ones(len(user), dtype=np.float32),
        timestamp=np.asarray(timestamp, dtype=np.int64),
        user_ids=np.array([f"u{i}" for i in range(num_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(num_items)], dtype=object),
        review=np.array([f"row{r}" for r in range(len(user))], dtype=object),
        meta={"source": "hand"},
    )


def one_user(n: int) -> Interactions:
    """One user with items 0..n-1 at times 0..n-1."""
    return make_table(np.zeros(n), np.arange(n), np.arange(n))


def pairs(table: Interactions) -> list[tuple[int, int]]:
    return list(zip(table.user.tolist(), table.item.tolist()))


def test_tiny_fixture_parts(tiny_interactions: Interactions) -> None:
    # user 0: items 0,1,2,3 (n=4): floor(3.2)=3 train -> valid item 2, fit items 0,1, test item 3.
    # user 1: items 1,2,3 (n=3): floor(2.4)=2 train -> fit 1, valid 2, test 3.
    # user 2: items 0,2,3 at t=2,2,6 (tie: file order 0 then 2) -> fit 0, valid 2, test 3.
    # Leave-one-out gives the same parts for n=3 and n=4.
    for protocol in PROTOCOLS:
        split = split_interactions(tiny_interactions, protocol)
        assert pairs(split.fit) == [(0, 0), (0, 1), (1, 1), (2, 0)]
        assert pairs(split.valid) == [(0, 2), (1, 2), (2, 2)]
        assert pairs(split.test) == [(0, 3), (1, 3), (2, 3)]
        assert split.protocol == protocol
        assert split.meta["users_dropped_fewer_than_3"] == 0
        # Review text travels with its row.
        assert split.fit.review.tolist() == [
            tiny_interactions.review[r] for r in (0, 1, 4, 7)
        ]


@pytest.mark.parametrize(
    ("n", "fit", "valid", "test"),
    [
        (3, 1, 1, 1),  # floor(2.4)=2 train, max(1, floor(0.2))=1 valid
        (4, 2, 1, 1),  # floor(3.2)=3
        (5, 3, 1, 1),  # floor(4.0)=4
        (9, 6, 1, 2),  # floor(7.2)=7
        (10, 7, 1, 2),  # 8 train
        (24, 18, 1, 5),  # floor(19.2)=19 train, floor(1.9)=1 valid
        (25, 18, 2, 5),  # 20 train, floor(2.0)=2 valid
        (100, 72, 8, 20),  # 80 train, 8 valid
    ],
)
def test_ratio_part_sizes(n: int, fit: int, valid: int, test: int) -> None:
    split = split_interactions(one_user(n), "ratio-80-20")
    assert (len(split.fit), len(split.valid), len(split.test)) == (fit, valid, test)
    # Chronological: fit is the oldest items, test the newest.
    assert split.fit.item.tolist() == list(range(fit))
    assert split.valid.item.tolist() == list(range(fit, fit + valid))
    assert split.test.item.tolist() == list(range(fit + valid, n))


@pytest.mark.parametrize("protocol", ["loo-full", "loo-sampled99"])
@pytest.mark.parametrize("n", [3, 10, 25])
def test_leave_one_out_part_sizes(protocol: str, n: int) -> None:
    split = split_interactions(one_user(n), protocol)
    assert split.fit.item.tolist() == list(range(n - 2))
    assert split.valid.item.tolist() == [n - 2]
    assert split.test.item.tolist() == [n - 1]


def test_time_order_and_ties_keep_file_order() -> None:
    # Rows out of time order; items 4 and 1 share t=5 (file order: 4 first), and so do 7 and 2.
    table = make_table(
        user=[0, 0, 0, 0, 0, 0],
        item=[4, 3, 1, 7, 2, 0],
        timestamp=[5, 9, 5, 1, 1, 0],
    )
    split = split_interactions(table, "loo-full")
    # chronological: item 0 (t0), 7 (t1), 2 (t1), 4 (t5), 1 (t5), 3 (t9)
    assert split.fit.item.tolist() == [0, 7, 2, 4]
    assert split.valid.item.tolist() == [1]
    assert split.test.item.tolist() == [3]
    assert split.fit.timestamp.tolist() == [0, 1, 1, 5]


def test_short_users_are_dropped_and_counted() -> None:
    # user 0: 3 rows (kept); user 1: 2 rows; user 2: 1 row; user 3: none at all.
    table = make_table(
        user=[0, 1, 0, 2, 1, 0], item=[0, 1, 2, 3, 4, 5], timestamp=[1, 1, 2, 1, 2, 3],
        num_users=4,
    )
    split = split_interactions(table, "ratio-80-20")
    assert split.meta["users"] == 3
    assert split.meta["users_kept"] == 1
    assert split.meta["users_dropped_fewer_than_3"] == 2
    assert split.meta["rows_dropped"] == 3
    assert (split.meta["fit_rows"], split.meta["valid_rows"], split.meta["test_rows"]) == (1, 1, 1)
    # Same id space as the input: dropped users keep their index, they just have no rows.
    for part in (split.fit, split.valid, split.test):
        assert part.num_users == 4 and part.num_items == 6
        assert part.user_ids is table.user_ids
        assert set(part.user.tolist()) == {0}


def test_history_stages() -> None:
    split = split_interactions(one_user(10), "ratio-80-20")
    assert split.history("valid") is split.fit
    assert split.history("test").item.tolist() == list(range(8))
    with pytest.raises(ValueError, match="'stage'"):
        split.history("train")


def test_history_test_is_chronological_with_ties_across_parts() -> None:
    # All rows share one timestamp: order is file order, and fit + valid must keep it.
    table = make_table(user=[1, 0, 1, 0, 1, 0, 1], item=[6, 5, 4, 3, 2, 1, 0],
                       timestamp=[7] * 7)
    split = split_interactions(table, "loo-full")
    hist = split.history("test")
    assert pairs(hist) == [(0, 5), (0, 3), (1, 6), (1, 4), (1, 2)]
    assert pairs(split.test) == [(0, 1), (1, 0)]


def test_parts_partition_kept_rows_without_leaks() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    table = make_table(rng.integers(0, 300, n), rng.integers(0, 500, n), rng.integers(0, 50, n),
                       num_users=300, num_items=500)
    counts = np.bincount(table.user, minlength=300)
    for protocol in PROTOCOLS:
        split = split_interactions(table, protocol)
        kept_rows = int(counts[counts >= 3].sum())
        assert len(split.fit) + len(split.valid) + len(split.test) == kept_rows
        # Every review (a row id here) appears exactly once over the three parts.
        rows = np.concatenate([split.fit.review, split.valid.review, split.test.review])
        assert len(set(rows.tolist())) == kept_rows
        # Per user: nothing in fit is later than valid, nothing in valid later than test.
        for earlier, later in ((split.fit, split.valid), (split.valid, split.test)):
            last = np.full(300, -1)
            np.maximum.at(last, earlier.user, earlier.timestamp)
            first = np.full(300, 10**9)
            np.minimum.at(first, later.user, later.timestamp)
            assert np.all(last <= first)
        kept = np.flatnonzero(counts >= 3)
        for part in (split.fit, split.valid, split.test):
            assert np.array_equal(np.unique(part.user), kept)


def test_unknown_protocol_names_choices() -> None:
    with pytest.raises(ConfigError, match="did you mean 'loo-full'"):
        split_interactions(one_user(5), "loo-ful")


def test_no_user_long_enough_is_an_error() -> None:
    with pytest.raises(DataError, match=">= 3 interactions"):
        split_interactions(make_table([0, 0, 1], [0, 1, 2], [0, 1, 2]), "loo-full")
