"""BPR-MF: matrix factorisation trained with Bayesian personalised ranking.

Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmseq.data.sampling import PositivePairsCache, bpr_batches
from mmseq.losses import bpr_loss, l2_regularization
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.models.registry import MODELS
from mmseq.nn.scores import item_scores


@dataclass(frozen=True)
class BPRMFConfig:
    """BPR-MF hyper-parameters."""

    embedding_dim: int = 64  # d, width of user and item factors
    reg_weight: float = 1e-4  # lambda of the per-batch L2 penalty on the batch's factors
    # Small factors first learn the shared popularity direction; with 0.1 BPR-MF stayed below POP
    # for 100 epochs on Musical Instruments (ratio-80-20, lr 1e-3), with 0.01 it passed POP.
    init_std: float = 0.01  # std of the normal initialisation of the factors


@MODELS.register("bprmf")
class BPRMF(Recommender):
    """``score(u, i) = p_u . q_i``; loss ``BPR(u, i+, i-) + lambda * L2(p_u, q_i+, q_i-)``.

    Negatives are drawn uniformly from the items the user never interacted with in the history.

    Shapes:
        score_all: users (B,) -> (B, num_items).
    """

    config_class = BPRMFConfig

    def __init__(self, config: BPRMFConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        self.user_embedding = nn.Embedding(num_users, config.embedding_dim)
        self.item_embedding = nn.Embedding(num_items, config.embedding_dim)
        nn.init.normal_(self.user_embedding.weight, std=config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=config.init_std)
        self._pairs = PositivePairsCache()

    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        return bpr_batches(inputs.user, inputs.item, self.num_items, batch_size, generator,
                           seen=self._pairs.get(inputs))

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        u = self.user_embedding(batch["user"])  # (B, d)
        pos = self.item_embedding(batch["pos"])  # (B, d)
        neg = self.item_embedding(batch["neg"])  # (B, d)
        bpr = bpr_loss((u * pos).sum(-1), (u * neg).sum(-1))
        reg = self.config.reg_weight * l2_regularization(u, pos, neg)
        return LossOutput(bpr + reg, {"bpr": bpr.detach(), "l2": reg.detach()})

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        return item_scores(self.user_embedding(users), self.item_embedding.weight)  # (B, num_items)
