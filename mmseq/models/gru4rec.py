"""GRU4Rec: a GRU over the item sequence predicts the next item.

Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks", ICLR 2016; trained
here with softmax cross-entropy over all items at every position (as in RecBole's GRU4Rec).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmseq.data.sampling import next_item_batches
from mmseq.losses import cross_entropy_over_items
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.models.registry import MODELS
from mmseq.nn.padding import last_states_by_length, masked_states_by_length
from mmseq.nn.scores import item_scores


@dataclass(frozen=True)
class GRU4RecConfig:
    """GRU4Rec hyper-parameters."""

    embedding_dim: int = 64  # d, item embedding width (also the output space)
    hidden_size: int = 64  # GRU state width
    num_layers: int = 1  # stacked GRU layers
    dropout: float = 0.25  # dropout on the input embeddings
    max_len: int = 50  # most recent items read per user (older ones are cut)


def right_align(seq: Tensor) -> tuple[Tensor, Tensor]:
    """Move the items of left-padded rows to the front: ``[0 0 a b] -> [a b 0 0]``.

    Returns the rolled rows and the lengths. A GRU is causal, so on right-padded rows its output
    at position ``length - 1`` has seen exactly the items (no padding steps before them).

    Shapes:
        seq: (B, T) -> ((B, T), (B,)).
    """
    t = seq.shape[1]
    lengths = (seq > 0).sum(1)  # (B,)
    index = (torch.arange(t, device=seq.device) + (t - lengths)[:, None]) % t  # (B, T)
    return seq.gather(1, index), lengths


@MODELS.register("gru4rec")
class GRU4Rec(Recommender):
    """``h_t = GRU(e_{i_1..i_t})``, ``score(t, j) = (W h_t) . e_j``, cross-entropy over all items.

    Shapes:
        score_all: users (B,) -> (B, num_items), from the state after each user's last item.
    """

    config_class = GRU4RecConfig
    eval_by_length = True  # the evaluator batches users of similar length (less padding)

    def __init__(self, config: GRU4RecConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        d = config.embedding_dim
        self.item_embedding = nn.Embedding(num_items + 1, d, padding_idx=0)  # 0 = pad
        nn.init.normal_(self.item_embedding.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(d, config.hidden_size, num_layers=config.num_layers, batch_first=True)
        self.project = nn.Linear(config.hidden_size, d)

    def _states(self, seq: Tensor) -> tuple[Tensor, Tensor]:
        """GRU outputs projected to item space on right-aligned rows, and the lengths."""
        rolled, lengths = right_align(seq[:, -self.config.max_len :])
        x = self.embedding_dropout(self.item_embedding(rolled))  # (B, T, d)
        h, _ = self.gru(x)  # (B, T, hidden)
        return self.project(h), lengths  # (B, T, d)

    def _left_states(self, seq: Tensor) -> Tensor:
        """:meth:`_states` moved back to the left-padded layout of ``seq``: (B, T) -> (B, T, d)."""
        states, lengths = self._states(seq)  # (B, T, d), right-aligned
        t = seq.shape[1]
        index = (torch.arange(t, device=seq.device) - (t - lengths)[:, None]) % t  # (B, T)
        return states.gather(1, index[..., None].expand(-1, -1, states.shape[-1]))

    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        return next_item_batches(inputs.seq_items, batch_size, generator)

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        seq = batch["input"][:, -self.config.max_len :]  # (B, T)
        # Per length bucket, without most of the padding: the padded batch's labelled states.
        states, target = masked_states_by_length(
            self._left_states, seq, batch["target"][:, -seq.shape[1] :]
        )  # (M, d), (M,)
        logits = states @ self.item_embedding.weight[1:].T  # (M, num_items)
        ce = cross_entropy_over_items(logits, target)
        return LossOutput(ce, {"ce": ce.detach()})

    def _last_state(self, seq: Tensor) -> Tensor:
        """The state after each row's last item, as a one-column sequence: (B, T) -> (B, 1, d)."""
        states, lengths = self._states(seq)  # (B, T, d)
        rows = torch.arange(seq.shape[0], device=seq.device)
        return states[rows, (lengths - 1).clamp_min(0)].unsqueeze(1)  # (B, 1, d)

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        # Per length bucket: no GRU steps over padding (a GRU's cost is linear in the width).
        last = last_states_by_length(self._last_state, inputs.seq_items[users])  # (B, d)
        return item_scores(last, self.item_embedding.weight[1:])  # (B, num_items)
