"""build_model_inputs: chronological order, left-padded sequences, hand-computed on tiny tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmseq.data.graph_bundle import GraphPart
from mmseq.data.inputs import ModelInputs, build_model_inputs
from mmseq.data.schema import Interactions
from mmseq.errors import DataError

DAY = 86400


def _table(user, item, ts, num_users, num_items, rating=None) -> Interactions:
    n = len(user)
    return Interactions(
        user=np.asarray(user, dtype=np.int64),
        item=np.asarray(item, dtype=np.int64),
        rating=np.asarray(rating if rating is not None else np.ones(n), dtype=np.float32),
        timestamp=np.asarray(ts, dtype=np.int64),
        user_ids=np.array([f"u{i}" for i in range(num_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(num_items)], dtype=object),
    )


def test_tiny_table_by_hand(tiny_interactions: Interactions) -> None:
    # user 0: items 0,1,2,3 (t=1,2,3,4 d); user 1: 1,2,3 (t=1,3,5 d); user 2: 0,2,3 (t=2,2,6 d)
    inputs = build_model_inputs(tiny_interactions, max_len=4)
    assert isinstance(inputs, ModelInputs)
    assert (inputs.num_users, inputs.num_items) == (3, 4)
    assert inputs.seq_items.tolist() == [[1, 2, 3, 4], [0, 2, 3, 4], [0, 1, 3, 4]]
    assert inputs.seq_ratings.tolist() == [[5, 4, 3, 5], [0, 2, 5, 4], [0, 1, 3, 5]]
    assert (inputs.seq_times // DAY).tolist() == [[1, 2, 3, 4], [0, 1, 3, 5], [0, 2, 2, 6]]
    assert inputs.seq_lengths.tolist() == [4, 3, 3]
    assert inputs.user.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert inputs.item.tolist() == [0, 1, 2, 3, 1, 2, 3, 0, 2, 3]
    assert inputs.user.dtype == inputs.seq_items.dtype == torch.int64
    assert inputs.rating.dtype == inputs.seq_ratings.dtype == torch.float32


def test_truncates_to_most_recent_items(tiny_interactions: Interactions) -> None:
    inputs = build_model_inputs(tiny_interactions, max_len=2)
    assert inputs.seq_items.tolist() == [[3, 4], [3, 4], [3, 4]]
    assert inputs.seq_lengths.tolist() == [2, 2, 2]
    assert len(inputs.user) == 10  # the flat history is never truncated


def test_shuffled_rows_sorted_by_time_ties_keep_file_order() -> None:
    # user 1 rows in file order: item 4 @t=9, item 2 @t=5, item 3 @t=5 (tie: 2 first), item 0 @t=1
    table = _table(user=[1, 0, 1, 1, 1], item=[4, 1, 2, 3, 0], ts=[9, 3, 5, 5, 1],
                   num_users=3, num_items=5)
    inputs = build_model_inputs(table, max_len=5)
    assert inputs.seq_items.tolist() == [[0, 0, 0, 0, 2], [0, 1, 3, 4, 5], [0, 0, 0, 0, 0]]
    assert inputs.seq_times.tolist() == [[0, 0, 0, 0, 3], [0, 1, 5, 5, 9], [0, 0, 0, 0, 0]]
    assert inputs.seq_lengths.tolist() == [1, 4, 0]  # user 2 has no history: an all-pad row
    assert inputs.item.tolist() == [1, 0, 2, 3, 4]


def test_matches_a_per_user_reference_on_random_data() -> None:
    rng = np.random.default_rng(3)
    n, users, items = 400, 30, 20
    table = _table(rng.integers(0, users, n), rng.integers(0, items, n), rng.integers(0, 50, n),
                   users, items, rating=rng.integers(1, 6, n))
    inputs = build_model_inputs(table, max_len=7)
    for u in range(users):  # reference: a plain loop (fine in a test)
        rows = [r for r in sorted(range(n), key=lambda r: (table.timestamp[r], r))
                if table.user[r] == u][-7:]
        expect = [0] * (7 - len(rows)) + [int(table.item[r]) + 1 for r in rows]
        assert inputs.seq_items[u].tolist() == expect
        assert inputs.seq_ratings[u].tolist()[7 - len(rows):] == [table.rating[r] for r in rows]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_rejects_bad_max_len(tiny_interactions: Interactions, bad) -> None:
    with pytest.raises(ValueError, match="max_len"):
        build_model_inputs(tiny_interactions, max_len=bad)


def _graph(n: int, num_users: int) -> GraphPart:
    return GraphPart("interaction_graph", "graph", torch.tensor([[0], [num_users]]),
                     torch.ones(1), (n, n), {"user": 0, "item": num_users})


def test_graphs_and_extras_pass_through_and_are_checked(tiny_interactions: Interactions) -> None:
    good = _graph(7, 3)
    extra = torch.eye(4)
    inputs = build_model_inputs(tiny_interactions, max_len=3, graphs={"interaction_graph": good},
                                extras={"item_attributes": extra})
    assert inputs.graphs["interaction_graph"] is good and inputs.extras["item_attributes"] is extra
    with pytest.raises(DataError, match="interaction_graph.*shape"):
        build_model_inputs(tiny_interactions, max_len=3, graphs={"interaction_graph": _graph(9, 3)})


def test_to_moves_every_tensor(tiny_interactions: Interactions) -> None:
    inputs = build_model_inputs(tiny_interactions, max_len=3, graphs={"g": _graph(7, 3)})
    moved = inputs.to("cpu")
    assert moved is not inputs and torch.equal(moved.seq_items, inputs.seq_items)
    assert moved.graphs["g"].nnz == 1
