"""SD-MTMP-Seq: the flagship variant, a causal transformer over graph- and topic-aware items.

Built from the same ingredients as SD-MTMP (methods.md 1) and its fused PeerRec variant, the way
text-aware sequential recommenders use side information: the item representation that the
sequence encoder reads AND scores against is

    ``e_i = q_i^ID + [e_i^inter] + [e_i^topic] + [e_i^text]``

(ID embedding of :class:`SASRec`, plus SD-MTMP's rating-aware GCN and topic-aware hypergraph item
rows, plus ``e_i^text = Dropout(LN?(W_text x_i))``, a bias-free projection of the item's review-text
embedding ``x_i`` read from ``features["text"]`` of the ``item_text_embedding`` part; each
switchable), a causal SASRec encoder gives ``h_t`` for every prefix, and at the last
position the dual rating x time attention of SD-MTMP over the row's most recent items is added
through a sigmoid gate:

    ``e_u = h_T + alpha_s e_u^short``, ``e_u^short = sum_j w_j e_j``,
    ``alpha_s = sigmoid(e_u^short . w_s)``, ``score(u, i) = e_u . e_i``.

Loss: softmax cross-entropy over all items at every position (``score_loss: ce``; ``bpr`` with
one uniform negative per position is the paper's loss for comparison; ``sampled`` is the shared
logQ-corrected sampled softmax of :mod:`mmseq.losses.sampled_softmax`, for large catalogues)
+ SD-MTMP's ``gamma2 Loss_SD + lambda L2`` when ``sdmtmp.gamma2`` / ``sdmtmp.reg_weight`` are > 0.

Each part is a submodule used through its public methods (:meth:`SASRec.encode`,
:meth:`SDMTMP.encode`, :class:`RatingTimeAttention`); this module only wires them. The short-term
view is computed from the encoded row itself (the training input ``seq[:, :-1]``, or the whole
history when scoring), so no target enters its own prediction. Docs: docs/flagship.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from mmseq.data.sampling import next_item_batches
from mmseq.errors import ArtifactError, ConfigError
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.models.registry import MODELS
from mmseq.models.sasrec import SASRec, SASRecConfig
from mmseq.models.sdmtmp import (
    ITEM_TOPIC_GRAPH,
    RATING_GRAPH,
    SDMTMP,
    USER_TOPIC_GRAPH,
    Encoded,
    ScoreLoss,
    SDMTMPConfig,
    sampled_softmax_functions,
    score_loss,
    shared_negatives,
)
from mmseq.nn.gated_fusion import AdaptiveGatedFusion
from mmseq.nn.rating_time_attention import interaction_ages, short_term_mask
from mmseq.nn.scores import item_scores

#: The graph part carrying the item text features (built by ``graphs/item_text_embedding.py``).
ITEM_TEXT = "item_text_embedding"
#: Its dense feature: (num_items, text_dim) float, zero rows for items without training text.
TEXT_FEATURE = "text"


@dataclass(frozen=True, eq=False)
class _Tables:
    """One propagation: ``items`` (n + 1, d) with a zero padding row, ``long_users`` (m, d)."""

    items: Tensor
    long_users: Tensor | None = None
    encoded: Encoded | None = None


@dataclass(frozen=True)
class SDMTMPSeqConfig:
    """The flagship variant: a SASRec part, an SD-MTMP part and the switches that join them.

    In YAML the parts are nested mappings (``model.params.sequence.num_layers: 2``,
    ``model.params.sdmtmp.num_layers: 1``); keys left out take that part's own defaults.
    ``sdmtmp.score_loss`` is unused (this model's own ``score_loss`` applies).
    """

    sequence: SASRecConfig = field(default_factory=SASRecConfig)  # the causal transformer
    sdmtmp: SDMTMPConfig = field(default_factory=SDMTMPConfig)  # graph encoders, attention, SD
    item_graph: bool = True  # add the rating-graph GCN item row e_i^inter to q_i^ID
    item_topic: bool = True  # add the topic-hypergraph item row e_i^topic to q_i^ID
    short_term: bool = True  # add the gated rating x time short-term vector at the last position
    user_long: bool = True  # add SD-MTMP's gated long-term user vector e_u^inter + e_u^topic too
    score_loss: ScoreLoss = "ce"  # softmax, all items | bpr, 1 negative/position | sampled
    num_negatives: int = 256  # N negatives shared by a batch for score_loss='sampled'
    item_text: bool = False  # add e_i^text = W_text x_i (item_text_embedding part) to q_i^ID
    text_dim: int = 384  # width of features["text"] (the sentence encoder's, MiniLM: 384)
    text_layer_norm: bool = False  # LayerNorm(d) on the projected text row
    text_dropout: float = 0.0  # dropout on the projected text row (training only)

    def __post_init__(self) -> None:
        if self.num_negatives < 1:
            raise ConfigError(f"Expected 'num_negatives' >= 1 (got {self.num_negatives})")
        if self.text_dim < 1:
            raise ConfigError(f"Expected 'text_dim' >= 1 (got {self.text_dim})")
        if not 0.0 <= self.text_dropout < 1.0:
            raise ConfigError(f"Expected 'text_dropout' in [0, 1) (got {self.text_dropout})")
        if self.sdmtmp.embedding_dim != self.sequence.embedding_dim:
            raise ConfigError(
                "Expected 'sdmtmp.embedding_dim' to equal 'sequence.embedding_dim' (graph item "
                f"rows are added to the ID embedding) (got {self.sdmtmp.embedding_dim} and "
                f"{self.sequence.embedding_dim})"
            )
        if self.item_topic and not self.sdmtmp.uses_topics:
            raise ConfigError(
                "Expected 'item_topic: false' with 'sdmtmp.ablation: w/o-H' (no topic "
                "representations exist without the hypergraphs)"
            )
        if self.sdmtmp.ablation not in ("none", "w/o-H"):
            raise ConfigError(
                "Expected 'sdmtmp.ablation' in ['none', 'w/o-H'] (the others change SD-MTMP's "
                f"user fusion, which this model does not use) (got {self.sdmtmp.ablation!r})"
            )

    @property
    def uses_graphs(self) -> bool:
        """Whether the SD-MTMP encoders run at all (else the model is SASRec + short term)."""
        sd_active = self.sdmtmp.uses_topics and self.sdmtmp.gamma2 > 0
        return self.item_graph or self.item_topic or self.user_long or sd_active

    @property
    def user_branches(self) -> tuple[str, ...]:
        """The gated user-side branches added to the last state, in gate order."""
        return tuple(b for b, on in (("long", self.user_long), ("short", self.short_term)) if on)


@MODELS.register("sdmtmp_seq")
class SDMTMPSeq(Recommender):
    """SASRec over ``q^ID + e^inter + e^topic`` items, plus SD-MTMP's short-term attention.

    With ``item_graph``, ``item_topic``, ``user_long``, ``short_term`` and ``item_text`` off and
    ``sdmtmp.gamma2 = 0`` this is :class:`SASRec` exactly (same weights, same scores, same loss).

    Args:
        config: :class:`SDMTMPSeqConfig`.
        num_users, num_items: sizes of the id space.

    Shapes:
        item_table: -> (num_items + 1, d), row 0 = padding;
        score_all: users (B,) -> (B, num_items).
    """

    config_class = SDMTMPSeqConfig
    requires_graphs: ClassVar[tuple[str, ...]] = (RATING_GRAPH, USER_TOPIC_GRAPH, ITEM_TOPIC_GRAPH)

    def __init__(self, config: SDMTMPSeqConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        self.sequence = SASRec(config.sequence, num_users, num_items)
        self.sdmtmp = SDMTMP(config.sdmtmp, num_users, num_items)
        # SD-MTMP's user-side fusion (alpha1 e^long + alpha2 e^short) is replaced by this model's
        # last-state fusion: drop its unused gate so that the state dict holds only what is used.
        del self.sdmtmp.fusion
        branches = len(config.user_branches)
        # w_long, w_short: one independent sigmoid gate per user-side branch (as SD-MTMP's).
        self.user_gate = (
            AdaptiveGatedFusion(config.sequence.embedding_dim, branches) if branches else None
        )
        d = config.sequence.embedding_dim
        if config.item_text:
            # W_text: bias-free, so that an item without training text (zero x_i) adds nothing.
            self.text_projection = nn.Linear(config.text_dim, d, bias=False)
            nn.init.xavier_uniform_(self.text_projection.weight)
            self.text_norm = nn.LayerNorm(d) if config.text_layer_norm else nn.Identity()
            self.text_dropout = nn.Dropout(config.text_dropout)
        # The runner reads the graphs to load from the instance.
        graphs = self.sdmtmp.requires_graphs if config.uses_graphs else ()
        self.requires_graphs = graphs + ((ITEM_TEXT,) if config.item_text else ())  # type: ignore[misc]
        self._eval: _Tables | None = None

    # ------------------------------------------------------------------ representations
    def text_features(self, inputs: ModelInputs) -> Tensor:
        """``x`` (num_items, text_dim): ``features["text"]`` of the ``item_text_embedding`` part.

        Raises:
            ArtifactError: the part is not in ``inputs.graphs``, or has no (num_items, text_dim)
                ``"text"`` feature.
        """
        part = inputs.graphs.get(ITEM_TEXT)
        if part is None:
            raise ArtifactError(
                f"SD-MTMP-Seq with 'item_text: true' needs the graph '{ITEM_TEXT}' in "
                f"inputs.graphs (has: {sorted(inputs.graphs)}); add {{builder: {ITEM_TEXT}}} to "
                "the config's 'graphs' list and run scripts/build_graphs.py --config <config>"
            )
        text = part.features.get(TEXT_FEATURE)
        want = (self.num_items, self.config.text_dim)
        if text is None or tuple(text.shape) != want:
            got = None if text is None else tuple(text.shape)
            raise ArtifactError(
                f"Expected '{ITEM_TEXT}'.features['{TEXT_FEATURE}'] of shape {want} (got {got}); "
                "set model.params.text_dim to the encoder width, or rebuild the part for this data"
            )
        return text

    def text_rows(self, inputs: ModelInputs) -> Tensor:
        """``e^text = Dropout(LN?(x W_text^T))`` (num_items, d); zero rows for items without text
        unless ``text_layer_norm`` (LayerNorm's bias)."""
        x = self.text_features(inputs).to(self.text_projection.weight.dtype)  # (n, text_dim)
        return self.text_dropout(self.text_norm(self.text_projection(x)))  # (n, d)

    def represent(self, inputs: ModelInputs) -> _Tables:
        """Every item's ``e_i`` (with a zero padding row) and every user's ``e_u^long``."""
        cfg = self.config
        table = self.sequence.item_embedding.weight  # (n + 1, d), row 0 = pad
        if not cfg.uses_graphs:
            if not cfg.item_text:
                return _Tables(table)
            pad = table.new_zeros(1, table.shape[1])
            return _Tables(torch.cat([pad, table[1:] + self.text_rows(inputs)]))  # (n + 1, d)
        enc = self.sdmtmp.encode(inputs)
        items = table[1:]  # (n, d)
        if cfg.item_text:
            items = items + self.text_rows(inputs)
        if cfg.item_graph:
            items = items + enc.item_inter
        if cfg.item_topic and enc.item_topic is not None:
            items = items + enc.item_topic
        long_users = self.sdmtmp.long_term(enc)[0] if cfg.user_long else None  # (m, d)
        pad = table.new_zeros(1, table.shape[1])
        return _Tables(torch.cat([pad, items]), long_users, enc)  # (n + 1, d)

    def short_term_vector(
        self, seq: Tensor, ratings: Tensor, times: Tensor, counts: Tensor, table: Tensor
    ) -> Tensor:
        """``e_u^short`` (B, d) of left-padded rows: SD-MTMP's rating x time weights over the
        row's last ``ratio * counts`` items, summed over their ``table`` rows.

        Shapes:
            seq (B, L) item + 1; ratings (B, L); times (B, L) seconds; counts (B,) history
            length the ratio applies to; table (n + 1, d).
        """
        sd = self.sdmtmp.config
        mask = short_term_mask(
            (seq > 0).sum(1),
            counts,
            width=seq.shape[1],
            ratio=sd.short_term_ratio,
            max_len=sd.short_term_max_len,
        )  # (B, L)
        ages = interaction_ages(times, mask, unit=sd.time_unit)  # (B, L)
        weights = self.sdmtmp.attention.weights(ratings, ages, mask)  # (B, L)
        return self.sdmtmp.attention(table[seq], weights)  # (B, d)

    def last_state(
        self, h: Tensor, users: Tensor, rows: tuple[Tensor, Tensor, Tensor, Tensor], tables: _Tables
    ) -> tuple[Tensor, Tensor | None]:
        """``(h_T + sum_k alpha_k x_k (B, d), gates (B, K) or None)`` over the user branches.

        ``rows`` = (items + 1, ratings, times, history counts) of the encoded rows, for the
        short-term branch.
        """
        if self.user_gate is None:
            return h, None
        branches = []
        for name in self.config.user_branches:
            if name == "long":
                if tables.long_users is None:
                    raise RuntimeError("SD-MTMP-Seq: user_long without long-term users")
                branches.append(tables.long_users[users])  # (B, d)
            else:
                branches.append(self.short_term_vector(*rows, tables.items))  # (B, d)
        gated, gates = self.user_gate(*branches)
        return h + gated, gates

    # ------------------------------------------------------------------ training
    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        for name in self.requires_graphs:  # fail before the epoch starts if a graph is missing
            if name == ITEM_TEXT:
                self.text_features(inputs)
            else:
                self.sdmtmp._part(inputs, name)
        for batch in next_item_batches(inputs.seq_items, batch_size, generator):
            if self.config.score_loss == "bpr":
                batch["neg"] = torch.randint(
                    self.num_items,
                    batch["target"].shape,
                    generator=generator,
                    device=generator.device,
                ).to(batch["target"].device)  # (B, T) one uniform negative per position
            elif self.config.score_loss == "sampled":
                negatives, log_nq = sampled_softmax_functions().sample_negatives(
                    self.num_items, self.config.num_negatives, generator
                )  # (N,), (N,) shared by the batch
                batch["negatives"] = negatives.to(batch["target"].device)
                batch["log_nq"] = log_nq.to(batch["target"].device)
            yield batch

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        cfg = self.config
        user, seq, target = batch["user"], batch["input"], batch["target"]
        tables = self.represent(inputs)
        h = self.sequence.encode(seq, tables.items)  # (B, T, d)
        seq, target = seq[:, -h.shape[1] :], target[:, -h.shape[1] :]  # (B, T)
        width = seq.shape[1]
        # The input row is the history minus its last item (seq[:, :-1]): its short-term
        # sequence is the |S_u| rule applied to a history one shorter, so no target enters it.
        rows = (
            seq,
            inputs.seq_ratings[user][:, -width - 1 : -1],
            inputs.seq_times[user][:, -width - 1 : -1],
            torch.bincount(inputs.user, minlength=self.num_users)[user] - 1,
        )
        last, gates = self.last_state(h[:, -1], user, rows, tables)  # (B, d)
        h = torch.cat([h[:, :-1], last.unsqueeze(1)], dim=1)  # (B, T, d)
        terms: dict[str, Tensor] = {}
        if gates is not None:
            for k, name in enumerate(cfg.user_branches):
                terms[f"alpha_{name}"] = gates[:, k].detach().mean()
        valid = target >= 0
        states, pos = h[valid], target[valid]  # (M, d), (M,)
        neg = batch["neg"][:, -h.shape[1] :][valid] if cfg.score_loss == "bpr" else pos  # (M,)
        name, main = score_loss(
            states,
            tables.items[1:],
            pos,
            neg,
            cfg.score_loss,
            **shared_negatives(batch, cfg.score_loss),
        )
        total = main
        terms[name] = main.detach()
        sd = self.sdmtmp.config
        if tables.encoded is not None and (sd.gamma2 > 0 or sd.reg_weight > 0):
            last_target = target[:, -1].clamp_min(0)  # (B,) the batch's items for L2 / SD scope
            aux_batch = {"user": user, "pos": last_target, "neg": last_target}
            for name, value in self.sdmtmp.auxiliary_losses(
                aux_batch, tables.encoded, inputs
            ).items():
                total = total + value
                terms[name] = value.detach()
        return LossOutput(total, terms)

    # ------------------------------------------------------------------ scoring
    def begin_eval(self, inputs: ModelInputs) -> None:
        with torch.no_grad():
            self._eval = self.represent(inputs)

    def end_eval(self) -> None:
        self._eval = None

    def user_states(self, users: Tensor, inputs: ModelInputs, tables: _Tables) -> Tensor:
        """``e_u`` (B, d) read after each user's whole history."""
        seq = inputs.seq_items[users]  # (B, L)
        h = self.sequence.encode(seq, tables.items)[:, -1]  # (B, d)
        width = min(seq.shape[1], self.config.sequence.max_len)
        rows = (
            seq[:, -width:],
            inputs.seq_ratings[users][:, -width:],
            inputs.seq_times[users][:, -width:],
            torch.bincount(inputs.user, minlength=self.num_users)[users],
        )
        return self.last_state(h, users, rows, tables)[0]

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        tables = self._eval if self._eval is not None else self.represent(inputs)
        states = self.user_states(users, inputs, tables)  # (B, d)
        return item_scores(states, tables.items[1:])  # (B, num_items)


__all__ = ["ITEM_TEXT", "TEXT_FEATURE", "SDMTMPSeq", "SDMTMPSeqConfig"]
