"""BERT4Rec: [MASK]-appended scoring, vocabulary layout, padding invariance, cloze loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmseq.data.inputs import build_model_inputs
from mmseq.data.schema import Interactions
from mmseq.errors import ConfigError
from mmseq.losses import cross_entropy_over_items
from mmseq.models.bert4rec import BERT4Rec, BERT4RecConfig


@pytest.fixture
def model() -> BERT4Rec:
    torch.manual_seed(0)
    return BERT4Rec(BERT4RecConfig(embedding_dim=8, ffn_dim=16, max_len=4), 3, 6).eval()


def _inputs(seq: torch.Tensor):
    return type("Inputs", (), {"seq_items": seq})()


def test_vocabulary_pad_items_mask(model: BERT4Rec) -> None:
    assert model.mask_token == 7 and model.token_embedding.weight.shape == (8, 8)
    assert model.item_bias.shape == (6,)


def test_score_all_appends_mask_after_the_last_max_len_minus_one_items(model: BERT4Rec) -> None:
    seq = torch.tensor([[1, 2, 3, 4, 5], [0, 0, 0, 0, 6]])
    with torch.no_grad():
        scores = model.score_all(torch.tensor([0, 1]), _inputs(seq))
        tokens = torch.tensor([[3, 4, 5, 7], [0, 0, 6, 7]])
        expect = model.item_logits(model.encode(tokens)[:, -1])
    assert scores.shape == (2, 6)  # items only: no pad or [MASK] column
    torch.testing.assert_close(scores, expect)
    # padding width does not matter
    with torch.no_grad():
        narrow = model.score_all(torch.tensor([0]), _inputs(torch.tensor([[0, 6]])))
    torch.testing.assert_close(narrow, scores[1:])


def test_cloze_loss_reads_masked_positions_only(model: BERT4Rec) -> None:
    table = Interactions(
        user=np.array([0, 0, 0, 1, 1]), item=np.array([0, 1, 2, 3, 4]),
        rating=np.ones(5, dtype=np.float32), timestamp=np.arange(5),
        user_ids=np.array(["a", "b", "c"], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(6)], dtype=object),
    )
    inputs = build_model_inputs(table, max_len=4)
    batches = list(model.training_batches(inputs, 8, torch.Generator().manual_seed(1)))
    assert len(batches) == 1 and sorted(batches[0]["user"].tolist()) == [0, 1]  # user 2: empty
    batch = batches[0]
    masked = batch["input"] == model.mask_token
    assert torch.equal(masked, batch["target"] >= 0) and masked.any(1).all()
    with torch.no_grad():
        out = model.loss(batch, inputs)
        logits = model.item_logits(model.encode(batch["input"]))  # (B, T, 6)
    torch.testing.assert_close(out.total, cross_entropy_over_items(logits, batch["target"]))


def test_max_len_below_two_is_rejected() -> None:
    with pytest.raises(ConfigError, match="max_len"):
        BERT4Rec(BERT4RecConfig(max_len=1), 2, 3)
