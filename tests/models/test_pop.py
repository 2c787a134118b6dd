"""POP: counts by hand; scores are a fresh tensor per call."""

from __future__ import annotations

import torch

from mmseq.data.inputs import build_model_inputs
from mmseq.data.schema import Interactions
from mmseq.models.pop import Pop, PopConfig


def test_popularity_by_hand(tiny_interactions: Interactions) -> None:
    inputs = build_model_inputs(tiny_interactions, max_len=4)
    model = Pop(PopConfig(), 3, 4)
    model.fit_closed_form(inputs)
    # item 0: users 0, 2; item 1: users 0, 1; items 2 and 3: all three users
    scores = model.score_all(torch.tensor([0, 2]), inputs)
    assert scores.tolist() == [[2, 2, 3, 3], [2, 2, 3, 3]]
    scores[0, 0] = -1.0  # an evaluator masking history in place must not touch the counts
    assert model.popularity.tolist() == [2, 2, 3, 3]
    assert model.score_candidates(torch.tensor([1]), torch.tensor([[3, 0]]), inputs).tolist() == [
        [3, 2]
    ]
    assert "popularity" in model.state_dict()
