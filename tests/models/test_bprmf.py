"""BPR-MF: the loss of one batch worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmseq.data.inputs import build_model_inputs
from mmseq.data.schema import Interactions
from mmseq.errors import DataError
from mmseq.models.bprmf import BPRMF, BPRMFConfig


def test_loss_and_scores_by_hand(tiny_interactions: Interactions) -> None:
    inputs = build_model_inputs(tiny_interactions, max_len=4)
    model = BPRMF(BPRMFConfig(embedding_dim=2, reg_weight=0.1), 3, 4)
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        model.item_embedding.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0],
                                                        [0.0, 0.0]]))
    batch = {"user": torch.tensor([0, 1]), "pos": torch.tensor([0, 1]), "neg": torch.tensor([1, 3])}
    out = model.loss(batch, inputs)
    # scores: u0.i0 = 2, u0.i1 = 0 ; u1.i1 = 1, u1.i3 = 0
    bpr = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))) / 2
    # squares: users 1 + 1, pos 4 + 1, neg 1 + 0 = 8; 0.1 * 0.5 * 8 / 2
    assert out.terms["bpr"].item() == pytest.approx(bpr, abs=1e-6)
    assert out.terms["l2"].item() == pytest.approx(0.2, abs=1e-6)
    assert out.total.item() == pytest.approx(bpr + 0.2, abs=1e-6)
    assert model.score_all(torch.tensor([2]), inputs).tolist() == [[2.0, 1.0, 2.0, 0.0]]


def test_training_batches_never_use_history_items_as_negatives(
    tiny_interactions: Interactions,
) -> None:
    # user 0 has every item in the fixture (an error for BPR sampling); drop its item 3
    history = tiny_interactions.select(np.arange(len(tiny_interactions)) != 3)
    inputs = build_model_inputs(history, max_len=4)
    model = BPRMF(BPRMFConfig(), 3, 4)
    seen = set(zip(inputs.user.tolist(), inputs.item.tolist()))
    negatives = set()
    for seed in range(20):
        for b in model.training_batches(inputs, 4, torch.Generator().manual_seed(seed)):
            negatives |= set(zip(b["user"].tolist(), b["neg"].tolist()))
    assert negatives.isdisjoint(seen)
    assert negatives == {(0, 3), (1, 0), (2, 1)}  # the only unseen pairs, all of them drawn
    with pytest.raises(DataError, match="all 4 items"):
        model.training_batches(build_model_inputs(tiny_interactions, max_len=4), 4,
                               torch.Generator())
