"""EMKD: an ensemble of BERT4Rec networks trained with contrastive knowledge distillation.

Du et al., "Ensemble Modeling with Contrastive Knowledge Distillation for Sequential
Recommendation", SIGIR 2023 (methods.md 4; seed notes ``EMKD-SIGIR2023-notes.zh.txt``).
Vocabulary as BERT4Rec: 0 = pad, 1..num_items = items, num_items + 1 = [MASK].
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmseq.data.sampling import cloze_mask
from mmseq.errors import ConfigError, DataError
from mmseq.losses.emkd import (
    attribute_prediction_loss,
    ensemble_contrastive_losses,
    mutual_kl_divergence,
)
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.models.item_loss import (
    ItemLossConfig,
    check_item_loss,
    draws_negatives,
    item_softmax_logits,
)
from mmseq.models.registry import MODELS
from mmseq.nn.dropout import UniformDropout
from mmseq.nn.ensemble_transformer import (
    EnsembleLayerNorm,
    EnsembleLinear,
    EnsembleTransformerEncoder,
)
from mmseq.nn.padding import (
    BATCHED_MIN_ROWS,
    KEY_ALIGN,
    last_states_by_length,
    leading_padding,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EMKDConfig(ItemLossConfig):
    """EMKD hyper-parameters; defaults are the official Beauty settings (Toys: ``max_len`` 20)."""

    num_networks: int = 3  # N parallel BERT4Rec networks
    num_views: int = 8  # M masked views of each training sequence
    embedding_dim: int = 256  # d, model width
    num_layers: int = 2  # transformer blocks per network
    num_heads: int = 2  # attention heads per block
    ffn_dim: int = 1024  # feed-forward hidden width (4 d)
    dropout: float = 0.3  # dropout on embeddings and inside the blocks
    mask_prob: float = 0.15  # cloze masking probability per item
    last_only_prob: float = 0.0  # share of views with only the last item masked (EMKD: none)
    max_len: int = 15  # learned positions, [MASK] included at scoring time
    tau: float = 0.3  # temperature of the contrastive distillation (ICL/CCL)
    contrastive_weight: float = 0.01  # lambda, weight of ICL + CCL
    kl_weight: float = 0.001  # mu, weight of the logit distillation (official code's default)
    kl_tau: float = 0.3  # temperature of the logit distillation (official code: = tau)
    attribute_weight: float = 1.0  # weight of the attribute prediction task
    num_attributes: int = 0  # A, columns of extras["item_attributes"]; 0 = no attribute task


@MODELS.register("emkd")
class EMKD(Recommender):
    r"""N BERT4Rec networks (own embeddings, encoder and head each) run as one batched forward.

    Per training batch, each sequence and its M cloze-masked views go through every network:
    :math:`\mathcal{L} = \sum_{n,m} \mathrm{CE}_{n,m} + \mu \sum_m \mathrm{KL}_m
    + w_A \sum_n \mathrm{BCE}_n + \lambda (\mathrm{ICL} + \mathrm{CCL})`, the sums as in the
    paper's loss (each CE/KL term a mean over the masked positions of one view; KL from
    :func:`~mmseq.losses.emkd.mutual_kl_divergence`; ICL/CCL from
    :func:`~mmseq.losses.emkd.ensemble_contrastive_losses` on the flattened hidden states, padding
    zeroed, as the official code). Attribute prediction (methods.md 4): the unmasked sequence's
    hidden state at each item position predicts that item's attributes (BCE).
    Inference averages the N networks' softmax distributions.

    Shapes:
        score_all: users (B,) -> (B, num_items), mean probabilities.
    """

    config_class = EMKDConfig
    #: 2: dropout masks from uniform noise (mmseq.nn.dropout), 1.6x cheaper than bernoulli_ on CPU;
    #: 3: the unmasked sequences are encoded only when a loss term reads them (without the
    #: contrastive and attribute tasks the dropout draws, and so the numbers, differ from 2)
    result_version = "3"
    eval_by_length = True  # the evaluator batches users of similar length (less padding)

    def __init__(self, config: EMKDConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        for name in ("num_networks", "num_views", "num_layers", "num_heads"):
            if getattr(config, name) < 1:
                raise ConfigError(f"Expected EMKD '{name}' >= 1 (got {getattr(config, name)})")
        if config.max_len < 2:
            raise ConfigError(f"Expected EMKD 'max_len' >= 2 (got {config.max_len})")
        for name in ("num_attributes", "contrastive_weight", "kl_weight", "attribute_weight"):
            if getattr(config, name) < 0:
                raise ConfigError(f"Expected EMKD '{name}' >= 0 (got {getattr(config, name)})")
        check_item_loss(config, "EMKD config")
        n, d = config.num_networks, config.embedding_dim
        self.mask_token = num_items + 1
        self.token_embedding = nn.Parameter(torch.randn(n, num_items + 2, d) * 0.02)
        self.position_embedding = nn.Parameter(torch.randn(n, config.max_len, d) * 0.02)
        with torch.no_grad():
            self.token_embedding[:, 0].zero_()  # pad (its outputs are never read)
        self.embedding_norm = EnsembleLayerNorm(num_members=n, d_model=d)
        self.embedding_dropout = UniformDropout(config.dropout)
        self.encoder = EnsembleTransformerEncoder(
            num_members=n, d_model=d, num_layers=config.num_layers, num_heads=config.num_heads,
            ffn_dim=config.ffn_dim, dropout=config.dropout, causal=False, norm_first=False,
        )
        self.head = EnsembleLinear(num_members=n, in_features=d, out_features=d)
        self.item_bias = nn.Parameter(torch.zeros(n, num_items))
        self.attribute_head = (
            EnsembleLinear(num_members=n, in_features=d, out_features=config.num_attributes)
            if config.num_attributes > 0 else None
        )
        self._attributes: tuple[Tensor, Tensor] | None = None  # (source tensor, dense bool)
        self._told = False

    # -- networks -----------------------------------------------------------------------------
    def embed(self, tokens: Tensor) -> Tensor:
        """Each network's encoder input for left-padded rows (B, T <= max_len) -> (N, B, T, d)."""
        t = tokens.shape[1]
        positions = torch.arange(self.config.max_len - t, self.config.max_len, device=tokens.device)
        x = self.token_embedding[:, tokens] + self.position_embedding[:, None, positions]
        return self.embedding_dropout(self.embedding_norm(x))  # (N, B, T, d)

    def encode(self, tokens: Tensor) -> Tensor:
        """Each network's hidden states of left-padded rows (B, T <= max_len) -> (N, B, T, d)."""
        return self.encoder(self.embed(tokens), padding_mask=tokens == 0)  # (N, B, T, d)

    def encode_last(self, tokens: Tensor, width: int) -> Tensor:
        """``encode(tokens_w)[:, :, -1]`` for ``tokens_w``: ``tokens`` (B, T) after
        ``width - T`` padding columns, only what it reads computed (bit-identical on CPU)."""
        return self.encoder.last_state(self.embed(tokens), tokens == 0, width=width)  # (N, B, d)

    def item_logits(self, h: Tensor) -> Tensor:
        """Each network's head with its tied item embeddings: (N, R, d) -> (N, R, num_items)."""
        items = self.token_embedding[:, 1 : self.num_items + 1]  # (N, num_items, d)
        hidden = F.gelu(self.head(h))  # (N, R, d)
        return torch.baddbmm(self.item_bias[:, None, :], hidden, items.transpose(1, 2))

    # -- attributes ---------------------------------------------------------------------------
    def _attribute_matrix(self, inputs: ModelInputs) -> Tensor | None:
        """Dense (num_items, A) bool attributes, cached per source tensor; None if disabled."""
        if self.attribute_head is None:
            return None
        source = inputs.extras.get("item_attributes")
        if source is None:
            raise DataError(
                f"EMKD has num_attributes={self.config.num_attributes} but the inputs carry no "
                "extras['item_attributes'] (S3-Rec data with its *_item2attributes.json provides "
                "them); set model.params.num_attributes=0 to train without the attribute task"
            )
        if self._attributes is None or self._attributes[0] is not source:
            expected = (self.num_items, self.config.num_attributes)
            if tuple(source.shape) != expected:
                raise DataError(
                    f"Expected extras['item_attributes'] of shape {expected} (got "
                    f"{tuple(source.shape)}); set model.params.num_attributes={source.shape[1]}"
                )
            dense = source.to_dense() if source.is_sparse else source
            self._attributes = (source, dense > 0)
        return self._attributes[1]

    # -- training -----------------------------------------------------------------------------
    @draws_negatives()
    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        if self.attribute_head is None and "item_attributes" in inputs.extras and not self._told:
            log.info("EMKD: num_attributes=0, so the inputs' item_attributes are not used")
            self._told = True
        self._attribute_matrix(inputs)  # fail before the first step, not in it
        seq_items = inputs.seq_items[:, -self.config.max_len :]
        users = torch.nonzero(inputs.seq_lengths > 0).flatten()
        order = torch.randperm(users.numel(), generator=generator, device=generator.device)
        users = users[order.to(users.device)]
        m = self.config.num_views
        for start in range(0, users.numel(), batch_size):
            u = users[start : start + batch_size]
            tokens = seq_items[u]  # (B, T)
            views, labels = cloze_mask(tokens.repeat(m, 1), self.config.mask_prob,
                                       self.mask_token, generator,
                                       last_only_prob=self.config.last_only_prob)  # (M*B, T)
            # Columns that are padding in every row (and so in every view) are dropped: the loss
            # is the padded batch's (to float rounding) at a fraction of the cost.
            first = leading_padding(tokens)
            yield {"user": u, "input": tokens[:, first:], "views": views[:, first:],
                   "target": labels[:, first:]}

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        cfg = self.config
        tokens, views, target = batch["input"], batch["views"], batch["target"]
        b, t = tokens.shape
        n, m = cfg.num_networks, cfg.num_views
        attributes = self._attribute_matrix(inputs)
        # The unmasked sequences feed only the contrastive and attribute tasks: without both
        # (the backbone: one network, next-item loss only) a third less is encoded.
        reads_original = cfg.contrastive_weight > 0 or attributes is not None
        if reads_original:
            h = self.encode(torch.cat([tokens, views]))  # (N, (M+1)B, T, d)
            h_orig, h_views = h[:, :b], h[:, b:]
        else:
            h_views = self.encode(views)  # (N, M*B, T, d)

        # Cloze CE and logit KL: one mean per (network, view), summed.
        masked = target >= 0  # (M*B, T)
        if cfg.loss == "sampled":  # KL and CE over the 1 + K candidates (target in column 0)
            items = self.token_embedding[:, 1 : self.num_items + 1]  # (N, num_items, d)
            logits, sample_target = item_softmax_logits(
                cfg, batch, F.gelu(self.head(h_views[:, masked])), items, target[masked],
                self.item_bias,
            )  # (N, R, 1 + K), (R,)
        else:
            logits, sample_target = self.item_logits(h_views[:, masked]), target[masked]
        view_of = torch.arange(m * b, device=tokens.device).div(b, rounding_mode="floor")
        view_of = view_of[:, None].expand(m * b, t)[masked]  # (R,)
        weight = 1.0 / torch.bincount(view_of, minlength=m).clamp_min(1)[view_of]  # (R,)
        labels = sample_target.repeat(n)  # (N*R,)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels, reduction="none")
        cloze = (ce.view(n, -1) * weight).sum()
        kl = (mutual_kl_divergence(logits, tau=cfg.kl_tau, reduction="none") * weight).sum()

        total = cloze + cfg.kl_weight * kl
        terms = {"cloze_ce": cloze, "logit_kl": kl}
        if cfg.contrastive_weight > 0:
            # Contrastive distillation on flattened hidden states (padding zeroed).
            orig = (h_orig * (tokens > 0)[None, :, :, None]).reshape(n, b, -1)  # (N, B, T*d)
            view_rep = (h_views * (views > 0)[None, :, :, None]).reshape(n, m, b, -1)  # (N,M,B,T*d)
            icl, ccl = ensemble_contrastive_losses(orig, view_rep, tau=cfg.tau)
            total = total + cfg.contrastive_weight * (icl + ccl)
            terms.update(icl=icl, ccl=ccl)

        if attributes is not None and self.attribute_head is not None:
            valid = tokens > 0  # (B, T)
            scores = self.attribute_head(h_orig[:, valid])  # (N, P, A)
            truth = attributes[tokens[valid] - 1]  # (P, A)
            a = truth.shape[-1]
            bce = n * attribute_prediction_loss(scores.reshape(-1, a),
                                                truth.expand(n, -1, -1).reshape(-1, a))
            total = total + cfg.attribute_weight * bce
            terms["attribute_bce"] = bce
        return LossOutput(total, {k: v.detach() for k, v in terms.items()})

    # -- inference ----------------------------------------------------------------------------
    def network_logits(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        """Each network's next-item logits: [MASK] appended to the last max_len - 1 items."""
        seq = inputs.seq_items[users]
        history = seq[:, max(0, seq.shape[1] - (self.config.max_len - 1)) :]  # (B, T-1)
        mask = torch.full_like(history[:, :1], self.mask_token)  # (B, 1)
        # Rows grouped by length, each without its padding, only the [MASK] position's output
        # computed: bit-identical to the padded batch's states there (mmseq.nn.padding).
        tokens = torch.cat([history, mask], 1)  # (B, T)
        h = last_states_by_length(self.encode, tokens, multiple=KEY_ALIGN,
                                  encode_last=self.encode_last,
                                  min_rows=BATCHED_MIN_ROWS)  # (N, B, d)
        return self.item_logits(h)  # (N, B, num_items)

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        return self.network_logits(users, inputs).softmax(-1).mean(0)  # (B, num_items)
