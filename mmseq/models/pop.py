"""POP: rank items by how often they occur in the history (a non-personalised baseline)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from mmseq.errors import TrainingError
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.models.registry import MODELS


@dataclass(frozen=True)
class PopConfig:
    """POP has no hyper-parameters."""


@MODELS.register("pop")
class Pop(Recommender):
    """Item popularity: ``score(u, i) = #interactions with i in the history`` (for every user).

    Fitted in closed form by :meth:`fit_closed_form`; the counts are a buffer, so they travel with
    ``state_dict``.
    """

    config_class = PopConfig
    trainable = False

    def __init__(self, config: PopConfig, num_users: int, num_items: int) -> None:
        super().__init__(config, num_users, num_items)
        self.popularity: Tensor
        self.register_buffer("popularity", torch.zeros(num_items))

    def fit_closed_form(self, inputs: ModelInputs) -> None:
        counts = torch.bincount(inputs.item, minlength=self.num_items)
        self.popularity = counts.to(self.popularity.dtype)

    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        return iter(())

    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        raise TrainingError("POP is fitted in closed form (fit_closed_form); it has no loss")

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        # A copy, not an expanded view: evaluators may mask history items in place.
        return self.popularity.unsqueeze(0).repeat(users.numel(), 1)  # (B, num_items)
