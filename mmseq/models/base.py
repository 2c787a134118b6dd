"""The model contract every recommender implements, and the tensors models receive.

Models do no I/O, build no graphs and never move themselves to a device: the trainer builds a
:class:`ModelInputs` (tensors of the training history, padded sequences, graph parts) on the
device, moves the model, and calls ``training_batches`` / ``loss`` / ``score_all``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mmseq.data.graph_bundle import GraphPart


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Everything a model may look at, as tensors on one device.

    The history is the fit part of the split while training and validating, and fit + valid when
    scoring the test set (shared/docs/protocols.md). Graph parts are built from the fit part only.

    Attributes:
        num_users, num_items: sizes of the id space.
        user, item: (N,) int64 history interactions, chronological per user.
        rating: (N,) float32.
        timestamp: (N,) int64 seconds (or positions, for data without time).
        seq_items: (num_users, L) int64, the last L history items of each user, item index + 1,
            left-padded with 0 (most recent item in the last column).
        seq_ratings: (num_users, L) float32, aligned with ``seq_items`` (0 at padding).
        seq_times: (num_users, L) int64 seconds, aligned with ``seq_items`` (0 at padding).
        seq_lengths: (num_users,) int64 number of non-padding entries (<= L).
        graphs: graph parts by name (e.g. ``"interaction_graph"``, ``"rating_graph"``).
        extras: other named tensors (e.g. ``"item_attributes"`` (num_items, A) dense/sparse).
    """

    num_users: int
    num_items: int
    user: Tensor
    item: Tensor
    rating: Tensor
    timestamp: Tensor
    seq_items: Tensor
    seq_ratings: Tensor
    seq_times: Tensor
    seq_lengths: Tensor
    graphs: Mapping[str, GraphPart] = field(default_factory=dict)
    extras: Mapping[str, Tensor] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.user.device

    def to(self, device: torch.device | str) -> ModelInputs:
        moved: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                moved[f.name] = v.to(device)
        moved["graphs"] = {k: g.to(device) for k, g in self.graphs.items()}
        moved["extras"] = {k: t.to(device) for k, t in self.extras.items()}
        return dataclasses.replace(self, **moved)


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
        """Scores of every item for ``users`` (B,) -> (B, num_items); higher is better."""

    def score_candidates(self, users: Tensor, items: Tensor, inputs: ModelInputs) -> Tensor:
        """Scores of ``items`` (B, C) for ``users`` (B,) -> (B, C). Override when cheaper."""
        return self.score_all(users, inputs).gather(1, items)

    def fit_closed_form(self, inputs: ModelInputs) -> None:
        """Closed-form fit for non-trainable models (called once by the trainer)."""

    def begin_eval(self, inputs: ModelInputs) -> None:
        """Hook before a round of scoring (e.g. cache propagated graph embeddings)."""

    def end_eval(self) -> None:
        """Hook after a round of scoring (drop caches)."""
