"""RecBole-definition metrics (recall_rb@K, mrr@K) used by scripts/bench_vs_recbole.py, by hand."""

from __future__ import annotations

import pytest
import torch

from mmseq.eval.metrics import (
    mrr_at_k,
    peer_per_user_metrics,
    per_user_metrics,
    recall_all_at_k,
)

# user 0: 3 targets at ranks 0, 4, 12; user 1: 1 target at rank 2; user 2: 2 targets at 5 and 7.
RANKS = torch.tensor([0, 4, 12, 2, 5, 7])
SEGMENT = torch.tensor([0, 0, 0, 1, 2, 2])
COUNTS = torch.tensor([3, 1, 2])


def test_recall_divides_by_all_targets():
    got = recall_all_at_k(RANKS, SEGMENT, COUNTS, 5)
    # hits in top 5: user 0 -> 2 of 3, user 1 -> 1 of 1, user 2 -> 0 of 2
    assert got.tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    # mmseq's recall@2 divides by min(2, n); RecBole's by n
    ours = per_user_metrics(("recall@2",), RANKS, SEGMENT, COUNTS)[:, 0]
    assert ours.tolist() == pytest.approx([1 / 2, 0.0, 0.0])
    assert recall_all_at_k(RANKS, SEGMENT, COUNTS, 2).tolist() == pytest.approx([1 / 3, 0.0, 0.0])


def test_mrr_is_zero_beyond_the_cut_off():
    # best ranks 0, 2, 5 -> reciprocal ranks 1, 1/3, 1/6
    assert mrr_at_k(RANKS, SEGMENT, 3, 3).tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    assert mrr_at_k(RANKS, SEGMENT, 3, 6).tolist() == pytest.approx([1.0, 1 / 3, 1 / 6])
    assert mrr_at_k(RANKS, SEGMENT, 3, 1).tolist() == pytest.approx([1.0, 0.0, 0.0])


def test_mixed_names_keep_order_and_pass_mmseq_names_through():
    names = ("hr@5", "recall_rb@5", "mrr@3", "ndcg@5")
    got = peer_per_user_metrics(names, RANKS, SEGMENT, COUNTS)
    assert got.shape == (3, 4)
    ours = per_user_metrics(("hr@5", "ndcg@5"), RANKS, SEGMENT, COUNTS)
    torch.testing.assert_close(got[:, [0, 3]], ours)
    assert got[:, 1].tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert got[:, 2].tolist() == pytest.approx([1.0, 1 / 3, 0.0])


def test_bad_name_is_a_one_line_error():
    with pytest.raises(ValueError, match="metric name"):
        peer_per_user_metrics(("recall_rb@0",), RANKS, SEGMENT, COUNTS)
