"""SASRec and its causal transformer: causality, padding invariance, the CE target alignment."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mmseq.losses import cross_entropy_over_items
from mmseq.models.sasrec import SASRec, SASRecConfig
from mmseq.nn.transformer import TransformerEncoder


@pytest.fixture
def model() -> SASRec:
    torch.manual_seed(0)
    return SASRec(SASRecConfig(embedding_dim=8, num_heads=2, max_len=6), 4, 9).eval()


def _inputs(seq: torch.Tensor):
    # score_all only reads seq_items; a stand-in object keeps the test independent of the rest
    return type("Inputs", (), {"seq_items": seq})()


def test_causal_outputs_ignore_later_items(model: SASRec) -> None:
    a = torch.tensor([[0, 3, 5, 7, 2]])
    b = torch.tensor([[0, 3, 5, 1, 9]])  # differs from position 3 on
    with torch.no_grad():
        ha, hb = model.encode(a), model.encode(b)
    torch.testing.assert_close(ha[:, :3], hb[:, :3])
    assert not torch.allclose(ha[:, 3:], hb[:, 3:])


def test_scores_do_not_depend_on_padding_width(model: SASRec) -> None:
    short = torch.tensor([[0, 3, 5, 7]])
    wide = torch.tensor([[0, 0, 0, 3, 5, 7]])
    users = torch.tensor([0])
    with torch.no_grad():
        s1 = model.score_all(users, _inputs(short))
        s2 = model.score_all(users, _inputs(wide))
    assert s1.shape == (1, 9)
    torch.testing.assert_close(s1, s2)


def test_sequences_longer_than_max_len_keep_the_most_recent(model: SASRec) -> None:
    long = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    with torch.no_grad():
        s1 = model.score_all(torch.tensor([0]), _inputs(long))
        s2 = model.score_all(torch.tensor([0]), _inputs(long[:, -6:]))
    torch.testing.assert_close(s1, s2)


def test_loss_is_next_item_ce_at_non_padding_positions(model: SASRec) -> None:
    batch = {"input": torch.tensor([[0, 3, 5], [2, 4, 6]]),
             "target": torch.tensor([[-100, 4, 0], [3, 5, 8]])}
    with torch.no_grad():
        out = model.loss(batch, None)
        h = model.encode(batch["input"])  # (2, 3, 8)
        logits = h @ model.item_embedding.weight[1:].T  # (2, 3, 9)
        expect = cross_entropy_over_items(logits, batch["target"])
    torch.testing.assert_close(out.total, expect)


def test_encoder_handles_all_padding_rows_and_bidirectional_flag() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8)
    pad = torch.tensor([[True] * 4, [True, False, False, False]])
    for causal in (True, False):
        enc = TransformerEncoder(d_model=8, num_layers=2, num_heads=2, causal=causal).eval()
        assert torch.isfinite(enc(x, pad)).all()
    bi = TransformerEncoder(d_model=8, num_layers=1, num_heads=2, causal=False).eval()
    y = x.clone()
    y[:, 3] = torch.randn(2, 8)  # (a constant shift would vanish in LayerNorm)
    assert not torch.allclose(bi(x)[:, 0], bi(y)[:, 0])  # position 0 sees the future
    with pytest.raises(ValueError, match="divisible"):
        TransformerEncoder(d_model=8, num_layers=1, num_heads=3)


def test_config_fields_change_the_architecture() -> None:
    cfg = dataclasses.replace(SASRecConfig(), num_layers=3, embedding_dim=16)
    model = SASRec(cfg, 2, 5)
    assert len(model.encoder.blocks) == 3 and model.item_embedding.weight.shape == (6, 16)
