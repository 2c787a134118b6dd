"""SASRec: a causal self-attention encoder over the item sequence predicts the next item.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018. Trained with softmax
cross-entropy over ALL items at every position (not the paper's BCE with one sampled negative),
which is the stronger, now common variant; ``loss: sampled`` swaps it for sampled softmax over
shared negatives (:mod:`mmseq.models.item_loss`, the "SASRec + SS" of gSASRec / eSASRec).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmseq.data.sampling import next_item_batches
from mmseq.losses import cross_entropy_over_items
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.models.item_loss import (
    ItemLossConfig,
    check_item_loss,
    draws_negatives,
    item_softmax_logits,
)
from mmseq.models.registry import MODELS
from mmseq.nn.padding import KEY_ALIGN, last_states_by_length, masked_states_by_length
from mmseq.nn.scores import item_scores
from mmseq.nn.transformer import TransformerEncoder


@dataclass(frozen=True)
class SASRecConfig(ItemLossConfig):
    """SASRec hyper-parameters (defaults from the paper, except the loss: ``loss`` ce/sampled)."""

    embedding_dim: int = 64  # d, item/position embedding and model width
    num_layers: int = 2  # self-attention blocks
    num_heads: int = 1  # attention heads per block
    dropout: float = 0.2  # dropout on embeddings and inside the blocks
    max_len: int = 50  # learned positions; the most recent max_len items are read


@MODELS.register("sasrec")
class SASRec(Recommender):
    """``h = CausalTransformer(sqrt(d) e_items + p)``, ``score(t, j) = h_t . e_j``.

    Positions are counted from the right (the most recent item always has position
    ``max_len - 1``), so the shorter training inputs (``seq[:, :-1]``) and the full scoring
    sequences share one position table.

    Shapes:
        score_all: users (B,) -> (B, num_items), read at the last (most recent) position.
    """

    config_class = SASRecConfig
    eval_by_length = True  # the evaluator batches users of similar length (less padding)

    def __init__(self, config: SASRecConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        check_item_loss(config, "SASRec config")
        d = config.embedding_dim
        self.item_embedding = nn.Embedding(num_items + 1, d, padding_idx=0)  # 0 = pad
        self.position_embedding = nn.Embedding(config.max_len, d)
        for emb in (self.item_embedding, self.position_embedding):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.encoder = TransformerEncoder(
            d_model=d, num_layers=config.num_layers, num_heads=config.num_heads, ffn_dim=d,
            dropout=config.dropout, causal=True, norm_first=True,
        )

    def embed(self, seq: Tensor, item_table: Tensor | None = None) -> Tensor:
        """The encoder's input for left-padded rows ``seq`` (B, T <= max_len) -> (B, T, d)."""
        t = seq.shape[1]
        positions = torch.arange(self.config.max_len - t, self.config.max_len, device=seq.device)
        items = self.item_embedding(seq) if item_table is None else item_table[seq]  # (B, T, d)
        x = items * math.sqrt(self.config.embedding_dim)
        return self.embedding_dropout(x + self.position_embedding(positions))  # (B, T, d)

    def encode(self, seq: Tensor, item_table: Tensor | None = None) -> Tensor:
        """Hidden states of left-padded rows ``seq`` (item index + 1) -> (B, T, d).

        ``item_table`` (num_items + 1, d), row 0 = padding, replaces the ID embedding as the
        input item representation (models that enrich items, e.g. with graph embeddings).
        """
        seq = seq[:, -self.config.max_len :]  # (B, T)
        return self.encoder(self.embed(seq, item_table), padding_mask=seq == 0)  # (B, T, d)

    def encode_last(self, seq: Tensor, width: int) -> Tensor:
        """``encode(seq_w)[:, -1]`` for ``seq_w``: ``seq`` (B, T) after ``width - T`` padding
        columns; only what that state reads is computed (bit-identical on CPU) -> (B, d)."""
        return self.encoder.last_state(self.embed(seq), seq == 0, width=width)

    @draws_negatives()
    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        return next_item_batches(inputs.seq_items, batch_size, generator)

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        seq = batch["input"][:, -self.config.max_len :]  # (B, T)
        # Per length bucket, without most of the padding: the padded batch's labelled states.
        h, target = masked_states_by_length(self.encode, seq, batch["target"][:, -seq.shape[1] :])
        logits, labels = item_softmax_logits(  # (M, num_items) or (M, 1 + N) sampled
            self.config, batch, h, self.item_embedding.weight[1:], target
        )
        ce = cross_entropy_over_items(logits, labels)
        return LossOutput(ce, {"ce": ce.detach()})

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        # Rows grouped by length, each group without its padding, only the last position's
        # output computed: bit-identical to the padded batch's last states (mmseq.nn.padding).
        seq = inputs.seq_items[users, -self.config.max_len :]  # (B, T)
        h = last_states_by_length(self.encode, seq, multiple=KEY_ALIGN,
                                  encode_last=self.encode_last)  # (B, d)
        return item_scores(h, self.item_embedding.weight[1:])  # (B, num_items)
