"""mmseq/nn/rating_time_attention.py: hand-computed weights, short-term selection, ages."""

from __future__ import annotations

import math

import pytest
import torch

from mmseq.nn.rating_time_attention import (
    RatingTimeAttention,
    interaction_ages,
    rating_time_weights,
    short_term_mask,
)

DAY = 86400


def test_rating_boost_offset_by_one_day_of_age_gives_equal_weights() -> None:
    # gamma1 * (5 - 3) = 1 and beta * 1 day = 1: w_r = [e, 1] / (e + 1), w_t = [1/e, 1], so the
    # products are both 1 / (e + 1) and the final softmax is uniform.
    ratings = torch.tensor([[0.0, 0.0, 5.0, 3.0]])
    ages = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    mask = torch.tensor([[False, False, True, True]])
    w = rating_time_weights(ratings, ages, mask, gamma1=0.5, beta=1.0)
    torch.testing.assert_close(w, torch.tensor([[0.0, 0.0, 0.5, 0.5]]))


def test_weights_match_the_formula_by_hand() -> None:
    ratings = torch.tensor([[4.0, 4.0, 4.0]])
    ages = torch.tensor([[2.0, 1.0, 0.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    w = rating_time_weights(ratings, ages, mask, gamma1=0.4, beta=0.5)
    prod = [math.exp(-0.5 * a) / 3 for a in (2.0, 1.0, 0.0)]  # w_t * w_r, w_r = 1/3 each
    z = sum(math.exp(p) for p in prod)
    expected = torch.tensor([[math.exp(p) / z for p in prod]])
    torch.testing.assert_close(w, expected)


def test_weights_sum_to_one_and_decay_with_age_at_equal_rating() -> None:
    gen = torch.Generator().manual_seed(0)
    ratings = torch.full((5, 6), 4.0)
    # ages strictly decreasing left to right (most recent last), random gaps
    gaps = torch.rand(5, 6, generator=gen) * 3 + 0.1
    ages = gaps.flip(1).cumsum(1).flip(1) - gaps[:, -1:]
    lengths = torch.tensor([6, 4, 2, 1, 3])
    mask = torch.arange(6) >= (6 - lengths).unsqueeze(1)
    w = rating_time_weights(ratings, ages, mask, gamma1=0.4, beta=0.2)
    torch.testing.assert_close(w.sum(1), torch.ones(5))
    assert (w[~mask] == 0).all()
    for row in range(5):
        kept = w[row][mask[row]]
        assert (kept[1:] > kept[:-1]).all(), "older items must weigh less at equal rating"


def test_higher_rating_weighs_more_at_equal_age() -> None:
    w = rating_time_weights(torch.tensor([[2.0, 5.0]]), torch.zeros(1, 2),
                            torch.ones(1, 2, dtype=torch.bool))
    assert w[0, 1] > w[0, 0]


def test_empty_row_gives_zero_weights_not_nan() -> None:
    w = rating_time_weights(torch.ones(2, 3), torch.zeros(2, 3),
                            torch.tensor([[False] * 3, [False, True, True]]))
    assert torch.isfinite(w).all()
    assert (w[0] == 0).all() and w[1].sum() == pytest.approx(1.0)


def test_negative_beta_and_shape_mismatch_are_errors() -> None:
    mask = torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="beta"):
        rating_time_weights(torch.ones(1, 2), torch.zeros(1, 2), mask, beta=-0.1)
    with pytest.raises(ValueError, match="one shape"):
        rating_time_weights(torch.ones(1, 3), torch.zeros(1, 2), mask)
    with pytest.raises(ValueError, match="beta"):
        RatingTimeAttention(beta=-1.0)


def test_short_term_mask_is_floor_of_20_percent_at_least_one_capped() -> None:
    counts = torch.tensor([10, 7, 3, 0, 60])
    lengths = torch.clamp(counts, max=8)  # width 8
    mask = short_term_mask(lengths, counts, width=8)
    # floor(0.2 n) = 2, 1, 0 -> 1, 0 (no history), 12 -> capped at the width 8
    assert mask.sum(1).tolist() == [2, 1, 1, 0, 8]
    assert mask[0].tolist() == [False] * 6 + [True] * 2  # the most recent columns
    capped = short_term_mask(lengths, counts, width=8, max_len=5)
    assert capped.sum(1).tolist() == [2, 1, 1, 0, 5]
    half = short_term_mask(lengths, counts, width=8, ratio=0.5)
    assert half.sum(1).tolist() == [5, 3, 1, 0, 8]
    with pytest.raises(ValueError, match="ratio"):
        short_term_mask(lengths, counts, width=8, ratio=0.0)


def test_ages_in_days_hours_and_positions() -> None:
    times = torch.tensor([[0, 1 * DAY, 3 * DAY, 4 * DAY]])
    mask = torch.tensor([[False, True, True, True]])
    days = interaction_ages(times, mask, unit="days")
    torch.testing.assert_close(days, torch.tensor([[0.0, 3.0, 1.0, 0.0]]))
    hours = interaction_ages(times, mask, unit="hours")
    torch.testing.assert_close(hours, torch.tensor([[0.0, 72.0, 24.0, 0.0]]))
    positions = interaction_ages(torch.zeros_like(times), mask, unit="positions")
    torch.testing.assert_close(positions, torch.tensor([[0.0, 2.0, 1.0, 0.0]]))
    # large epoch seconds: the integer gap survives (float32 would round 1.4e9 by ~64 s)
    big = torch.tensor([[1_400_000_000, 1_400_000_001]])
    secs = interaction_ages(big, torch.ones(1, 2, dtype=torch.bool), unit="seconds")
    torch.testing.assert_close(secs, torch.tensor([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="time unit"):
        interaction_ages(times, mask, unit="weeks")  # type: ignore[arg-type]


def test_module_pools_item_vectors_with_the_weights() -> None:
    att = RatingTimeAttention(gamma1=0.5, beta=1.0)
    ratings = torch.tensor([[0.0, 5.0, 3.0]])
    ages = torch.tensor([[0.0, 1.0, 0.0]])
    mask = torch.tensor([[False, True, True]])
    w = att.weights(ratings, ages, mask)
    q = torch.tensor([[[9.0, 9.0], [1.0, 0.0], [0.0, 3.0]]])  # padding row must not leak
    torch.testing.assert_close(att(q, w), torch.tensor([[0.5, 1.5]]))
    assert not list(att.parameters())
    with pytest.raises(ValueError, match="item_vectors"):
        att(q[0], w)
