"""SD-MTMP: self-distillation multi-task learning with rating, topic and time perception.

Tang, Pang, Xie and Wang, "Self-Distillation Multi-task Learning Integrating Multi-dimensional
Perception for Multimodal Sequential Recommendation", Pattern Recognition and Artificial
Intelligence (PR&AI), 2025; restated and disambiguated in shared/docs/methods.md section 1.

Pieces (each a layer or pure function elsewhere; this module only wires them):

* rating-aware NGCF GCN over ``"rating_graph"`` (:class:`mmseq.nn.RatingGCNConv`, layer mean);
* topic-aware hypergraph convolution over ``"user_topic_hypergraph"`` and
  ``"item_topic_hypergraph"`` (:class:`mmseq.nn.TopicHypergraphConv` on ``[P^(0); E_T]``);
* cross-modal self-distillation, topic teaches rating
  (:mod:`mmseq.losses.self_distillation`);
* dual-aware rating x time attention over the short-term sequence
  (:mod:`mmseq.nn.rating_time_attention`);
* adaptive gated fusion of the long- and short-term user representations
  (:mod:`mmseq.nn.gated_fusion`); ``score(u, i) = e_u . e_i``;
* loss ``BPR + gamma2 * Loss_SD + lambda * L2(batch ego embeddings)``; ``score_loss: ce``
  replaces BPR (one sampled negative) by softmax cross-entropy over all items on the same score.

The four ablations of methods.md 1.8 are values of ``SDMTMPConfig.ablation``, not copies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from mmseq.data.graph_bundle import GraphPart
from mmseq.data.sampling import PositivePairsCache, bpr_batches
from mmseq.errors import ArtifactError, ConfigError
from mmseq.losses.ranking import bpr_loss, cross_entropy_over_items, l2_regularization
from mmseq.losses.self_distillation import contrastive_alignment, self_distillation_loss
from mmseq.models.base import EmbeddingRecommender, LossOutput, ModelInputs
from mmseq.models.registry import MODELS
from mmseq.nn.backends import get_backend
from mmseq.nn.gated_fusion import AdaptiveGatedFusion, ConcatFusion
from mmseq.nn.hypergraph_conv import TopicHypergraphConv
from mmseq.nn.rating_conv import RatingGCNConv
from mmseq.nn.rating_time_attention import (
    RatingTimeAttention,
    TimeUnit,
    interaction_ages,
    short_term_mask,
)

RATING_GRAPH = "rating_graph"
USER_TOPIC_GRAPH = "user_topic_hypergraph"
ITEM_TOPIC_GRAPH = "item_topic_hypergraph"
Ablation = Literal["none", "w/o-H", "w/o-S1", "w/o-S2", "w/o-A"]
ScoreLoss = Literal["bpr", "ce", "sampled"]


def score_loss(users: Tensor, items: Tensor, pos: Tensor, neg: Tensor,
               kind: ScoreLoss = "bpr", *, negatives: Tensor | None = None,
               log_nq: Tensor | None = None) -> tuple[str, Tensor]:
    """``(name, value)`` of the loss on ``score(u, i) = e_u . e_i``.

    ``bpr``: :func:`bpr_loss` of the positive against the one sampled negative (the paper);
    ``ce``: softmax cross-entropy of the positive over ALL items (``neg`` unused), the loss
    that makes sequence models strong; ``sampled``: logQ-corrected sampled softmax over
    ``negatives`` shared by the batch (:mod:`mmseq.losses.sampled_softmax`). A leading peer axis
    on ``users`` is averaged over.

    Shapes:
        users: (..., B, d); items: (n, d); pos, neg: (B,) item indices; negatives, log_nq: (N,);
        returns a scalar.
    """
    if kind == "bpr":
        return "bpr", bpr_loss((users * items[pos]).sum(-1), (users * items[neg]).sum(-1))
    if kind == "sampled":
        if negatives is None:
            raise ValueError("Expected 'negatives' for score_loss='sampled' (got None)")
        sampled = sampled_softmax_functions()
        pos_logits, neg_logits = sampled.candidate_logits(users, items, pos, negatives)
        return "sampled", sampled.sampled_softmax_loss(
            pos_logits, neg_logits, pos, negatives, log_nq
        )
    logits = users @ items.T  # (..., B, n)
    return "ce", cross_entropy_over_items(logits, pos.expand(logits.shape[:-1]))


def sampled_softmax_functions():  # noqa: ANN202 - a module
    """The shared sampled-softmax functions, imported when ``score_loss: sampled`` is used."""
    try:
        from mmseq.losses import sampled_softmax
    except ImportError as err:  # pragma: no cover - depends on the installed tree
        raise ConfigError(
            "score_loss='sampled' needs mmseq.losses.sampled_softmax, which this tree lacks; "
            "use 'ce' (full softmax) or 'bpr'"
        ) from err
    return sampled_softmax


@dataclass(frozen=True)
class SDMTMPConfig:
    """SD-MTMP hyper-parameters and switches (defaults: methods.md 1.7)."""

    embedding_dim: int = 64  # d, width of every representation
    num_layers: int = 2  # Lyr, NGCF layers over the rating graph
    gamma1: float = 0.4  # rating sharpness of the short-term attention
    beta: float = 0.2  # time decay per `time_unit` of age (0 = no time term)
    time_unit: TimeUnit = "days"  # unit of ages: seconds | hours | days | positions (no time)
    short_term_ratio: float = 0.2  # share of the history forming the short-term sequence
    short_term_max_len: int = 0  # cap on the short-term length; 0 = the inputs' sequence width
    gamma2: float = 0.4  # weight of the self-distillation (or w/o-S1 InfoNCE) loss
    tau: float = 1.0  # temperature of the self-distillation softmax
    detach_teacher: bool = True  # stop gradients into the topic-aware (teacher) side
    sd_scope: Literal["all", "batch"] = "all"  # SD over all users/items, or the batch's
    infonce_tau: float = 0.2  # InfoNCE temperature (ablation w/o-S1 only)
    reg_weight: float = 1e-4  # lambda of the L2 penalty on the batch's ego embeddings
    topic_embedding: Literal["project", "identity"] = "project"  # E_T: linear map, or as stored
    topic_feature_dim: int = 384  # width of features["topic"] in "project" mode (encoder width)
    hyperedge_weights: Literal["binary", "count"] = "binary"  # incidence: 1, or the part's weights
    backend: Literal["pyg", "dgl"] = "pyg"  # message-passing backend of both convolutions
    message_dropout: float = 0.0  # NGCF message dropout on each GCN layer's output
    negative_slope: float = 0.2  # LeakyReLU slope of the GCN
    ablation: Ablation = "none"  # none | w/o-H | w/o-S1 | w/o-S2 | w/o-A (methods.md 1.8)
    score_loss: ScoreLoss = "bpr"  # bpr (paper: one negative) | ce (all items) | sampled
    num_negatives: int = 256  # N shared negatives per batch for score_loss='sampled'

    def __post_init__(self) -> None:
        for name in ("embedding_dim", "num_layers", "topic_feature_dim", "num_negatives"):
            if getattr(self, name) < 1:
                raise ValueError(f"Expected '{name}' >= 1 (got {getattr(self, name)})")
        for name in ("beta", "gamma2", "reg_weight", "short_term_max_len"):
            if getattr(self, name) < 0:
                raise ValueError(f"Expected '{name}' >= 0 (got {getattr(self, name)})")
        for name in ("tau", "infonce_tau"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Expected '{name}' > 0 (got {getattr(self, name)})")
        if not 0.0 < self.short_term_ratio <= 1.0:
            raise ValueError(f"Expected 'short_term_ratio' in (0, 1] (got {self.short_term_ratio})")
        if not 0.0 <= self.message_dropout < 1.0:
            raise ValueError(f"Expected 'message_dropout' in [0, 1) (got {self.message_dropout})")

    @property
    def uses_topics(self) -> bool:
        return self.ablation != "w/o-H"

    @property
    def uses_short_term(self) -> bool:
        return self.ablation != "w/o-A"


@dataclass(frozen=True, eq=False)
class Encoded:
    """One propagation: rating-aware and topic-aware representations of every node.

    Attributes:
        user_inter, item_inter: (m, d), (n, d) layer-mean GCN rows (``e^inter``).
        user_topic, item_topic: (m, d), (n, d) hypergraph rows (``e^topic``); None for w/o-H.
        user_topic_nodes, item_topic_nodes: (k, d) topic-node rows of each hypergraph output
            (``E_T^*``, used by explanations); None for w/o-H.
    """

    user_inter: Tensor
    item_inter: Tensor
    user_topic: Tensor | None = None
    item_topic: Tensor | None = None
    user_topic_nodes: Tensor | None = None
    item_topic_nodes: Tensor | None = None


@dataclass(frozen=True, eq=False)
class _ShortTerm:
    items: Tensor  # (m, L') int64 item index (0 where masked out)
    weights: Tensor  # (m, L') dual-aware attention weights (0 where masked out)
    edge_index: Tensor  # (2, nnz) [item; user] of every short-term entry
    edge_weight: Tensor  # (nnz,) its attention weight


@MODELS.register("sdmtmp")
class SDMTMP(EmbeddingRecommender):
    """SD-MTMP (methods.md 1.3-1.8).

    ``e_u = alpha1 e_u^long + alpha2 e_u^short`` with ``e_u^long = e_u^inter + e_u^topic``,
    ``e_i = e_i^inter + e_i^topic``, ``score(u, i) = e_u . e_i``; loss
    ``BPR + gamma2 * (KL_u + KL_i) + lambda * L2``. Ablations (``config.ablation``):
    ``w/o-H`` no hypergraphs, topic representations or SD (needs only ``"rating_graph"``);
    ``w/o-S1`` InfoNCE alignment instead of KL; ``w/o-S2`` no SD and
    ``e^long = [e^inter; e^topic] W + b`` (one layer shared by users and items) instead of the sum;
    ``w/o-A`` no short-term branch (``e_u = alpha1 e_u^long``).

    Shapes:
        score_all: users (B,) -> (B, num_items).
    """

    config_class = SDMTMPConfig
    requires_graphs: ClassVar[tuple[str, ...]] = (RATING_GRAPH, USER_TOPIC_GRAPH, ITEM_TOPIC_GRAPH)

    def __init__(self, config: SDMTMPConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        d = config.embedding_dim
        # The experiment runner reads the graphs to load from the instance: w/o-H needs no topics.
        self.requires_graphs = (  # type: ignore[misc]
            self.requires_graphs if config.uses_topics else (RATING_GRAPH,)
        )
        self.user_embedding = nn.Embedding(num_users, d)  # P^(0)
        self.item_embedding = nn.Embedding(num_items, d)  # Q^(0)
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        self.convs = nn.ModuleList(
            RatingGCNConv(d, d, negative_slope=config.negative_slope,
                          dropout=config.message_dropout, backend=config.backend)
            for _ in range(config.num_layers)
        )
        if config.uses_topics:
            if config.topic_embedding == "project":
                self.topic_projection: nn.Module = nn.Linear(config.topic_feature_dim, d)
                nn.init.xavier_uniform_(self.topic_projection.weight)
                nn.init.zeros_(self.topic_projection.bias)
            else:
                self.topic_projection = nn.Identity()
            # methods.md 1.4 has no bias term (D^-1 H B^-1 H^T X W only).
            self.user_topic_conv = TopicHypergraphConv(d, d, bias=False, backend=config.backend)
            self.item_topic_conv = TopicHypergraphConv(d, d, bias=False, backend=config.backend)
        if config.ablation == "w/o-S2":
            self.concat_fusion = ConcatFusion(d, 2)
        self.attention = RatingTimeAttention(gamma1=config.gamma1, beta=config.beta)
        self.fusion = AdaptiveGatedFusion(d, 2 if config.uses_short_term else 1)
        self._pairs = PositivePairsCache()
        self._short: tuple[Tensor, _ShortTerm] | None = None
        self._topic_rows: dict[str, tuple[GraphPart, Tensor, Tensor]] = {}

    # ------------------------------------------------------------------ graphs
    def _part(self, inputs: ModelInputs, name: str) -> GraphPart:
        part = inputs.graphs.get(name)
        if part is None:
            raise ArtifactError(
                f"SD-MTMP (ablation '{self.config.ablation}') needs the graph '{name}' in "
                f"inputs.graphs (has: {sorted(inputs.graphs)}); add {{builder: {name}}} to the "
                "config's 'graphs' list and run scripts/build_graphs.py --config <config>"
            )
        return part

    def _rating_graph(self, inputs: ModelInputs) -> GraphPart:
        part = self._part(inputs, RATING_GRAPH)
        n = self.num_users + self.num_items
        if tuple(part.shape) != (n, n):
            raise ArtifactError(
                f"Expected graph '{RATING_GRAPH}' of shape ({n}, {n}) for {self.num_users} users "
                f"+ {self.num_items} items (got {tuple(part.shape)}); rebuild it for this data"
            )
        return part

    def _hypergraph(self, inputs: ModelInputs, name: str, num_members: int) -> GraphPart:
        part = self._part(inputs, name)
        k = int(part.shape[1])
        topic = part.features.get("topic")
        if part.kind != "hypergraph" or tuple(part.shape) != (num_members + k, k):
            raise ArtifactError(
                f"Expected '{name}' to be a hypergraph of shape ({num_members} + k, k) "
                f"(got kind {part.kind!r}, shape {tuple(part.shape)}); rebuild it for this data"
            )
        width = (
            self.config.topic_feature_dim
            if self.config.topic_embedding == "project"
            else self.config.embedding_dim
        )
        if topic is None or tuple(topic.shape) != (k, width):
            got = None if topic is None else tuple(topic.shape)
            raise ArtifactError(
                f"Expected '{name}'.features['topic'] of shape ({k}, {width}) for "
                f"topic_embedding='{self.config.topic_embedding}' (got {got}); set "
                "model.params.topic_feature_dim to the encoder width, or build d-wide topic "
                "embeddings for 'identity'"
            )
        built = part.meta.get("weights")
        if self.config.hyperedge_weights == "count" and built == "binary":
            raise ArtifactError(
                f"hyperedge_weights='count' but '{name}' was built with binary weights; set "
                f"params {{weights: count}} on its builder and rebuild, or use 'binary'"
            )
        return part

    def _topic_members(self, part: GraphPart, num_members: int) -> tuple[Tensor, Tensor]:
        """``(member (num_members,) bool, rows (R,) int64)``: users (items) in at least one topic.

        Cached per part object (the part is immutable).
        """
        hit = self._topic_rows.get(part.name)
        if hit is None or hit[0] is not part:
            node = part.edge_index[0]
            member = torch.zeros(num_members, dtype=torch.bool, device=node.device)
            member[node[node < num_members]] = True
            hit = self._topic_rows[part.name] = (part, member, torch.nonzero(member).flatten())
        return hit[1], hit[2]

    # ------------------------------------------------------------------ representations
    def encode(self, inputs: ModelInputs) -> Encoded:
        """Rating-aware (GCN) and topic-aware (hypergraph) representations of every node."""
        part = self._rating_graph(inputs)
        x = torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # (N, d)
        total = x
        for conv in self.convs:
            x = conv(x, part.edge_index, part.edge_weight)  # (N, d)
            total = total + x
        mean = total / (len(self.convs) + 1)  # Ē = mean(E^(0..Lyr))
        user_inter, item_inter = mean[: self.num_users], mean[self.num_users :]
        if not self.config.uses_topics:
            return Encoded(user_inter, item_inter)
        user_topic, user_nodes = self._topic_view(
            inputs, USER_TOPIC_GRAPH, self.user_embedding.weight, self.user_topic_conv
        )
        item_topic, item_nodes = self._topic_view(
            inputs, ITEM_TOPIC_GRAPH, self.item_embedding.weight, self.item_topic_conv
        )
        return Encoded(user_inter, item_inter, user_topic, item_topic, user_nodes, item_nodes)

    def _topic_view(
        self, inputs: ModelInputs, name: str, ego: Tensor, conv: TopicHypergraphConv
    ) -> tuple[Tensor, Tensor]:
        """``D^-1 H B^-1 H^T [ego; E_T] W`` split into (member rows, topic-node rows)."""
        members = ego.size(0)
        part = self._hypergraph(inputs, name, members)
        topics = self.topic_projection(part.features["topic"].to(ego.dtype))  # (k, d) = E_T
        weight = part.edge_weight if self.config.hyperedge_weights == "count" else None
        out = conv(
            torch.cat([ego, topics]),  # (m + k, d)
            part.edge_index,
            incidence_weight=weight,
            num_hyperedges=int(part.shape[1]),
        )  # (m + k, d)
        return out[:members], out[members:]

    def long_term(self, enc: Encoded) -> tuple[Tensor, Tensor]:
        """``(e_u^long (m, d), e_i (n, d))`` by the configured fusion of the two views."""
        if enc.user_topic is None or enc.item_topic is None:
            return enc.user_inter, enc.item_inter
        if self.config.ablation == "w/o-S2":
            return (
                self.concat_fusion(enc.user_inter, enc.user_topic),
                self.concat_fusion(enc.item_inter, enc.item_topic),
            )
        return enc.user_inter + enc.user_topic, enc.item_inter + enc.item_topic

    def short_term_view(self, inputs: ModelInputs) -> _ShortTerm:
        """Short-term items and attention weights of every user (data only; cached per inputs)."""
        if self._short is not None and self._short[0] is inputs.seq_items:
            return self._short[1]
        cfg = self.config
        seq = inputs.seq_items  # (m, L) item + 1, left-padded
        counts = torch.bincount(inputs.user, minlength=self.num_users)  # (m,) history lengths
        mask = short_term_mask(
            inputs.seq_lengths, counts, width=seq.size(1), ratio=cfg.short_term_ratio,
            max_len=cfg.short_term_max_len,
        )  # (m, L)
        ages = interaction_ages(inputs.seq_times, mask, unit=cfg.time_unit)  # (m, L)
        weights = self.attention.weights(inputs.seq_ratings, ages, mask)  # (m, L)
        # Keep only the columns some user's short-term sequence reaches (20% of L or less).
        first = seq.size(1) - int(mask.sum(1).max()) if mask.numel() else 0
        items = ((seq - 1).clamp_min(0) * mask)[:, first:]  # (m, L')
        user, column = mask.nonzero(as_tuple=True)  # (nnz,) each
        view = _ShortTerm(
            items=items,
            weights=weights[:, first:],
            edge_index=torch.stack([seq[user, column] - 1, user]),  # (2, nnz)
            edge_weight=weights[user, column],
        )
        self._short = (seq, view)
        return view

    def short_term(self, inputs: ModelInputs) -> Tensor:
        """``e_u^short = sum_i w_i q_i`` for every user (m, d); 0 for a user without history.

        The same sum as :class:`RatingTimeAttention` over padded (m, L, d) item vectors, done as
        one sparse (m x n) @ Q^(0) product: the weights depend on data only, so the operator is
        built once per inputs and cached by the backend.
        """
        view = self.short_term_view(inputs)
        return get_backend(self.config.backend).propagate(
            self.item_embedding.weight, view.edge_index, view.edge_weight,
            size=(self.num_items, self.num_users),
        )  # (m, d)

    def user_representation(self, users: Tensor, long_users: Tensor,
                            inputs: ModelInputs) -> tuple[Tensor, Tensor]:
        """``(e_u (B, d), gates (B, 1 or 2))`` for ``users`` given every user's ``e^long``."""
        long = long_users[users]  # (B, d)
        if not self.config.uses_short_term:
            return self.fusion(long)
        return self.fusion(long, self.short_term(inputs)[users])

    # ------------------------------------------------------------------ training
    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        for name in self.requires_graphs:  # fail before the epoch starts if a graph is missing
            self._part(inputs, name)
        batches = bpr_batches(inputs.user, inputs.item, self.num_items, batch_size, generator,
                              seen=self._pairs.get(inputs))
        if self.config.score_loss != "sampled":
            return batches
        return self._with_shared_negatives(batches, generator)

    def _with_shared_negatives(
        self, batches: Iterator[dict[str, Tensor]], generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        """Adds ``num_negatives`` uniform items (and their ``log(N q)``) to every batch."""
        sampled = sampled_softmax_functions()
        for batch in batches:
            negatives, log_nq = sampled.sample_negatives(
                self.num_items, self.config.num_negatives, generator
            )
            yield {**batch, "negatives": negatives.to(batch["user"].device),
                   "log_nq": log_nq.to(batch["user"].device)}

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        user, pos, neg = batch["user"], batch["pos"], batch["neg"]
        enc = self.encode(inputs)
        long_users, items = self.long_term(enc)
        u, _ = self.user_representation(user, long_users, inputs)  # (B, d)
        name, main = score_loss(u, items, pos, neg, self.config.score_loss,
                                **shared_negatives(batch, self.config.score_loss))
        total, terms = main, {name: main.detach()}
        for name, value in self.auxiliary_losses(batch, enc, inputs).items():
            total = total + value
            terms[name] = value.detach()
        return LossOutput(total, terms)

    def auxiliary_losses(self, batch: dict[str, Tensor], enc: Encoded,
                         inputs: ModelInputs) -> dict[str, Tensor]:
        """The weighted terms of the loss besides BPR: ``l2``, and ``sd`` (or ``infonce``).

        Shared with the fused model (:mod:`mmseq.models.sdmtmp_peer`), which replaces only BPR.
        """
        cfg = self.config
        user, pos, neg = batch["user"], batch["pos"], batch["neg"]
        terms = {"l2": cfg.reg_weight * l2_regularization(
            self.user_embedding(user), self.item_embedding(pos), self.item_embedding(neg)
        )}
        if cfg.ablation in ("none", "w/o-S1", "w/o-A"):
            aux = cfg.gamma2 * self._alignment_loss(enc, inputs, user, torch.cat([pos, neg]))
            terms["sd" if cfg.ablation != "w/o-S1" else "infonce"] = aux
        return terms

    def _alignment_loss(self, enc: Encoded, inputs: ModelInputs, users: Tensor,
                        items: Tensor) -> Tensor:
        """KL self-distillation (or w/o-S1 InfoNCE) over the nodes that have a teacher.

        A node in no topic has no topic-aware representation to learn from (its hypergraph row
        is 0), so it is left out of the alignment rather than pulled towards a uniform softmax.
        """
        if enc.user_topic is None or enc.item_topic is None:
            raise RuntimeError("SD-MTMP: alignment loss requested without topic representations")
        user_rows = self._alignment_rows(inputs, USER_TOPIC_GRAPH, self.num_users, users)
        item_rows = self._alignment_rows(inputs, ITEM_TOPIC_GRAPH, self.num_items, items)
        return (self._align(enc.user_topic, enc.user_inter, user_rows)
                + self._align(enc.item_topic, enc.item_inter, item_rows))

    def _align(self, topic: Tensor, inter: Tensor, rows: Tensor | None) -> Tensor:
        """One node type's term (Loss_SD_u or Loss_SD_i), a mean over ``rows`` (None = all)."""
        if rows is not None:
            if rows.numel() == 0:  # nothing to align: a zero that keeps autograd connected
                return inter.sum() * 0.0
            topic, inter = topic[rows], inter[rows]
        if self.config.ablation == "w/o-S1":
            return contrastive_alignment(topic, inter, tau=self.config.infonce_tau)
        return self_distillation_loss(
            topic, inter, tau=self.config.tau, detach_teacher=self.config.detach_teacher
        )

    def _alignment_rows(self, inputs: ModelInputs, name: str, num_members: int,
                        batch_nodes: Tensor) -> Tensor | None:
        """Rows to align (None = every row: all members have a topic and the scope is "all")."""
        member, rows = self._topic_members(inputs.graphs[name], num_members)
        if self.config.sd_scope == "all":
            return None if rows.numel() == num_members else rows
        nodes = torch.unique(batch_nodes)
        return nodes[member[nodes]]

    # ------------------------------------------------------------------ explanations
    def topic_affinity(self, user: int, item: int, inputs: ModelInputs) -> tuple[Tensor, Tensor]:
        """Cosine of ``e_u^topic`` (``e_i^topic``) with each topic node's output row ``E_T^*``.

        Used by ``mmseq explain`` to rank the topics that connect a user and an item by what the
        trained model makes of them. Returns ``(user (k_u,), item (k_i,))``.

        Raises:
            ArtifactError: for the w/o-H ablation, which has no topic representations.
        """
        if not self.config.uses_topics:
            raise ArtifactError("SD-MTMP w/o-H has no topic representations to explain with")
        with torch.no_grad():
            enc = self.encode(inputs)
        user_topic, item_topic = enc.user_topic, enc.item_topic
        user_nodes, item_nodes = enc.user_topic_nodes, enc.item_topic_nodes
        if user_topic is None or item_topic is None or user_nodes is None or item_nodes is None:
            raise ArtifactError("SD-MTMP produced no topic representations")  # unreachable
        cos = torch.nn.functional.cosine_similarity
        return (cos(user_topic[user].unsqueeze(0), user_nodes, dim=-1),
                cos(item_topic[item].unsqueeze(0), item_nodes, dim=-1))

    # ------------------------------------------------------------------ scoring
    def final_embeddings(self, inputs: ModelInputs) -> tuple[Tensor, Tensor]:
        """``(e_u for every user (m, d), e_i for every item (n, d))``."""
        long_users, items = self.long_term(self.encode(inputs))
        users, _ = self.user_representation(
            torch.arange(self.num_users, device=long_users.device), long_users, inputs
        )
        return users, items



def shared_negatives(batch: dict[str, Tensor], kind: ScoreLoss) -> dict[str, Tensor]:
    """``{negatives, log_nq}`` of a batch for ``score_loss='sampled'``; empty otherwise."""
    if kind != "sampled":
        return {}
    if "negatives" not in batch:
        raise ValueError(
            "Expected the batch to carry 'negatives'/'log_nq' for score_loss='sampled'; build "
            f"batches with the model's training_batches (got {sorted(batch)})"
        )
    return {"negatives": batch["negatives"], "log_nq": batch["log_nq"]}


__all__ = [
    "Encoded",
    "SDMTMP",
    "SDMTMPConfig",
    "sampled_softmax_functions",
    "score_loss",
    "shared_negatives",
]
