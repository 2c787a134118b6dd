"""Samplers: exact negatives, uniformity, determinism, next-item pairs and cloze masks."""

from __future__ import annotations

import pytest
import torch

from mmseq.data.sampling import (
    bpr_batches,
    bpr_triples,
    cloze_mask,
    next_item_batches,
    positive_pairs,
    sample_negatives,
)
from mmseq.errors import DataError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_positive_pairs_by_hand() -> None:
    # user 0 saw items 2, 0 (and 2 again); user 1 saw item 1; 4 items
    pairs = positive_pairs(torch.tensor([0, 0, 1, 0]), torch.tensor([2, 0, 1, 2]), 2, 4)
    assert pairs.keys.tolist() == [0, 2, 5]
    assert pairs.degree.tolist() == [2, 1]
    assert pairs.starts.tolist() == [0, 2]
    assert pairs.adjusted.tolist() == [0, 1, 5]  # items minus their rank within the user: 0-0, 2-1


def test_user_with_every_item_is_an_error() -> None:
    with pytest.raises(DataError, match=r"users \[1\].*all 3 items"):
        positive_pairs(torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 2]), 2, 3)


# 0 rounds: every collision of the first draw takes the exact path
@pytest.mark.parametrize("max_rounds", [10, 0])
def test_negatives_are_unseen_and_uniform(max_rounds: int) -> None:
    # 7 items; user 0 saw {0, 1, 3, 5} -> negatives uniform over {2, 4, 6}; user 1 saw {6}
    pairs = positive_pairs(torch.tensor([0, 0, 0, 0, 1]), torch.tensor([0, 1, 3, 5, 6]), 2, 7)
    n = 6000
    user = torch.tensor([0, 1]).repeat(n)
    neg = sample_negatives(user, pairs, gen(1), max_rounds=max_rounds)
    counts0 = torch.bincount(neg[user == 0], minlength=7)
    counts1 = torch.bincount(neg[user == 1], minlength=7)
    assert counts0[[0, 1, 3, 5]].sum() == 0 and counts1[6] == 0
    # each allowed item expects n/3 (user 0) or n/6 (user 1); 5 sigma bounds
    assert ((counts0[[2, 4, 6]] - n / 3).abs() < 5 * (n * (1 / 3) * (2 / 3)) ** 0.5).all()
    assert ((counts1[:6] - n / 6).abs() < 5 * (n * (1 / 6) * (5 / 6)) ** 0.5).all()


def test_nearly_full_user_gets_its_one_negative() -> None:
    # 50 items, user 0 saw all but item 37: rejection alone would rarely find it in 2 rounds
    items = torch.tensor([i for i in range(50) if i != 37])
    pairs = positive_pairs(torch.zeros_like(items), items, 1, 50)
    neg = sample_negatives(torch.zeros(500, dtype=torch.long), pairs, gen(), max_rounds=2)
    assert neg.unique().tolist() == [37]


def test_bpr_triples_cover_every_row_once_deterministically() -> None:
    user = torch.tensor([0, 0, 1, 2, 2, 2])
    item = torch.tensor([1, 3, 0, 0, 2, 4])
    u, i, j = bpr_triples(user, item, 5, gen(7))
    assert sorted(zip(u.tolist(), i.tolist())) == sorted(zip(user.tolist(), item.tolist()))
    seen = set(zip(user.tolist(), item.tolist()))
    assert all((a, b) not in seen for a, b in zip(u.tolist(), j.tolist()))
    again = bpr_triples(user, item, 5, gen(7))
    assert all(torch.equal(x, y) for x, y in zip((u, i, j), again))
    other = bpr_triples(user, item, 5, gen(8))
    assert not all(torch.equal(x, y) for x, y in zip((u, i, j), other))


def test_bpr_batches_sizes() -> None:
    user = torch.arange(10) % 3
    item = torch.arange(10)
    batches = list(bpr_batches(user, item, 12, 4, gen()))
    assert [len(b["user"]) for b in batches] == [4, 4, 2]
    assert set(batches[0]) == {"user", "pos", "neg"}


def test_next_item_batches_by_hand() -> None:
    seq = torch.tensor([[0, 0, 3, 5], [0, 0, 0, 2], [1, 2, 3, 4]])
    batches = list(next_item_batches(seq, 8, gen()))
    assert len(batches) == 1
    b = batches[0]
    rows = {u: (i.tolist(), t.tolist()) for u, i, t in
            zip(b["user"].tolist(), b["input"], b["target"])}
    # user 1 has a single item and nothing to predict; user 0's first item has no context
    assert rows == {0: ([0, 0, 3], [-100, -100, 4]), 2: ([1, 2, 3], [1, 2, 3])}


def test_next_item_batches_shuffle_follows_generator() -> None:
    seq = torch.arange(1, 41).view(20, 2)
    def order(seed: int) -> torch.Tensor:
        return torch.cat([b["user"] for b in next_item_batches(seq, 3, gen(seed))])

    assert torch.equal(order(4), order(4)) and not torch.equal(order(4), order(5))
    assert sorted(order(4).tolist()) == list(range(20))


def test_cloze_mask_invariants() -> None:
    g = gen(2)
    seq = torch.randint(1, 30, (500, 12), generator=g)
    seq[:, :4] = 0  # left padding
    seq[7] = 0  # an empty row
    masked, labels = cloze_mask(seq, 0.2, 31, g)
    is_masked = masked == 31
    assert torch.equal(is_masked, labels >= 0)
    assert torch.equal(labels[is_masked], seq[is_masked] - 1)
    assert torch.equal(masked[~is_masked], seq[~is_masked])
    assert not is_masked[:, :4].any() and not is_masked[7].any()
    nonempty = torch.ones(500, dtype=torch.bool)
    nonempty[7] = False
    assert is_masked[nonempty].any(1).all()  # at least one masked item per sequence
    rate = is_masked[:, 4:].float().mean().item()
    assert 0.19 < rate < 0.25  # 0.2 plus the forced masks of rows that drew none


def test_cloze_mask_last_only_and_determinism() -> None:
    seq = torch.tensor([[0, 2, 3, 4], [5, 6, 7, 8]])
    masked, labels = cloze_mask(seq, 0.5, 9, gen(), last_only_prob=1.0)
    assert masked.tolist() == [[0, 2, 3, 9], [5, 6, 7, 9]]
    assert labels.tolist() == [[-100, -100, -100, 3], [-100, -100, -100, 7]]
    a = cloze_mask(seq, 0.5, 9, gen(3))
    b = cloze_mask(seq, 0.5, 9, gen(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="mask_prob"):
        cloze_mask(seq, 1.5, 9, gen())
