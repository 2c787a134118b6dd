"""Metric functions against numbers worked out by hand."""

from __future__ import annotations

import pytest
import torch

from mmseq.errors import DataError
from mmseq.eval.metrics import (
    check_scores,
    hit_at_k,
    ndcg_at_k,
    parse_metric,
    per_user_metrics,
    pessimistic_rank,
    recall_at_k,
    reciprocal_rank,
)

# Three user rows: row 0 has targets at ranks 0 and 3, row 1 one target at rank 2,
# row 2 three targets at ranks 1, 4 and 6.
RANKS = torch.tensor([0, 3, 2, 1, 4, 6])
SEGMENT = torch.tensor([0, 0, 1, 2, 2, 2])
NUM_TARGETS = torch.tensor([2, 1, 3])

# 1/log2(3) = 0.6309297535714575, 1/log2(4) = 0.5, 1/log2(5) = 0.43067655807339306
INV_LOG2_3 = 0.6309297535714575


def test_pessimistic_rank_by_hand() -> None:
    # one row, five items: 0.9, 0.5, 0.5, 0.1, 0.7
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.1, 0.7]])
    cols = torch.tensor([0, 1, 2, 3, 4])
    rows = torch.zeros(5, dtype=torch.long)
    # item 1: 0.9 and 0.7 strictly higher (2) + item 2 equal (1) = 3; item 2 likewise;
    # item 0: 0; item 3: 4; item 4: 1 (only 0.9 higher).
    expected = [0, 3, 3, 4, 1]
    assert pessimistic_rank(scores, rows, cols).tolist() == expected
    # Blocks of one target at a time give the same ranks.
    assert pessimistic_rank(scores, rows, cols, max_elements=1).tolist() == expected


def test_pessimistic_rank_one_target_per_row_and_masked_items() -> None:
    inf = float("inf")
    scores = torch.tensor([[-inf, 0.5, 0.2], [3.0, 3.0, 3.0], [1.0, -inf, 2.0]])
    # row 0 target col 2: 0.5 higher, -inf never outranks -> 1; row 1 all tied -> 2;
    # row 2 target col 0: 2.0 higher -> 1.
    assert pessimistic_rank(scores, None, torch.tensor([2, 0, 0])).tolist() == [1, 2, 1]
    assert pessimistic_rank(scores, None, torch.tensor([2, 0, 0]), max_elements=2).tolist() == [
        1, 2, 1,
    ]


def test_hit_at_k() -> None:
    assert hit_at_k(RANKS, SEGMENT, 3, 1).tolist() == [1.0, 0.0, 0.0]
    assert hit_at_k(RANKS, SEGMENT, 3, 2).tolist() == [1.0, 0.0, 1.0]
    assert hit_at_k(RANKS, SEGMENT, 3, 5).tolist() == [1.0, 1.0, 1.0]


def test_recall_at_k() -> None:
    # k=2: row 0 1 hit / min(2, 2); row 1 0 / 1; row 2 1 hit / min(2, 3)
    assert recall_at_k(RANKS, SEGMENT, NUM_TARGETS, 2).tolist() == [0.5, 0.0, 0.5]
    # k=5: row 0 2/2; row 1 1/1; row 2 ranks 1 and 4 -> 2 / min(5, 3)
    assert recall_at_k(RANKS, SEGMENT, NUM_TARGETS, 5).tolist() == pytest.approx([1.0, 1.0, 2 / 3])


def test_ndcg_at_k() -> None:
    # k=2: row 0 DCG = 1/log2(2) = 1, IDCG = 1 + 1/log2(3) -> 0.6131471927654584
    #      row 1 no hit -> 0; row 2 DCG = 1/log2(3), IDCG = 1 + 1/log2(3) -> 0.38685280723454163
    assert ndcg_at_k(RANKS, SEGMENT, NUM_TARGETS, 2).tolist() == pytest.approx(
        [0.6131471927654584, 0.0, 0.38685280723454163], abs=1e-12
    )
    # k=5: row 0 DCG = 1 + 1/log2(5) = 1.430676558073393, IDCG 1.6309297535714575 -> 0.87721531...
    #      row 1 DCG = 1/log2(4) = 0.5, IDCG = 1 -> 0.5
    #      row 2 DCG = 1/log2(3) + 1/log2(6), IDCG = 1 + 1/log2(3) + 1/log2(4)
    row2 = (INV_LOG2_3 + 0.38685280723454163) / (1.0 + INV_LOG2_3 + 0.5)
    assert ndcg_at_k(RANKS, SEGMENT, NUM_TARGETS, 5).tolist() == pytest.approx(
        [0.8772153153380493, 0.5, row2], abs=1e-12
    )


def test_reciprocal_rank_uses_first_relevant_item() -> None:
    assert reciprocal_rank(RANKS, SEGMENT, 3).tolist() == pytest.approx([1.0, 1 / 3, 0.5])


def test_per_user_metrics_columns_follow_names() -> None:
    out = per_user_metrics(("hr@2", "recall@2", "mrr"), RANKS, SEGMENT, NUM_TARGETS)
    assert out.shape == (3, 3) and out.dtype == torch.float64
    assert out[:, 0].tolist() == [1.0, 0.0, 1.0]
    assert out[:, 1].tolist() == [0.5, 0.0, 0.5]
    assert out[:, 2].tolist() == pytest.approx([1.0, 1 / 3, 0.5])


def test_all_equal_scores_never_hit_before_the_last_place() -> None:
    # Pessimistic ties: with C=5 equal scores every target ranks C-1=4, so HR@K=0 for K<5
    # (an optimistic rule would give 1).
    scores = torch.full((4, 5), 0.3)
    ranks = pessimistic_rank(scores, None, torch.tensor([0, 1, 2, 4]))
    assert ranks.tolist() == [4, 4, 4, 4]
    segment = torch.arange(4)
    for k in (1, 2, 3, 4):
        assert hit_at_k(ranks, segment, 4, k).tolist() == [0.0] * 4
    assert hit_at_k(ranks, segment, 4, 5).tolist() == [1.0] * 4


def test_random_scores_give_k_over_c() -> None:
    # An untied random scorer puts the target uniformly in [0, C): HR@K is about K/C.
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(20000, 100, generator=gen)
    ranks = pessimistic_rank(scores, None, torch.zeros(20000, dtype=torch.long))
    segment = torch.arange(20000)
    for k in (1, 10, 50):
        assert float(hit_at_k(ranks, segment, 20000, k).mean()) == pytest.approx(k / 100, abs=0.01)


def test_check_scores_names_nan_users() -> None:
    scores = torch.zeros(3, 4)
    scores[1, 2] = float("nan")
    with pytest.raises(DataError, match=r"NaN for 1 users: 17\b"):
        check_scores(scores, torch.tensor([5, 17, 30]))
    check_scores(torch.tensor([[float("-inf"), 1.0]]), torch.tensor([0]))  # -inf is allowed


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="metric name"):
        parse_metric("hit@10")
    with pytest.raises(ValueError, match="metric name"):
        parse_metric("ndcg@0")
    assert parse_metric("recall@20") == ("recall", 20)
    assert parse_metric("mrr") == ("mrr", 0)
    with pytest.raises(ValueError, match=">= 1 target"):
        recall_at_k(RANKS, SEGMENT, torch.tensor([2, 1, 0]), 2)
    with pytest.raises(ValueError, match="'k'"):
        hit_at_k(RANKS, SEGMENT, 3, 0)
    with pytest.raises(ValueError, match="one shape"):
        hit_at_k(RANKS, SEGMENT[:2], 3, 1)
