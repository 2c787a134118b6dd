"""Sequence models train on batches without their padding: the same loss as the padded batch.

SASRec, GRU4Rec and S4Rec encode each training batch per length bucket
(``mmseq.nn.padding``); EMKD drops the columns that are padding in every row of its batch. The
reference is the same loss computed on the batch at the full ``max_len`` width.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

import mmseq.models.gru4rec as gru4rec_module
import mmseq.models.s4rec as s4rec_module
import mmseq.models.sasrec as sasrec_module
from mmseq.data.inputs import build_model_inputs
from mmseq.data.schema import Interactions
from mmseq.models.emkd import EMKD, EMKDConfig
from mmseq.models.gru4rec import GRU4Rec, GRU4RecConfig
from mmseq.models.s4rec import S4Rec, S4RecConfig
from mmseq.models.sasrec import SASRec, SASRecConfig

MAX_LEN = 20
NUM_ITEMS = 40


def ragged_inputs(num_users: int = 48, seed: int = 0):
    """Users with 2..2*MAX_LEN items, most of them short (as in the Amazon data)."""
    rng = np.random.default_rng(seed)
    counts = np.minimum(rng.geometric(0.25, size=num_users) + 1, 2 * MAX_LEN)
    counts[0] = 2 * MAX_LEN  # one row fills the window
    user = np.repeat(np.arange(num_users), counts)
    item = np.concatenate([rng.permutation(NUM_ITEMS)[:n] for n in counts])
    table = Interactions(
        user=user,
        item=item,
        rating=np.ones(len(user), dtype=np.float32),
        timestamp=np.concatenate([np.arange(n) for n in counts]).astype(np.int64),
        user_ids=np.array([f"u{i}" for i in range(num_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(NUM_ITEMS)], dtype=object),
        meta={"source": "test"},
    )
    return build_model_inputs(table, max_len=MAX_LEN + 1)


def _plain_masked(encode, tokens: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    h = encode(tokens)
    return h[..., labels >= 0, :], labels[labels >= 0]


def _plain_masked_and_last(encode, tokens: Tensor, labels: Tensor):
    h = encode(tokens)
    return h[..., labels >= 0, :], labels[labels >= 0], h[..., -1, :]


MODELS = {
    "sasrec": lambda: SASRec(SASRecConfig(embedding_dim=16, max_len=MAX_LEN), 1, NUM_ITEMS),
    "gru4rec": lambda: GRU4Rec(
        GRU4RecConfig(embedding_dim=16, hidden_size=16, max_len=MAX_LEN), 1, NUM_ITEMS
    ),
    "s4rec": lambda: S4Rec(
        S4RecConfig(embedding_dim=16, ffn_dim=16, max_len=MAX_LEN, num_prototypes=4), 1, NUM_ITEMS
    ),
    "emkd": lambda: EMKD(
        EMKDConfig(embedding_dim=16, ffn_dim=16, num_networks=2, num_views=2, max_len=MAX_LEN),
        1,
        NUM_ITEMS,
    ),
}


def _padded_batch(batch: dict[str, Tensor], width: int) -> dict[str, Tensor]:
    """EMKD's batch with its dropped padding columns put back (input/views 0, target -100)."""
    out = dict(batch)
    for key, fill in (("input", 0), ("views", 0), ("target", -100)):
        t = batch[key]
        out[key] = torch.cat([t.new_full((t.shape[0], width - t.shape[1]), fill), t], 1)
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_loss_equals_the_padded_batchs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = ragged_inputs()
    torch.manual_seed(0)
    model = MODELS[name]().eval()  # no dropout: the two paths then compute the same function
    gen = torch.Generator().manual_seed(0)
    batches = list(model.training_batches(inputs, 16, gen))
    assert len(batches) == 3
    with torch.no_grad():
        losses = [model.loss(b, inputs).total for b in batches]
        if name == "emkd":
            narrower = [b["input"].shape[1] < MAX_LEN for b in batches]
            assert any(narrower)  # some batch really dropped columns
            reference = [model.loss(_padded_batch(b, MAX_LEN), inputs).total for b in batches]
        else:
            for module in (sasrec_module, gru4rec_module, s4rec_module):
                if hasattr(module, "masked_states_by_length"):
                    monkeypatch.setattr(module, "masked_states_by_length", _plain_masked)
            monkeypatch.setattr(
                s4rec_module, "masked_and_last_states_by_length", _plain_masked_and_last
            )
            reference = [model.loss(b, inputs).total for b in batches]
    for got, want in zip(losses, reference, strict=True):
        assert torch.isfinite(got)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_losses_are_deterministic(name: str) -> None:
    inputs = ragged_inputs(seed=1)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = MODELS[name]()  # training mode: dropout on, from the global seed
        gen = torch.Generator().manual_seed(3)
        runs.append(
            [model.loss(b, inputs).total.item() for b in model.training_batches(inputs, 16, gen)]
        )
    assert runs[0] == runs[1]
