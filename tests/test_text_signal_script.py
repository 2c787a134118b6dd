"""scripts/text_signal.py: how alike the items' text rows are, and text-only next-item ranking."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tests.script_loader import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("text_signal")


def test_dispersion_is_one_for_one_text_and_lower_for_distinct_texts(script) -> None:
    same = torch.tensor([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0], [0.0, 0.0]])  # last: no text
    out = script.dispersion(same)
    assert out["items_with_text"] == 3
    assert out["mean_pairwise_cosine"] == pytest.approx(1.0)
    assert out["mean_nearest_cosine"] == pytest.approx(1.0)
    apart = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    out = script.dispersion(apart)
    # pairs: (0,1) 0, (0,2) -1, (1,2) 0 -> mean -1/3; nearest other item: 0 for every item
    assert out["mean_pairwise_cosine"] == pytest.approx(-1 / 3)
    assert out["mean_nearest_cosine"] == pytest.approx(0.0)


def test_last_item_text_scores_by_cosine_to_the_most_recent_item(script) -> None:
    text = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    model = script.LastItemText(text)
    # user 0's most recent item is item 1 (stored as index + 1, left padding); user 1 has none
    inputs = SimpleNamespace(seq_items=torch.tensor([[0, 1, 2], [0, 0, 0]]))
    scores = model.score_all(torch.tensor([0, 1]), inputs)
    assert scores.shape == (2, 4)
    assert torch.allclose(scores[0], torch.tensor([0.0, 1.0, 2 ** -0.5, 0.0]))
    assert torch.equal(scores[1], torch.zeros(4))  # no history: every item ties


def test_hit_overlap_counts_text_only_and_shared_hits(script) -> None:
    text = torch.tensor([True, True, False, False, True])
    run = torch.tensor([True, False, True, False, False])
    out = script.hit_overlap(text, run)
    assert out["run_hit_rate"] == pytest.approx(2 / 5)
    assert out["text_hit_rate"] == pytest.approx(3 / 5)
    assert out["text_only_share"] == pytest.approx(2 / 5)  # targets 1 and 4
    assert out["run_also_hits_share_of_text_hits"] == pytest.approx(1 / 3)  # target 0 of 0, 1, 4
