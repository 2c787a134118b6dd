"""S4Rec: online clustering, sequence contrastive learning, cluster-aware self-distillation and a
head/tail adversary on a SASRec encoder.

Wei et al., "Leave No One Behind: Online Self-Supervised Self-Distillation for Sequential
Recommendation", WWW 2024 (methods.md 5; seed ``S4Rec-WWW2024-digest.zh.txt``).
Vocabulary: 0 = pad, 1..num_items = items, num_items + 1 = [MASK] (the mask augmentation).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmseq.data.augment import random_augment
from mmseq.data.sampling import next_item_batches
from mmseq.errors import ConfigError
from mmseq.losses import cross_entropy_over_items
from mmseq.losses.s4rec import (
    cluster_distillation_loss,
    clustering_cross_entropy,
    sequence_contrastive_loss,
    sinkhorn_knopp,
)
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.models.item_loss import (
    ItemLossConfig,
    check_item_loss,
    draws_negatives,
    item_softmax_logits,
)
from mmseq.models.registry import MODELS
from mmseq.models.sasrec import SASRec
from mmseq.nn.grad_reverse import grad_reverse
from mmseq.nn.padding import (
    KEY_ALIGN,
    last_states_by_length,
    masked_and_last_states_by_length,
)
from mmseq.nn.scores import item_scores
from mmseq.nn.transformer import TransformerEncoder


@dataclass(frozen=True)
class S4RecConfig(ItemLossConfig):
    """S4Rec hyper-parameters: the paper's defaults where it gives them, else marked as ours."""

    embedding_dim: int = 64  # d (paper)
    num_layers: int = 2  # self-attention blocks (ICLRec/CL4SRec setting; ours)
    num_heads: int = 2  # attention heads (ICLRec/CL4SRec setting; ours)
    ffn_dim: int = 64  # feed-forward width (= d, as mmseq's SASRec)
    dropout: float = 0.5  # paper
    max_len: int = 50  # paper
    num_prototypes: int = 128  # K (paper)
    cluster_tau: float = 0.1  # tau_1 of p_u = softmax(z mu^T / tau_1), unit vectors (SwAV; ours)
    contrastive_tau: float = 1.0  # tau_2 of the sequence InfoNCE (CL4SRec/ICLRec; ours)
    distill_tau: float = 0.1  # tau_3 of the self-distillation KL on unit vectors (ours)
    sinkhorn_epsilon: float = 0.05  # entropic regularisation (SwAV; ours)
    sinkhorn_iterations: int = 3  # SwAV
    cluster_weight: float = 0.01  # alpha (paper)
    contrastive_weight: float = 0.1  # beta_1 (paper)
    distill_weight: float = 0.1  # beta_2 (paper)
    adversarial_weight: float = 1.0  # lambda (paper)
    reversal_coefficient: float = 1.0  # gradient reversal scale into the encoder
    head_fraction: float = 0.2  # the longest 20% of training histories are "head" users
    crop_ratio: float = 0.2  # share of items crop keeps (ICLRec default)
    mask_ratio: float = 0.7  # share of items mask hides (ICLRec default)
    reorder_ratio: float = 0.2  # share of items reorder shuffles (ICLRec default)


def head_tail_groups(user: Tensor, num_users: int, head_fraction: float,
                     min_length: int = 2) -> Tensor:
    """1 for head users (the longest ``head_fraction`` of histories, ties at the cut in), else 0.

    Only users with at least ``min_length`` history rows (those that train) are ranked.

    Shapes:
        user: (N,) history rows; returns (num_users,) int64.
    """
    counts = torch.bincount(user, minlength=num_users)  # (num_users,)
    active = counts[counts >= min_length]
    if active.numel() == 0:
        return torch.zeros(num_users, dtype=torch.long, device=user.device)
    k = max(1, math.ceil(head_fraction * active.numel()))
    threshold = active.sort(descending=True).values[k - 1]
    return (counts >= threshold).long()


@MODELS.register("s4rec")
class S4Rec(Recommender):
    r"""SASRec encoder ``z_u`` trained with
    :math:`\mathcal{L} = \mathcal{L}_{SR} + \alpha\mathcal{L}_{Clust} + \beta_1\mathcal{L}_{SCL}
    + \beta_2\mathcal{L}_{CKD} + \lambda\mathcal{L}_{Adv}`.

    ``L_SR``: next-item cross-entropy over all items at every position (as mmseq's SASRec).
    ``z_u``: the last hidden state of the training input. Clustering on unit vectors:
    ``p_u = softmax(z_u mu^T / tau_1)``, targets by Sinkhorn-Knopp per batch, ``h(u)`` = the
    target's arg-max. ``L_SCL``: two random augmentations (crop/mask/reorder) per sequence,
    InfoNCE with in-batch and other-cluster prototype negatives. ``L_CKD``: KL from the assigned
    prototype (teacher, detached) to ``z_u``, both unit vectors (methods.md 5 uses ``z_u``;
    the seed writes the first view's ``z_u^1``). ``L_Adv``: head/tail cross-entropy of a linear
    classifier behind a gradient-reversal layer, reading the unit vector ``z_u / |z_u|`` (the
    space the clustering works in): on the raw ``z_u`` the encoder wins the minimax by scaling
    ``z_u`` up, the adversarial CE diverges and next-item NDCG@10 on the conformance data fell
    from 0.64 to 0.16 (docs/emkd_s4rec.md).

    Shapes:
        score_all: users (B,) -> (B, num_items), read at the most recent position.
    """

    config_class = S4RecConfig
    eval_by_length = True  # the evaluator batches users of similar length (less padding)

    def __init__(self, config: S4RecConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        if config.num_prototypes < 2:
            raise ConfigError(
                f"Expected S4Rec 'num_prototypes' >= 2 (got {config.num_prototypes})"
            )
        if not 0.0 < config.head_fraction < 1.0:
            raise ConfigError(
                f"Expected S4Rec 'head_fraction' in (0, 1) (got {config.head_fraction})"
            )
        check_item_loss(config, "S4Rec config")
        d = config.embedding_dim
        self.mask_token = num_items + 1
        self.item_embedding = nn.Embedding(num_items + 2, d, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, d)
        for emb in (self.item_embedding, self.position_embedding):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.encoder = TransformerEncoder(
            d_model=d, num_layers=config.num_layers, num_heads=config.num_heads,
            ffn_dim=config.ffn_dim, dropout=config.dropout, causal=True, norm_first=True,
        )
        self.prototypes = nn.Parameter(F.normalize(torch.randn(config.num_prototypes, d), dim=-1))
        self.group_classifier = nn.Linear(d, 2)
        self._groups: tuple[Tensor, Tensor] | None = None  # (inputs.user, groups)

    # The sequence encoder f is SASRec's (same attribute names): one implementation, not a copy.
    embed = SASRec.embed
    encode = SASRec.encode
    encode_last = SASRec.encode_last

    def _head_tail(self, inputs: ModelInputs) -> Tensor:
        if self._groups is None or self._groups[0] is not inputs.user:
            groups = head_tail_groups(inputs.user, inputs.num_users, self.config.head_fraction)
            self._groups = (inputs.user, groups)
        return self._groups[1]

    @draws_negatives()
    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        cfg = self.config
        groups = self._head_tail(inputs)
        seq_items = inputs.seq_items[:, -(cfg.max_len + 1) :]  # inputs are seq[:, :-1]
        for batch in next_item_batches(seq_items, batch_size, generator):
            views = [random_augment(batch["input"], generator, mask_token=self.mask_token,
                                    crop_ratio=cfg.crop_ratio, mask_ratio=cfg.mask_ratio,
                                    reorder_ratio=cfg.reorder_ratio) for _ in range(2)]
            yield {**batch, "view1": views[0], "view2": views[1], "group": groups[batch["user"]]}

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        cfg = self.config
        b = batch["input"].shape[0]
        tokens = torch.cat([batch["input"], batch["view1"], batch["view2"]])
        tokens = tokens[:, -cfg.max_len :]  # (3B, T)
        target = batch["target"][:, -tokens.shape[1] :]  # (B, T)
        labels = torch.cat([target, torch.full_like(tokens[b:], -100)])  # (3B, T): no views'
        # One encoding per length bucket: the labelled states and every row's last state.
        h_seq, target, last = masked_and_last_states_by_length(self.encode, tokens, labels)
        logits, item_labels = item_softmax_logits(  # full (M, num_items) or sampled (M, 1 + N)
            self.config, batch, h_seq, self.item_embedding.weight[1 : self.num_items + 1], target
        )
        sr = cross_entropy_over_items(logits, item_labels)

        z, z1, z2 = last.split(b)  # 3 x (B, d): the most recent position
        z_unit, mu_unit = F.normalize(z, dim=-1), F.normalize(self.prototypes, dim=-1)
        scores = z_unit @ mu_unit.T  # (B, K)
        targets = b * sinkhorn_knopp(scores.detach(), epsilon=cfg.sinkhorn_epsilon,
                                     num_iterations=cfg.sinkhorn_iterations)  # rows sum to 1
        assignment = targets.argmax(1)  # h(u)
        clust = clustering_cross_entropy(targets, scores / cfg.cluster_tau)
        scl = sequence_contrastive_loss(z1, z2, self.prototypes, assignment,
                                        tau=cfg.contrastive_tau)
        ckd = cluster_distillation_loss(mu_unit, assignment, z_unit, tau=cfg.distill_tau)
        reversed_z = grad_reverse(z_unit, cfg.reversal_coefficient)
        adv = F.cross_entropy(self.group_classifier(reversed_z), batch["group"])
        total = (sr + cfg.cluster_weight * clust + cfg.contrastive_weight * scl
                 + cfg.distill_weight * ckd + cfg.adversarial_weight * adv)
        terms = {"sr_ce": sr, "cluster_ce": clust, "sequence_cl": scl, "cluster_kd": ckd,
                 "adversarial_ce": adv}
        return LossOutput(total, {k: v.detach() for k, v in terms.items()})

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        # Rows grouped by length, each group without its padding, only the last position's
        # output computed: bit-identical to the padded batch's last states (mmseq.nn.padding).
        seq = inputs.seq_items[users, -self.config.max_len :]  # (B, T)
        h = last_states_by_length(self.encode, seq, multiple=KEY_ALIGN,
                                  encode_last=self.encode_last)  # (B, d)
        return item_scores(h, self.item_embedding.weight[1 : self.num_items + 1])  # (B, num_items)
