"""The item-softmax loss option shared by every model that scores all items with a softmax.

``loss: ce`` (full cross-entropy over all C items, the default) or ``loss: sampled``
(:mod:`mmseq.losses.sampled_softmax`: ``num_negatives`` items drawn from ``sampler``,
logQ-corrected, shared by the batch or, with ``negatives_per: position``, drawn for each
position). A model's config inherits :class:`ItemLossConfig`; its ``training_batches`` is wrapped
by :func:`draws_negatives` (the draw uses the trainer's generator, so the same seed gives the same
negatives, and a ``ce`` run draws nothing: its numbers are unchanged); its loss calls
:func:`item_softmax_logits` for (logits, targets) that any cross-entropy-style loss can read.
"""

from __future__ import annotations

import functools
import math
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
    "NEGATIVES_SEED",
    "NEGATIVE_KEYS",
    "ItemLossConfig",
    "check_item_loss",
    "draws_negatives",
    "item_softmax_logits",
]

NEGATIVES = "negatives"  # batch key of the sampled item indices (N,)
LOG_NQ = "negatives_log_nq"  # batch key of their log(N q) (N,), absent without correction
#: Batch key of the seed (0-dim int64, drawn from the trainer's generator) from which the loss draws
#: each position's negatives (``negatives_per: position``: the batch does not know its positions).
NEGATIVES_SEED = "negatives_seed"
#: Every batch key the sampled loss reads (what a wrapper passing a batch on must keep).
NEGATIVE_KEYS = (NEGATIVES, LOG_NQ, NEGATIVES_SEED)


@dataclass(frozen=True)
class ItemLossConfig:
    """Loss over items, full or sampled softmax (fields shared by the item-softmax models)."""

    loss: Literal["ce", "sampled"] = "ce"  # full CE over all items, or sampled softmax
    num_negatives: int = 256  # sampled: N items drawn per batch (or per position, below)
    sampler: Literal["uniform", "popularity"] = "uniform"  # sampled: proposal q over items
    logq_correction: bool = True  # sampled: subtract log(N q) from the negatives' logits
    # sampled: one draw of N shared by every position of the batch, or N drawn for each position
    # (RecTools' SASRec, the published SASRec+SS line: a batch of M positions sees M x N items)
    negatives_per: Literal["batch", "position"] = "batch"


def check_item_loss(config: ItemLossConfig, where: str) -> None:
    """One-line ConfigError for a bad loss option."""
    if config.loss == "sampled" and config.num_negatives < 1:
        raise ConfigError(f"{where}: expected 'num_negatives' >= 1 (got {config.num_negatives})")
    if config.negatives_per == "position" and config.sampler != "uniform":
        raise ConfigError(
            f"{where}: 'negatives_per: position' draws uniform negatives only "
            f"(got sampler {config.sampler!r}); use negatives_per: batch for {config.sampler!r}"
        )


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
    """Adds ``negatives`` (and ``negatives_log_nq``) to each batch when ``loss`` is sampled, or,
    with ``negatives_per: position``, the seed of the batch's per-position draw."""
    if config.loss != "sampled":
        yield from batches
        return
    if config.negatives_per == "position":
        for batch in batches:
            seed = torch.randint(2**62, (), generator=generator, device=generator.device)
            yield {**batch, NEGATIVES_SEED: seed.to(inputs.device)}
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
    if NEGATIVES_SEED in batch:
        negatives, log_nq = position_negatives(
            config, batch[NEGATIVES_SEED], targets.shape[0], item_weight.shape[-2]
        )
    elif NEGATIVES in batch:
        negatives, log_nq = batch[NEGATIVES], batch.get(LOG_NQ)
    else:
        raise ValueError(
            "Expected the batch to carry 'negatives' (or 'negatives_seed') for loss 'sampled'; "
            f"build batches with the model's training_batches (got keys {sorted(batch)})"
        )
    pos, neg = candidate_logits(queries, item_weight, targets, negatives, item_bias)
    logits = sampled_softmax_logits(pos, neg, targets, negatives, log_nq)
    return logits, torch.zeros_like(targets)


def position_negatives(
    config: ItemLossConfig, seed: Tensor, positions: int, num_items: int
) -> tuple[Tensor, Tensor | None]:
    """Each position's own ``num_negatives`` uniform items, drawn from ``seed`` (so the same
    batch always gets the same draw), and their ``log(N q)`` (None without the correction).

    Shapes:
        seed: () int64; returns negatives (positions, N) in [0, num_items) on ``seed``'s
        device and log_nq () float32.
    """
    generator = torch.Generator(device=seed.device).manual_seed(int(seed))
    n = config.num_negatives
    negatives = torch.randint(
        num_items, (positions, n), generator=generator, device=seed.device
    )
    if not config.logq_correction:
        return negatives, None
    return negatives, torch.tensor(math.log(n / num_items), device=seed.device)
