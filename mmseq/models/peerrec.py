"""PeerRec: BERT4Rec peers that learn from each other in two stages.

Hu et al., "A Sequential Recommendation Method Enhanced by Peer Knowledge", Acta Automatica Sinica
49(7), 2023 (shared/docs/methods.md section 3; docs/peerrec.md for our readings and the protocol).

T peers are BERT4Rec encoders (post-LN, bidirectional, GELU) with different random initialisation;
the item embedding ``U``, the position embedding ``S`` (with the embedding LayerNorm) and the
prediction head ``z = GELU(h W_O + b_O) U^T + b_U`` are shared. Each peer is an ordinary mmseq
``TransformerEncoder`` (``peers.encoders[p]``); a forward runs the few peers one after the other,
each on the whole batch (stacking their weights into batched matmuls was no faster on CPU and was
dropped, docs/benchmarks.md section 5; old stacked checkpoints still load). Training: stage 1
(mutual distillation) for ``stage1_epochs`` epochs, then stage 2 (deliberate practice) from the
stage-1 weights; the losses are the pure functions of :mod:`mmseq.losses.peer`. Inference uses
one peer (``inference_peer``); :mod:`mmseq.models.peerrec_export` turns it into a plain
:class:`~mmseq.models.bert4rec.BERT4Rec`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmseq.data.sampling import cloze_mask
from mmseq.errors import ConfigError, DataError
from mmseq.losses.peer import deliberate_practice_loss, mutual_distillation_loss
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.models.item_loss import (
    ItemLossConfig,
    check_item_loss,
    draws_negatives,
    item_softmax_logits,
)
from mmseq.models.registry import MODELS
from mmseq.nn.padding import (
    KEY_ALIGN,
    last_states_by_length,
    masked_states_by_length,
)
from mmseq.nn.scores import item_scores
from mmseq.nn.transformer import TransformerEncoder

#: Block parameter of the stacked format (result_version 1: ``peers.layers.<l>.<name>``, shape
#: (T, ...)) -> the same parameter of mmseq's ``TransformerBlock``
#: (``peers.encoders.<p>.blocks.<l>.<path>``).
BLOCK_PARAMETERS: dict[str, str] = {
    "qkv_weight": "attention.qkv.weight", "qkv_bias": "attention.qkv.bias",
    "out_weight": "attention.out.weight", "out_bias": "attention.out.bias",
    "ffn_in_weight": "ffn.0.weight", "ffn_in_bias": "ffn.0.bias",
    "ffn_out_weight": "ffn.3.weight", "ffn_out_bias": "ffn.3.bias",
    "norm1_weight": "norm1.weight", "norm1_bias": "norm1.bias",
    "norm2_weight": "norm2.weight", "norm2_bias": "norm2.bias",
}
_STACKED_KEY = re.compile(r"^layers\.(\d+)\.(\w+)$")


def unstack_peer_state(state: Mapping[str, Tensor], prefix: str = "peers.") -> dict[str, Tensor]:
    """A state dict with stacked peer weights (the format of PeerRec ``result_version`` 1,
    ``{prefix}layers.<l>.qkv_weight`` of shape (T, 3d, d), ...) in the per-peer format
    (``{prefix}encoders.<p>.blocks.<l>.attention.qkv.weight`` of shape (3d, d), ...); keys of
    the per-peer format and all other keys pass through unchanged (values are views)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        match = _STACKED_KEY.match(key[len(prefix):]) if key.startswith(prefix) else None
        if match is None or match.group(2) not in BLOCK_PARAMETERS:
            out[key] = value
            continue
        layer, name = match.groups()
        for peer in range(value.shape[0]):
            out[f"{prefix}encoders.{peer}.blocks.{layer}.{BLOCK_PARAMETERS[name]}"] = value[peer]
    return out


def _load_stacked_checkpoints(module: nn.Module, state_dict: dict[str, Tensor], prefix: str,
                              *_: object) -> None:
    """``load_state_dict`` pre-hook of :class:`PeerTransformerEncoder`: old checkpoints with
    stacked peer weights load into the per-peer encoders (in place on the loader's copy)."""
    if not any(k.startswith(prefix + "layers.") for k in state_dict):
        return
    converted = unstack_peer_state(state_dict, prefix)
    state_dict.clear()
    state_dict.update(converted)


@dataclass(frozen=True)
class PeerRecConfig(ItemLossConfig):
    """PeerRec hyper-parameters (paper defaults; (alpha, beta, gamma) are LastFM's best)."""

    num_peers: int = 2  # T, number of peer networks (>= 2 unless stage == "distill")
    embedding_dim: int = 64  # d, model width
    num_layers: int = 2  # transformer blocks per peer
    num_heads: int = 2  # attention heads per block
    ffn_dim: int = 256  # feed-forward hidden width
    dropout: float = 0.1  # dropout on embeddings and inside the blocks
    mask_prob: float = 0.2  # cloze masking probability per item
    last_only_prob: float = 0.1  # share of training sequences with only the last item masked
    max_len: int = 200  # N: training window length and learned positions ([MASK] included)
    train_windows: bool = True  # cut long histories into windows from the right (else last N only)
    window_stride: int = 0  # items between window ends; 0 = max_len (non-overlapping)
    stage: Literal["both", "distill", "practice"] = "both"  # stage 1 then 2 / only 1 / only 2
    stage1_epochs: int = 20  # with stage "both": epochs of stage 1 before stage 2 starts
    alpha: float = 0.5  # stage 2: weight of the plain cross-entropy
    beta: float = 0.01  # stage 2: share of masked samples filtered as noise
    gamma: float = 1.0  # stage 2: deliberate-practice strength
    inference_peer: int = 0  # the peer that scores at evaluation time
    peer_init: Literal["pytorch", "truncated_normal"] = "pytorch"  # encoder weight init


class PeerTransformerEncoder(nn.Module):
    """T bidirectional post-LN encoders, one ordinary mmseq ``TransformerEncoder`` per peer
    (``encoders[p]``), run one after the other on the whole batch.

    Each peer is initialised exactly as an mmseq ``TransformerEncoder`` (built one after the
    other from the global RNG, so a 1-peer encoder equals BERT4Rec's under the same seed), or
    with BERT's truncated normal (std 0.02, +-2 std; zero biases) when ``init="truncated_normal"``.
    Checkpoints of the former stacked format (``layers.<l>.qkv_weight`` (T, 3d, d), ...) load
    through a ``load_state_dict`` pre-hook (:func:`unstack_peer_state`).

    Args:
        num_peers: T.
        d_model, num_layers, num_heads, ffn_dim, dropout: as ``TransformerEncoder``.
        init: ``"pytorch"`` (nn.Linear's default) or ``"truncated_normal"`` (the paper's TND).

    Shapes:
        x: (P, B, L, d) with P = T, or 1 when ``peer`` is given; padding_mask: (B, L) bool;
        returns (P, B, L, d).
    """

    def __init__(self, *, num_peers: int, d_model: int, num_layers: int, num_heads: int,
                 ffn_dim: int, dropout: float, init: str = "pytorch") -> None:
        super().__init__()
        self.num_peers = num_peers
        self.encoders = nn.ModuleList(
            TransformerEncoder(d_model=d_model, num_layers=num_layers, num_heads=num_heads,
                               ffn_dim=ffn_dim, dropout=dropout, causal=False, norm_first=False)
            for _ in range(num_peers)
        )
        if init == "truncated_normal":
            for module in self.encoders.modules():
                if isinstance(module, nn.Linear):
                    nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
                    nn.init.zeros_(module.bias)
        self.register_load_state_dict_pre_hook(_load_stacked_checkpoints)

    def forward(self, x: Tensor, padding_mask: Tensor, peer: int | None = None) -> Tensor:
        encoders = list(self.encoders) if peer is None else [self.encoders[peer]]
        if x.shape[0] != len(encoders):
            raise ValueError(f"Expected x of shape (P, B, L, d) with P = {len(encoders)} "
                             f"(got {tuple(x.shape)})")
        # A loop over the T (2-3) peers, each on the whole batch: on CPU as fast as stacking
        # the peers' weights into batched matmuls (docs/benchmarks.md section 5).
        states = [enc(x_p, padding_mask) for enc, x_p in zip(encoders, x.unbind(0))]
        return torch.stack(states) if len(states) > 1 else states[0].unsqueeze(0)


def peer_last_states(peers: PeerTransformerEncoder, x: Tensor, padding_mask: Tensor, width: int,
                     peer: int | None = None) -> Tensor:
    """``peers(x_w, mask_w, peer)[:, :, -1]`` for ``x_w``: ``x`` after ``width - T`` padding
    columns, at evaluation (no dropout), computing only what that state reads: each peer's
    :meth:`mmseq.nn.transformer.TransformerEncoder.last_state` (bit-identical on CPU to the
    full-width pass), one peer after the other.

    Shapes:
        x: (P, B, T, d); padding_mask: (B, T) bool, True at padding; returns (P, B, d).
    """
    encoders = list(peers.encoders) if peer is None else [peers.encoders[peer]]
    if x.shape[0] != len(encoders):
        raise ValueError(f"Expected x of shape (P, B, T, d) with P = {len(encoders)} "
                         f"(got {tuple(x.shape)})")
    states = [enc.last_state(x_p, padding_mask, width=width)  # a loop over the 2-3 peers
              for enc, x_p in zip(encoders, x.unbind(0))]
    return torch.stack(states)  # (P, B, d)


@MODELS.register("peerrec")
class PeerRec(Recommender):
    """T BERT4Rec peers with shared embeddings and head, trained by mutual distillation then
    deliberate practice; one peer scores.

    Vocabulary as BERT4Rec: 0 = pad, 1..num_items = items, num_items + 1 = [MASK]. Scoring
    appends [MASK] after the user's last ``max_len - 1`` items and reads peer
    ``inference_peer``'s ``z`` there.

    Shapes:
        encode: tokens (B, L) -> (T, B, L, d) (or (1, B, L, d) for one peer);
        score_all: users (B,) -> (B, num_items).
    """

    config_class = PeerRecConfig
    #: 2: (a) peers run one after the other (one TransformerEncoder each) instead of one stacked
    #: pass: same weights give the same logits and losses, and dropout draws as many numbers from
    #: the global RNG, but each peer's dropout masks come from other parts of the stream, so
    #: trained numbers differ from version 1's; (b) evaluation scores are the full-width pass's to
    #: the bit (key-aligned groups), no longer those of power-of-two buckets of each id-ordered
    #: batch (float rounding apart). Both landed before any version-2 result was stored.
    result_version = "2"
    epochs_started: Tensor
    eval_by_length = True  # the evaluator batches users of similar length (less padding)

    def __init__(self, config: PeerRecConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        _check_config(config)
        d = config.embedding_dim
        # Built in BERT4Rec's order so that the global RNG gives a 1-peer PeerRec BERT4Rec's
        # exact initial weights (tests/models/test_peerrec.py relies on it).
        self.mask_token = num_items + 1
        self.token_embedding = nn.Embedding(num_items + 2, d, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, d)
        for emb in (self.token_embedding, self.position_embedding):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.token_embedding.weight[0].zero_()
        self.embedding_norm = nn.LayerNorm(d)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.peers = PeerTransformerEncoder(
            num_peers=config.num_peers, d_model=d, num_layers=config.num_layers,
            num_heads=config.num_heads, ffn_dim=config.ffn_dim, dropout=config.dropout,
            init=config.peer_init,
        )
        self.head = nn.Linear(d, d)
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        # Epochs begun so far (one per training_batches call); saved with the weights so that a
        # resumed run continues in the right stage.
        self.register_buffer("epochs_started", torch.zeros((), dtype=torch.long))

    def stage_of_epoch(self, epoch: int) -> int:
        """The training stage (1 or 2) of 1-based ``epoch``."""
        if self.config.stage == "distill":
            return 1
        if self.config.stage == "practice":
            return 2
        return 1 if epoch <= self.config.stage1_epochs else 2

    def encode(self, tokens: Tensor, peer: int | None = None) -> Tensor:
        """Hidden states of left-padded tokens (B, L <= max_len): all peers, or one."""
        t = tokens.shape[1]
        positions = torch.arange(self.config.max_len - t, self.config.max_len,
                                 device=tokens.device)
        x = self.embedding_norm(self.token_embedding(tokens) + self.position_embedding(positions))
        copies = self.config.num_peers if peer is None else 1
        x = self.embedding_dropout(x.expand(copies, *x.shape))  # (P, B, L, d), own mask per peer
        return self.peers(x, tokens == 0, peer)

    def encode_last(self, tokens: Tensor, width: int, peer: int | None = None) -> Tensor:
        """``encode(tokens_w, peer)[:, :, -1]`` for ``tokens_w``: ``tokens`` (B, L) after
        ``width - L`` padding columns, at evaluation, only what it reads computed (exact)."""
        if self.training:
            raise RuntimeError("PeerRec.encode_last is for evaluation (model.eval())")
        t = tokens.shape[1]
        positions = torch.arange(self.config.max_len - t, self.config.max_len,
                                 device=tokens.device)
        x = self.embedding_norm(self.token_embedding(tokens) + self.position_embedding(positions))
        x = x.expand(self.config.num_peers if peer is None else 1, *x.shape)  # (P, B, L, d)
        return peer_last_states(self.peers, x, tokens == 0, width, peer)  # (P, B, d)

    def item_logits(self, h: Tensor) -> Tensor:
        """Shared head with the tied item embedding: (..., d) -> (..., num_items)."""
        items = self.token_embedding.weight[1 : self.num_items + 1]  # (num_items, d)
        if h.dim() == 2:  # scoring: the bias added inside the product's pass (same values)
            return item_scores(F.gelu(self.head(h)), items, self.item_bias)
        return F.gelu(self.head(h)) @ items.T + self.item_bias

    def training_rows(self, inputs: ModelInputs) -> tuple[Tensor, Tensor]:
        """Training sequences (R, L) (item index + 1, left-padded) and their users (R,).

        With ``train_windows`` every history is cut from the right into windows of ``max_len``
        items whose ends are ``window_stride`` apart (the oldest window starts at the first item
        and may overlap the next one); otherwise each user gives its last ``max_len`` items.
        """
        n = self.config.max_len
        if not self.config.train_windows:
            seq = inputs.seq_items[:, -n:]
            users = torch.nonzero(inputs.seq_lengths > 0).flatten()
            return seq[users], users
        user, item = inputs.user, inputs.item
        if user.numel() > 1 and bool((user[1:] < user[:-1]).any()):
            raise DataError("Expected ModelInputs.user to be grouped by user (sorted); "
                            "build inputs with mmseq.data.inputs.build_model_inputs")
        stride = self.config.window_stride or n
        counts = torch.bincount(user, minlength=inputs.num_users)  # (U,)
        offsets = torch.cumsum(counts, 0) - counts
        windows = torch.where(counts > 0, 1 + torch.div((counts - n).clamp_min(0) + stride - 1,
                                                        stride, rounding_mode="floor"), 0)
        users = torch.repeat_interleave(torch.arange(inputs.num_users, device=user.device),
                                        windows)  # (R,)
        first = torch.cumsum(windows, 0) - windows
        w = torch.arange(users.numel(), device=user.device) - first[users]  # window of its user
        size = counts[users]
        start = (size - n - w * stride).clamp_min(0)  # (R,)
        length = size.clamp_max(n)
        col = torch.arange(n, device=user.device)
        pos = start[:, None] + col[None, :] - (n - length)[:, None]  # (R, L) position in history
        valid = pos >= start[:, None]
        idx = (offsets[users][:, None] + pos.clamp_min(0)).clamp_max(max(item.numel() - 1, 0))
        return torch.where(valid, item[idx] + 1, 0), users

    @draws_negatives()
    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        self.epochs_started.add_(1)
        stage = self.stage_of_epoch(int(self.epochs_started))
        rows, users = self.training_rows(inputs)
        return self._batches(rows, users, stage, batch_size, generator)

    def _batches(self, rows: Tensor, users: Tensor, stage: int, batch_size: int,
                 generator: torch.Generator) -> Iterator[dict[str, Tensor]]:
        order = torch.randperm(users.numel(), generator=generator, device=generator.device)
        order = order.to(users.device)
        stage_tensor = torch.tensor(stage, device=users.device)
        for start in range(0, users.numel(), batch_size):
            pick = order[start : start + batch_size]
            tokens, labels = cloze_mask(rows[pick], self.config.mask_prob, self.mask_token,
                                        generator, last_only_prob=self.config.last_only_prob)
            yield {"user": users[pick], "input": tokens, "target": labels, "stage": stage_tensor}

    def peer_logits(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Every peer's logits at the masked positions (T, M, num_items) and the targets (M,).

        Rows are encoded per length bucket (:func:`mmseq.nn.padding.masked_states_by_length`);
        the samples keep the whole batch's row-major order, so the stage-2 noise filter breaks
        ties as on the padded batch. With ``loss: sampled`` the logits are the 1 + N candidates
        of :func:`~mmseq.models.item_loss.item_softmax_logits` (T, M, 1 + N) and the targets 0:
        both stages' losses then run over the candidates instead of all items.
        """
        h, targets = masked_states_by_length(self.encode, batch["input"], batch["target"])
        if self.config.loss != "sampled":
            return self.item_logits(h), targets  # (T, M, num_items), (M,)
        items = self.token_embedding.weight[1 : self.num_items + 1]  # (num_items, d)
        return item_softmax_logits(self.config, batch, F.gelu(self.head(h)), items, targets,
                                   self.item_bias)  # (T, M, 1 + N), (M,)

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        if "stage" not in batch:
            raise ValueError("Expected the batch to carry 'stage' (1 or 2); build batches with "
                             f"PeerRec.training_batches (got keys {sorted(batch)})")
        logits, targets = self.peer_logits(batch)
        return self.loss_from_logits(logits, targets, int(batch["stage"]))

    def loss_from_logits(self, logits: Tensor, targets: Tensor, stage: int) -> LossOutput:
        """The stage-1 or stage-2 loss of the peers' logits (T, M, num_items), targets (M,)."""
        if stage == 1:
            out = mutual_distillation_loss(logits, targets)
        else:
            c = self.config
            out = deliberate_practice_loss(logits, targets, alpha=c.alpha, beta=c.beta,
                                           gamma=c.gamma)
        # Each peer minimises its own loss; the sum gives every peer its full gradient (and the
        # shared embedding/head the sum of theirs), as separate optimisers per peer would.
        terms = {name: value.detach().mean() for name, value in out.terms.items()}
        terms["ce_inference_peer"] = out.terms["ce"][self.config.inference_peer].detach()
        terms["stage"] = torch.tensor(float(stage), device=logits.device)
        if stage == 2:
            terms["filtered"] = torch.tensor(float(out.filtered), device=logits.device)
        return LossOutput(out.total.sum(), terms)

    def query_tokens(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        """Scoring input (B, N): each user's last ``max_len - 1`` history items, then [MASK]."""
        seq = inputs.seq_items[users]
        history = seq[:, max(0, seq.shape[1] - (self.config.max_len - 1)) :]  # (B, N-1)
        mask = torch.full_like(history[:, :1], self.mask_token)  # (B, 1)
        return torch.cat([history, mask], 1)

    def _user_states(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        return self.sequence_states(users, inputs, self.config.inference_peer)[0]  # (B, d)

    def sequence_states(self, users: Tensor, inputs: ModelInputs, peer: int | None = None
                        ) -> Tensor:
        """The peers' states at a [MASK] after each user's history (:meth:`query_tokens`), for
        every peer (``peer=None``) or one: users (B,) -> (T or 1, B, d). Each distinct user is
        encoded once, per length bucket."""
        unique, inverse = torch.unique(users, return_inverse=True)
        tokens = self.query_tokens(unique, inputs)  # (U, N)
        if self.training:  # power-of-two length buckets (to float rounding the padded pass)
            states = last_states_by_length(lambda t: self.encode(t, peer), tokens)
        else:  # key-aligned groups, only the [MASK] output computed: the padded pass's, exactly
            states = last_states_by_length(
                lambda t: self.encode(t, peer), tokens, multiple=KEY_ALIGN,
                encode_last=lambda t, w: self.encode_last(t, w, peer),
            )  # (T or 1, U, d)
        return states[:, inverse]

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        return self.item_logits(self._user_states(users, inputs))  # (B, num_items)

    def score_candidates(self, users: Tensor, items: Tensor, inputs: ModelInputs) -> Tensor:
        g = F.gelu(self.head(self._user_states(users, inputs)))  # (B, d)
        emb = self.token_embedding.weight[items + 1]  # (B, C, d)
        return torch.einsum("bd,bcd->bc", g, emb) + self.item_bias[items]


def _check_config(c: PeerRecConfig) -> None:
    where = "PeerRec config"
    check_item_loss(c, where)
    if c.num_peers < 1:
        raise ConfigError(f"{where}: expected 'num_peers' >= 1 (got {c.num_peers})")
    if c.num_peers < 2 and c.stage != "distill":
        raise ConfigError(f"{where}: stage '{c.stage}' needs 'num_peers' >= 2 for the pseudo-peer "
                          f"(got {c.num_peers}); a single peer trains with stage 'distill' "
                          "(plain BERT4Rec)")
    if not 0 <= c.inference_peer < c.num_peers:
        raise ConfigError(f"{where}: expected 'inference_peer' in [0, {c.num_peers}) "
                          f"(got {c.inference_peer})")
    if c.max_len < 2:
        raise ConfigError(f"{where}: expected 'max_len' >= 2 (got {c.max_len})")
    if c.stage1_epochs < 0 or c.window_stride < 0:
        raise ConfigError(f"{where}: expected 'stage1_epochs' and 'window_stride' >= 0 "
                          f"(got {c.stage1_epochs}, {c.window_stride})")
    for name, lo, hi in (("alpha", 0.0, 1.0), ("beta", 0.0, 1.0), ("mask_prob", 0.0, 1.0),
                         ("last_only_prob", 0.0, 1.0), ("dropout", 0.0, 1.0)):
        value = getattr(c, name)
        if not lo <= value <= hi:
            raise ConfigError(f"{where}: expected '{name}' in [{lo}, {hi}] (got {value})")
    if c.gamma < 0:
        raise ConfigError(f"{where}: expected 'gamma' >= 0 (got {c.gamma})")
