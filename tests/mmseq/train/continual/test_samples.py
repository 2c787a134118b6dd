"""Next-item samples as rows of a time-sorted table, and their pseudo-user inputs."""

from __future__ import annotations

import numpy as np
import torch
from continual_helpers import table

from mmseq.data.inputs import build_model_inputs
from mmseq.train.continual.samples import SequenceTable


def _hand_table() -> SequenceTable:
    # user 0: items 3, 1, 4 at times 10, 20, 30; user 1: items 0, 2 at times 15, 25 (file order
    # mixed). Periods (aligned with the file rows) 0, 0, 1, 1, 1.
    data = table([1, 0, 0, 1, 0], [0, 3, 1, 2, 4], [15, 10, 20, 25, 30], 2, 5)
    return SequenceTable.build(data, np.array([0, 0, 0, 1, 1]))


def test_table_is_sorted_by_user_then_time() -> None:
    t = _hand_table()
    assert t.user.tolist() == [0, 0, 0, 1, 1]
    assert t.item.tolist() == [3, 1, 4, 0, 2]
    assert t.start.tolist() == [0, 0, 0, 3, 3]
    assert t.period.tolist() == [0, 0, 1, 0, 1]


def test_samples_skip_first_interactions_and_select_periods() -> None:
    t = _hand_table()
    assert t.sample_rows([0]).tolist() == [1]  # row 0 and row 3 start their users
    assert t.sample_rows([1]).tolist() == [2, 4]
    assert t.sample_rows([0, 1]).tolist() == [1, 2, 4]
    assert t.targets(torch.tensor([1, 2, 4])).tolist() == [1, 4, 2]


def test_contexts_are_the_previous_items_of_the_same_user_left_padded() -> None:
    t = _hand_table()
    items, times, _ = t.contexts(torch.tensor([2, 4, 1]), max_len=3)
    assert items.tolist() == [[0, 4, 2], [0, 0, 1], [0, 0, 4]]  # item index + 1
    assert times.tolist() == [[0, 10, 20], [0, 0, 15], [0, 0, 10]]
    short, _, _ = t.contexts(torch.tensor([2]), max_len=1)
    assert short.tolist() == [[2]]  # only the most recent item


def test_model_inputs_match_build_model_inputs_of_the_pseudo_users() -> None:
    t = _hand_table()
    inputs = t.model_inputs(torch.tensor([2, 4]), max_len=4)
    # The same contexts written as a table of two pseudo-users.
    pseudo = table([0, 0, 1], [3, 1, 0], [10, 20, 15], 2, 5)
    expected = build_model_inputs(pseudo, max_len=4)
    for name in ("user", "item", "timestamp", "seq_items", "seq_times", "seq_lengths"):
        assert torch.equal(getattr(inputs, name), getattr(expected, name)), name
    assert inputs.num_users == 2 and inputs.num_items == 5
