"""The model contract every recommender implements, and the tensors models receive.

Models do no I/O, build no graphs and never move themselves to a device: the trainer builds a
:class:`ModelInputs` (tensors of the training history, padded sequences, graph parts) on the
device, moves the model, and calls ``training_batches`` / ``loss`` / ``score_all``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

# ModelInputs is plain data built by mmseq.data; re-exported here for model code.
from mmseq.data.inputs import ModelInputs
from mmseq.nn.scores import item_scores

__all__ = ["EmbeddingRecommender", "LossOutput", "ModelInputs", "Recommender"]


@dataclass
class LossOutput:
    """``total`` is what is back-propagated; ``terms`` name its parts (for logs and NaN reports)."""

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


class Recommender(nn.Module, ABC):
    """Base class of every model in ``mmseq.models.MODELS``.

    Subclasses set ``config_class`` (a frozen dataclass beside the class) and, if they consume
    graphs, ``requires_graphs`` (names of :class:`GraphPart`s in ``ModelInputs.graphs``).
    Constructors take ``(config, num_users, num_items)`` and nothing else.
    """

    config_class: ClassVar[type]
    requires_graphs: ClassVar[tuple[str, ...]] = ()
    #: False for models fitted in closed form from the history (POP): the trainer skips epochs.
    trainable: ClassVar[bool] = True
    #: Part of a stored result's code hash (mmseq.results_store): bump it in a subclass in the
    #: change that alters its numbers at an unchanged config (a default, the loss, the init).
    result_version: ClassVar[str] = "1"

    def __init__(self, config: Any, num_users: int, num_items: int) -> None:
        super().__init__()
        self.config = config
        self.num_users = num_users
        self.num_items = num_items

    @abstractmethod
    def training_batches(
        self, inputs: ModelInputs, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        """One epoch of batches (tensors on ``inputs.device``), randomised by ``generator`` only."""

    @abstractmethod
    def loss(self, batch: dict[str, Tensor], inputs: ModelInputs) -> LossOutput:
        """The training loss of one batch."""

    @abstractmethod
    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        """Scores of every item for ``users`` (B,) -> (B, num_items); higher is better.

        Build the final product with :func:`mmseq.nn.scores.item_scores`: during evaluation it
        writes into one buffer reused batch after batch (no page faults), so the evaluator, not
        the model, owns a batch's scores; a model must not keep them past its call.
        """

    def score_candidates(self, users: Tensor, items: Tensor, inputs: ModelInputs) -> Tensor:
        """Scores of ``items`` (B, C) for ``users`` (B,) -> (B, C). Override when cheaper."""
        return self.score_all(users, inputs).gather(1, items)

    def fit_closed_form(self, inputs: ModelInputs) -> None:
        """Closed-form fit for non-trainable models (called once by the trainer)."""

    def begin_eval(self, inputs: ModelInputs) -> None:
        """Hook before a round of scoring (e.g. cache propagated graph embeddings)."""

    def end_eval(self) -> None:
        """Hook after a round of scoring (drop caches)."""


class EmbeddingRecommender(Recommender):
    """A recommender that scores by ``e_u . e_i`` from :meth:`final_embeddings`.

    ``begin_eval`` computes every user's and item's final embedding once (no grad) and
    ``score_all`` reads that cache; outside an evaluation round it recomputes them.
    """

    _eval: tuple[Tensor, Tensor] | None = None

    @abstractmethod
    def final_embeddings(self, inputs: ModelInputs) -> tuple[Tensor, Tensor]:
        """``(every user's e_u (num_users, d), every item's e_i (num_items, d))``."""

    def begin_eval(self, inputs: ModelInputs) -> None:
        with torch.no_grad():
            self._eval = self.final_embeddings(inputs)

    def end_eval(self) -> None:
        self._eval = None

    def score_all(self, users: Tensor, inputs: ModelInputs) -> Tensor:
        user_emb, item_emb = self._eval or self.final_embeddings(inputs)
        return item_scores(user_emb[users], item_emb)  # (B, num_items)

