"""The item-softmax loss option shared by every model that scores all items with a softmax.

``loss: ce`` (full cross-entropy over all C items, the default) or ``loss: sampled``
(:mod:`mmseq.losses.sampled_softmax`: ``num_negatives`` items drawn per batch from ``sampler``,
logQ-corrected). A model's config inherits :class:`ItemLossConfig`; its ``training_batches`` is
wrapped by :func:`draws_negatives` (the draw uses the trainer's generator, so the same seed gives
the same negatives, and a ``ce`` run draws nothing: its numbers are unchanged); its loss calls
:func:`item_softmax_logits` for (logits, targets) that any cross-entropy-style loss can read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from mmseq.data.inputs import ModelInputs
from mmseq.errors import ConfigError
from mmseq.losses.sampled_softmax import (
    candidate_logits,
    sample_negatives,
    sampled_softmax_logits,
)

__all__ = [
    "LOG_NQ",
    "NEGATIVES",
    "ItemLossConfig",
    "check_item_loss",
    "draws_negatives",
    "item_softmax_logits",
]

NEGATIVES = "negatives"  # batch key of the sampled item indices (N,)
LOG_NQ = "negatives_log_nq"  # batch key of their log(N q) (N,), absent without correction


@dataclass(frozen=True)
class ItemLossConfig:
    """Loss over items, full or sampled softmax (fields shared by the item-softmax models)."""

    loss: Literal["ce", "sampled"] = "ce"  # full CE over all items, or sampled softmax
    num_negatives: int = 256  # sampled: N items drawn per batch, shared by all its positions
    sampler: Literal["uniform", "popularity"] = "uniform"  # sampled: proposal q over items
    logq_correction: bool = True  # sampled: subtract log(N q) from the negatives' logits


def check_item_loss(config: ItemLossConfig, where: str) -> None:
    """One-line ConfigError for a bad loss option."""
    if config.loss == "sampled" and config.num_negatives < 1:
        raise ConfigError(f"{where}: expected 'num_negatives' >= 1 (got {config.num_negatives})")


def popularity_probs(inputs: ModelInputs) -> Tensor:
    """q_j proportional to (training count of j) + 1: every item can be drawn, so the logQ
    estimate of the normaliser stays unbiased for items unseen in training. Returns (C,)."""
    counts = torch.bincount(inputs.item, minlength=inputs.num_items).double() + 1.0
    return (counts / counts.sum()).float()


def with_negatives(
    batches: Iterator[dict[str, Tensor]],
    config: ItemLossConfig,
    inputs: ModelInputs,
    generator: torch.Generator,
) -> Iterator[dict[str, Tensor]]:
    """Adds ``negatives`` (and ``negatives_log_nq``) to each batch when ``loss`` is sampled."""
    if config.loss != "sampled":
        yield from batches
        return
    probs = (
        popularity_probs(inputs).to(generator.device) if config.sampler == "popularity" else None
    )
    for batch in batches:
        negatives, log_nq = sample_negatives(
            inputs.num_items, config.num_negatives, generator, probs
        )
        extra = {NEGATIVES: negatives.to(inputs.device)}
        if config.logq_correction:
            extra[LOG_NQ] = log_nq.to(inputs.device)
        yield {**batch, **extra}


def draws_negatives(
    loss_config: Callable[[Any], ItemLossConfig] = lambda model: model.config,
) -> Callable[
    [Callable[..., Iterator[dict[str, Tensor]]]], Callable[..., Iterator[dict[str, Tensor]]]
]:
    """Decorator of ``training_batches(self, inputs, batch_size, generator)``: each batch gets
    the negatives of the loss option ``loss_config(self)`` (default: ``self.config``)."""

    def wrap(
        method: Callable[..., Iterator[dict[str, Tensor]]],
    ) -> Callable[..., Iterator[dict[str, Tensor]]]:
        @functools.wraps(method)
        def training_batches(
            self: Any, inputs: ModelInputs, batch_size: int, generator: torch.Generator
        ) -> Iterator[dict[str, Tensor]]:
            batches = method(self, inputs, batch_size, generator)
            return with_negatives(batches, loss_config(self), inputs, generator)

        return training_batches

    return wrap


def item_softmax_logits(
    config: ItemLossConfig,
    batch: dict[str, Tensor],
    queries: Tensor,
    item_weight: Tensor,
    targets: Tensor,
    item_bias: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(logits, targets) for a cross-entropy over items, full or sampled per ``config.loss``.

    Full: ``queries @ item_weight^T (+ item_bias)`` over all C items and the targets as given.
    Sampled: the 1 + N candidate logits of :func:`sampled_softmax_logits` (target in column 0)
    and targets all 0. Either way ``F.cross_entropy(logits, targets)`` is the loss.

    Shapes:
        queries: (..., M, d); item_weight: (C, d) or (..., C, d); targets: (M,);
        item_bias: (C,) or (..., C). Returns ((..., M, C or 1 + N), (M,)).
    """
    if config.loss != "sampled":
        logits = queries @ item_weight.transpose(-1, -2)  # (..., M, C)
        if item_bias is not None:
            logits = logits + item_bias.unsqueeze(-2)
        return logits, targets
    if NEGATIVES not in batch:
        raise ValueError(
            "Expected the batch to carry 'negatives' for loss 'sampled'; build batches with the "
            f"model's training_batches (got keys {sorted(batch)})"
        )
    negatives = batch[NEGATIVES]
    pos, neg = candidate_logits(queries, item_weight, targets, negatives, item_bias)
    logits = sampled_softmax_logits(pos, neg, targets, negatives, batch.get(LOG_NQ))
    return logits, torch.zeros_like(targets)
