"""Periods by global time (equal-size blocks or equal spans) and the items seen per period."""

from __future__ import annotations

import numpy as np
import pytest

from mmseq.errors import DataError
from mmseq.train.continual.periods import assign_periods, seen_items


def test_count_rule_cuts_equal_blocks_by_time() -> None:
    # Sorted times 1..6, T = 3: cuts at sorted rows 2 and 4 -> boundaries 3 and 5.
    periods = assign_periods(np.array([5, 1, 3, 2, 4, 6]), 3)
    assert periods.index.tolist() == [2, 0, 1, 0, 1, 2]
    assert periods.boundaries.tolist() == [3.0, 5.0]
    assert periods.sizes.tolist() == [2, 2, 2]


def test_count_rule_keeps_a_tie_group_together_in_the_later_period() -> None:
    # n = 6, T = 2: the cut falls on sorted row 3 (time 2), inside the tie group {2, 2, 2}.
    periods = assign_periods(np.array([1, 2, 2, 2, 3, 4]), 2)
    assert periods.index.tolist() == [0, 1, 1, 1, 1, 1]
    assert periods.sizes.tolist() == [1, 5]


def test_period_order_follows_time_not_row_order() -> None:
    rng = np.random.default_rng(3)
    times = rng.integers(0, 1000, 200)
    periods = assign_periods(times, 4)
    # Every time of period k is below every time of period k + 1.
    for k in range(3):
        assert times[periods.index == k].max() < times[periods.index == k + 1].min()
    assert periods.sizes.sum() == 200


def test_span_rule_cuts_equal_time_spans() -> None:
    periods = assign_periods(np.array([0, 1, 4, 5, 9, 10]), 2, rule="span")
    assert periods.boundaries.tolist() == [5.0]
    assert periods.index.tolist() == [0, 0, 0, 1, 1, 1]


def test_empty_period_is_an_error_naming_it() -> None:
    with pytest.raises(DataError, match=r"period\(s\) \[1\]"):
        assign_periods(np.array([1, 1, 1, 2]), 2)  # the boundary is time 1: period 1 is empty


@pytest.mark.parametrize("bad", [1, 0, True, 2.0])
def test_bad_period_count(bad: object) -> None:
    with pytest.raises(ValueError, match="num_periods"):
        assign_periods(np.array([1, 2, 3]), bad)  # type: ignore[arg-type]


def test_unknown_rule() -> None:
    with pytest.raises(ValueError, match="'count', 'span'"):
        assign_periods(np.array([1, 2, 3]), 2, rule="weeks")


def test_seen_items_accumulate_over_periods() -> None:
    item = np.array([0, 2, 2, 1, 3])
    period = np.array([1, 0, 1, 2, 2])
    seen = seen_items(item, period, num_items=5, num_periods=3)
    assert seen.tolist() == [
        [False, False, True, False, False],
        [True, False, True, False, False],
        [True, True, True, True, False],  # item 4 is never seen
    ]
