"""BERT4Rec: a bidirectional transformer trained with the cloze task.

Sun et al., "BERT4Rec: Sequential Recommendation with Bidirectional Encoder Representations from
Transformer", CIKM 2019. Vocabulary: 0 = pad, 1..num_items = items, num_items + 1 = [MASK].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmseq.data.sampling import cloze_mask
from mmseq.errors import ConfigError
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
class BERT4RecConfig(ItemLossConfig):
    """BERT4Rec hyper-parameters (defaults as in PeerRec's BERT4Rec peers, methods.md 3)."""

    embedding_dim: int = 64  # d, model width
    num_layers: int = 2  # transformer blocks
    num_heads: int = 2  # attention heads per block
    ffn_dim: int = 256  # feed-forward hidden width
    dropout: float = 0.1  # dropout on embeddings and inside the blocks
    mask_prob: float = 0.2  # cloze masking probability per item
    last_only_prob: float = 0.1  # share of training sequences with only the last item masked
    max_len: int = 50  # learned positions, [MASK] included at scoring time


@MODELS.register("bert4rec")
class BERT4Rec(Recommender):
    """``h = Transformer(LN(e_tokens + p))``, ``z = GELU(h W + b) E_items^T + b_items``.

    Scoring appends [MASK] after a user's last ``max_len - 1`` items and reads ``z`` there.
    Positions are counted from the right, as in :class:`~mmseq.models.sasrec.SASRec`.

    Shapes:
        score_all: users (B,) -> (B, num_items) (pad and [MASK] are not items).
    """

    config_class = BERT4RecConfig
    eval_by_length = True  # the evaluator batches users of similar length (less padding)
    #: 2: scores are the full-width pass's to the bit (key-aligned groups), no longer those of
    #: power-of-two buckets of each id-ordered batch (which differed by float rounding).
    result_version = "2"

    def __init__(self, config: BERT4RecConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        if config.max_len < 2:
            raise ConfigError(f"Expected BERT4Rec 'max_len' >= 2 (got {config.max_len})")
        check_item_loss(config, "BERT4Rec config")
        d = config.embedding_dim
        self.mask_token = num_items + 1
        self.token_embedding = nn.Embedding(num_items + 2, d, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, d)
        for emb in (self.token_embedding, self.position_embedding):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.token_embedding.weight[0].zero_()
        self.embedding_norm = nn.LayerNorm(d)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.encoder = TransformerEncoder(
            d_model=d, num_layers=config.num_layers, num_heads=config.num_heads,
            ffn_dim=config.ffn_dim, dropout=config.dropout, causal=False, norm_first=False,
        )
        self.head = nn.Linear(d, d)
        self.item_bias = nn.Parameter(torch.zeros(num_items))

    def embed(self, tokens: Tensor) -> Tensor:
        """The encoder's input for left-padded token rows (B, T <= max_len) -> (B, T, d)."""
        t = tokens.shape[1]
        positions = torch.arange(self.config.max_len - t, self.config.max_len, device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)  # (B, T, d)
        return self.embedding_dropout(self.embedding_norm(x))

    def encode(self, tokens: Tensor) -> Tensor:
        """Hidden states of left-padded token rows (B, T <= max_len) -> (B, T, d)."""
        return self.encoder(self.embed(tokens), padding_mask=tokens == 0)  # (B, T, d)

    def encode_last(self, tokens: Tensor, width: int) -> Tensor:
        """``encode(tokens_w)[:, -1]`` for ``tokens_w``: ``tokens`` (B, T) after ``width - T``
        padding columns; only what that state reads is computed (bit-identical on CPU)."""
        return self.encoder.last_state(self.embed(tokens), tokens == 0, width=width)  # (B, d)

    def item_logits(self, h: Tensor) -> Tensor:
        """Prediction head with tied item embeddings: (M, d) -> (M, num_items)."""
        items = self.token_embedding.weight[1 : self.num_items + 1]  # (num_items, d)
        if h.dim() == 2:  # scoring: the bias added inside the product's pass (same values)
            return item_scores(F.gelu(self.head(h)), items, self.item_bias)
        return F.gelu(self.head(h)) @ items.T + self.item_bias

    @draws_negatives()
    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        seq_items = inputs.seq_items[:, -self.config.max_len :]
        users = torch.nonzero(inputs.seq_lengths > 0).flatten()
        order = torch.randperm(users.numel(), generator=generator, device=generator.device)
        users = users[order.to(users.device)]
        for start in range(0, users.numel(), batch_size):
            u = users[start : start + batch_size]
            tokens, labels = cloze_mask(seq_items[u], self.config.mask_prob, self.mask_token,
                                        generator, last_only_prob=self.config.last_only_prob)
            yield {"user": u, "input": tokens, "target": labels}

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        # Per length bucket: the same states as the padded batch's at the masked positions.
        h, targets = masked_states_by_length(self.encode, batch["input"], batch["target"])
        items = self.token_embedding.weight[1 : self.num_items + 1]  # (num_items, d)
        logits, labels = item_softmax_logits(  # full (M, num_items) or sampled (M, 1 + N)
            self.config, batch, F.gelu(self.head(h)), items, targets, self.item_bias
        )
        ce = cross_entropy_over_items(logits, labels)  # h: (M, d)
        return LossOutput(ce, {"cloze_ce": ce.detach()})

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        seq = inputs.seq_items[users]
        history = seq[:, max(0, seq.shape[1] - (self.config.max_len - 1)) :]  # (B, T-1)
        mask = torch.full_like(history[:, :1], self.mask_token)  # (B, 1)
        # Rows grouped by length, each group without its padding, only the [MASK] position's
        # output computed: bit-identical to the padded batch's states there (mmseq.nn.padding).
        tokens = torch.cat([history, mask], 1)  # (B, T)
        h = last_states_by_length(self.encode, tokens, multiple=KEY_ALIGN,
                                  encode_last=self.encode_last)  # (B, d)
        return self.item_logits(h)  # (B, num_items)
