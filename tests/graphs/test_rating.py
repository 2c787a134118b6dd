"""graphs/rating.py: the binary and rating-weighted user-item graphs, worked out by hand."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from graphs.rating import (
    InteractionGraphBuilder,
    RatingGraphBuilder,
    RatingGraphConfig,
    merge_duplicate_pairs,
)
from mmseq.data.schema import Interactions
from mmseq.errors import DataError


def _dense(part) -> torch.Tensor:
    dense = torch.zeros(part.shape)
    dense[part.edge_index[0], part.edge_index[1]] = part.edge_weight
    return dense


def test_rating_graph_3_users_4_items_by_hand(tiny_interactions: Interactions) -> None:
    # R (users x items):     i0 i1 i2 i3      user degrees: u0 = 5+4+3+5 = 17
    #                  u0  [  5  4  3  5 ]                  u1 = 2+5+4   = 11
    #                  u1  [  0  2  5  4 ]                  u2 = 1+3+5   =  9
    #                  u2  [  1  0  3  5 ]    item degrees: i0 = 6, i1 = 6, i2 = 11, i3 = 14
    # L[u, m + i] = L[m + i, u] = r_ui / sqrt(d_u d_i), nodes users 0..2 then items 3..6.
    part = RatingGraphBuilder().build(tiny_interactions, config=RatingGraphConfig())
    expected_users_items = torch.tensor(
        [
            [
                5 / math.sqrt(17 * 6),
                4 / math.sqrt(17 * 6),
                3 / math.sqrt(17 * 11),
                5 / math.sqrt(17 * 14),
            ],
            [0.0, 2 / math.sqrt(11 * 6), 5 / math.sqrt(11 * 11), 4 / math.sqrt(11 * 14)],
            [1 / math.sqrt(9 * 6), 0.0, 3 / math.sqrt(9 * 11), 5 / math.sqrt(9 * 14)],
        ]
    )
    dense = _dense(part)
    assert part.kind == "graph" and part.shape == (7, 7)
    assert dict(part.node_offsets) == {"user": 0, "item": 3}
    torch.testing.assert_close(dense[:3, 3:], expected_users_items)
    torch.testing.assert_close(dense[3:, :3], expected_users_items.T)
    assert torch.equal(dense[:3, :3], torch.zeros(3, 3)) and torch.equal(
        dense[3:, 3:], torch.zeros(4, 4)
    )
    assert abs(float(dense[0, 3]) - 0.4951) < 1e-4  # 5 / sqrt(102)
    assert part.nnz == 20 and part.meta["edges"] == 10
    assert part.meta["weights"] == "rating" and part.meta["duplicates_merged"] == 0


def test_interaction_graph_is_binary_lightgcn_norm_by_hand(tiny_interactions: Interactions) -> None:
    # Binary degrees: users (4, 3, 3), items (2, 2, 3, 3): L = 1 / sqrt(d_u d_i).
    part = InteractionGraphBuilder().build(tiny_interactions)
    dense = _dense(part)
    torch.testing.assert_close(dense[0, 3], torch.tensor(1 / math.sqrt(8)))
    torch.testing.assert_close(dense[1, 5], torch.tensor(1 / 3))
    torch.testing.assert_close(dense[2, 6], torch.tensor(1 / 3))
    assert float(dense[1, 3]) == 0.0
    torch.testing.assert_close(dense, dense.T)
    # Sorted row-major: a fixed layout independent of the input row order.
    key = part.edge_index[0] * 7 + part.edge_index[1]
    assert torch.all(key[1:] > key[:-1])


def test_user_without_training_rows_is_an_isolated_zero_row(
    tiny_interactions: Interactions,
) -> None:
    data = dataclasses.replace(
        tiny_interactions, user_ids=np.array(["u0", "u1", "u2", "u3"], dtype=object)
    )
    part = RatingGraphBuilder().build(data, config=RatingGraphConfig())
    assert part.shape == (8, 8) and part.meta["isolated_users"] == 1
    dense = _dense(part)
    assert torch.isfinite(dense).all() and float(dense[3].abs().sum()) == 0.0


def _with_duplicates(tiny: Interactions) -> Interactions:
    # Append (u0, i0) twice more: ratings 2 (at t = 9 days) and 3 (t = 0, the earliest).
    extra = tiny.select(np.array([0, 0]))
    extra = dataclasses.replace(
        extra, rating=np.array([2.0, 3.0], np.float32), timestamp=np.array([9, 0]) * 86400
    )
    return tiny.concat(extra)


@pytest.mark.parametrize(
    ("policy", "value"), [("max", 5.0), ("last", 2.0), ("sum", 10.0), ("mean", 10.0 / 3)]
)
def test_duplicate_pairs_follow_the_documented_policy(
    tiny_interactions: Interactions, policy: str, value: float
) -> None:
    data = _with_duplicates(tiny_interactions)
    user, item, merged_values, merged = merge_duplicate_pairs(data, data.rating, policy)
    assert merged == 2 and len(user) == 10
    assert merged_values[(user == 0) & (item == 0)][0] == pytest.approx(value)
    part = RatingGraphBuilder().build(
        data, config=RatingGraphConfig(duplicates=policy)
    )
    assert part.meta["duplicates_merged"] == 2 and part.nnz == 20


def test_empty_training_table_is_a_data_error(tiny_interactions: Interactions) -> None:
    empty = tiny_interactions.select(np.zeros(len(tiny_interactions), dtype=bool))
    for builder in (RatingGraphBuilder(), InteractionGraphBuilder()):
        with pytest.raises(DataError, match="no interactions"):
            builder.build(empty)


def test_non_positive_rating_is_a_data_error_naming_the_row(
    tiny_interactions: Interactions,
) -> None:
    rating = tiny_interactions.rating.copy()
    rating[4] = 0.0
    bad = dataclasses.replace(tiny_interactions, rating=rating)
    with pytest.raises(DataError, match="row 4"):
        RatingGraphBuilder().build(bad)
