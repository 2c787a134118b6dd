"""Exemplar budget split (largest remainder) and herding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmseq.train.continual.exemplars import herding_select, split_budget


def test_split_budget_by_hand() -> None:
    # 4 * [5, 3, 2] / 10 = [2, 1.2, 0.8]: floors [2, 1, 0], the one left goes to the largest
    # remainder (item 2).
    assert split_budget(torch.tensor([5, 3, 2]), 4).tolist() == [2, 1, 1]


def test_split_budget_ties_go_to_larger_count_then_lower_index() -> None:
    # 2 * [1, 1, 1] / 3: equal remainders and counts -> the two lowest indices.
    assert split_budget(torch.tensor([1, 1, 1]), 2).tolist() == [1, 1, 0]
    # 3 * [2, 4, 0, 2] / 8 = [0.75, 1.5, 0, 0.75]: floors [0, 1, 0, 0]; remainders (x8) 6, 4, 0, 6
    # -> items 0 and 3.
    assert split_budget(torch.tensor([2, 4, 0, 2]), 3).tolist() == [1, 1, 0, 1]


def test_split_budget_keeps_everything_when_within_budget() -> None:
    assert split_budget(torch.tensor([2, 0, 1]), 10).tolist() == [2, 0, 1]


def test_split_budget_sums_to_budget_and_stays_proportional() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        counts = torch.from_numpy(rng.integers(0, 40, rng.integers(1, 30)))
        if int(counts.sum()) == 0:
            continue
        budget = int(rng.integers(1, int(counts.sum()) + 1))
        quota = split_budget(counts, budget)
        assert int(quota.sum()) == budget
        exact = counts.double() * budget / counts.sum()
        assert bool(((quota - exact).abs() < 1).all())  # floor or ceil of the exact share
        assert bool((quota <= counts).all())


def test_split_budget_rejects_bad_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        split_budget(torch.tensor([1, 2]), 0)


def test_herding_picks_the_candidate_nearest_the_running_mean() -> None:
    # One item, 1-D features [1.0, 1.2, 1.3, 2.5], mean 1.5.
    # k=1: nearest to 1.5 is 1.3 (index 2).  k=2: (1.3 + x)/2 closest to 1.5 -> x = 1.2 (index 1).
    # k=3: (2.5 + x)/3 closest to 1.5 -> x = 2.0: 2.5 (|.| = .5/3) beats 1.0 (|.| = 1/3), although
    # 1.0 is nearer the mean itself (plain nearest-to-mean would pick 1.0).
    features = torch.tensor([[1.0], [1.2], [1.3], [2.5]])
    picked = herding_select(features, torch.zeros(4, dtype=torch.long), torch.tensor([3]))
    assert picked.tolist() == [2, 1, 3]


def test_herding_is_vectorised_across_items_and_grouped_by_item() -> None:
    rng = np.random.default_rng(1)
    features = torch.from_numpy(rng.normal(size=(30, 3)))
    labels = torch.from_numpy(rng.integers(0, 3, 30))
    quota = torch.tensor([2, 0, 4])
    quota = torch.minimum(quota, torch.bincount(labels, minlength=3))
    together = herding_select(features, labels, quota)
    separate = []
    for item in range(3):  # reference: one item at a time
        members = torch.nonzero(labels == item).flatten()
        local = herding_select(features[members], torch.zeros_like(members),
                               quota[item : item + 1])
        separate.append(members[local])
    assert together.tolist() == torch.cat(separate).tolist()
    assert together.numel() == int(quota.sum())
    assert together.unique().numel() == together.numel()  # no candidate twice


def test_herding_breaks_ties_by_lower_index() -> None:
    features = torch.tensor([[1.0], [3.0], [1.0], [3.0]])  # mean 2: all at distance 1
    picked = herding_select(features, torch.zeros(4, dtype=torch.long), torch.tensor([1]))
    assert picked.tolist() == [0]


def test_herding_rejects_quota_above_candidates() -> None:
    with pytest.raises(ValueError, match="quota"):
        herding_select(torch.zeros(2, 1), torch.tensor([0, 0]), torch.tensor([3]))
