"""GRU4Rec: right alignment, padding invariance and exact next-item targets."""

from __future__ import annotations

import torch

from mmseq.losses import cross_entropy_over_items
from mmseq.models.gru4rec import GRU4Rec, GRU4RecConfig, right_align


def _inputs(seq: torch.Tensor):
    return type("Inputs", (), {"seq_items": seq})()


def test_right_align_by_hand() -> None:
    rolled, lengths = right_align(torch.tensor([[0, 0, 3, 5], [1, 2, 3, 4], [0, 0, 0, 0]]))
    assert rolled.tolist() == [[3, 5, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0]]
    assert lengths.tolist() == [2, 4, 0]


def test_scores_equal_a_gru_over_the_unpadded_items() -> None:
    torch.manual_seed(0)
    model = GRU4Rec(GRU4RecConfig(embedding_dim=6, hidden_size=5), 2, 7).eval()
    with torch.no_grad():
        padded = model.score_all(torch.tensor([0]), _inputs(torch.tensor([[0, 0, 0, 4, 2, 6]])))
        h, _ = model.gru(model.item_embedding(torch.tensor([[4, 2, 6]])))
        expect = model.project(h[:, -1]) @ model.item_embedding.weight[1:].T
    torch.testing.assert_close(padded, expect)


def test_loss_targets_follow_their_inputs() -> None:
    torch.manual_seed(0)
    model = GRU4Rec(GRU4RecConfig(embedding_dim=6, hidden_size=5), 2, 7).eval()
    # user 0: items 3, 5 then target 2 -> pairs (3 -> 5), (3,5 -> 2); user 1: (1 -> 4)
    batch = {"input": torch.tensor([[0, 3, 5], [0, 0, 1]]),
             "target": torch.tensor([[-100, 4, 1], [-100, -100, 3]])}
    with torch.no_grad():
        out = model.loss(batch, None)
        h0, _ = model.gru(model.item_embedding(torch.tensor([[3, 5]])))
        h1, _ = model.gru(model.item_embedding(torch.tensor([[1]])))
        states = torch.cat([h0[0], h1[0]])  # (3, hidden)
        logits = model.project(states) @ model.item_embedding.weight[1:].T
        expect = cross_entropy_over_items(logits, torch.tensor([4, 1, 3]))
    torch.testing.assert_close(out.total, expect)
