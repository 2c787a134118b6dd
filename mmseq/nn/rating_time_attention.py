"""Dual-aware (rating x time) attention over a user's short-term sequence (SD-MTMP, methods.md 1.6).

Tang et al., "Self-Distillation Multi-task Learning Integrating Multi-dimensional Perception for
Multimodal Sequential Recommendation", PR&AI 2025, section 2.2. For the items ``i`` of the
short-term sequence ``S_u``::

    w_i^r = softmax_i(gamma1 * r_ui)
    w_i^t = exp(-beta * (t_last - t_ui))          # age in the chosen time unit
    w_i   = softmax_i(w_i^t * w_i^r)
    e_u^short = sum_i w_i q_i

The seed writes ``exp(-beta (t_ui - t_last))``, which grows with age; methods.md 1.6 fixes the
sign so that weights decay with age. Everything here is a pure function of tensors (the weights
depend only on ratings and times, not on parameters), vectorised over users with masks.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

TimeUnit = Literal["seconds", "hours", "days", "positions"]

#: seconds per unit; "positions" counts interactions instead of time (data without timestamps).
SECONDS_PER_UNIT: dict[str, float] = {"seconds": 1.0, "hours": 3600.0, "days": 86400.0}


def short_term_mask(
    seq_lengths: Tensor,
    history_counts: Tensor,
    *,
    width: int,
    ratio: float = 0.2,
    max_len: int = 0,
) -> Tensor:
    """Which columns of left-padded sequences form each user's short-term sequence ``S_u``.

    ``|S_u| = clamp(floor(ratio * n_u), 1, cap)`` with ``n_u`` the user's history length and
    ``cap = min(max_len or width, seq_length_u)``; users without history get an empty row.
    Reading of methods.md 1.6 ("the most recent 20%, at least 1"): rounded DOWN, because "at
    least 1" only matters under that rounding (n_u = 7 gives 1 item, n_u = 10 gives 2).

    Args:
        seq_lengths: (U,) non-padding entries per row (``ModelInputs.seq_lengths``).
        history_counts: (U,) total history interactions per user (may exceed ``width``).
        width: L, the width of the sequence matrices.
        ratio: the share of the history that is "short term" (default: 0.2).
        max_len: cap on ``|S_u|``; 0 = the width L (default: 0).

    Returns:
        (U, L) bool, True on the last ``|S_u|`` columns of each row.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"Expected 'ratio' in (0, 1] (got {ratio})")
    if max_len < 0:
        raise ValueError(f"Expected 'max_len' >= 0 (got {max_len})")
    cap = torch.minimum(seq_lengths, torch.full_like(seq_lengths, max_len or width))
    wanted = torch.floor(history_counts.to(torch.float64) * ratio).to(torch.int64).clamp_min(1)
    length = torch.minimum(wanted, cap)  # (U,); 0 where the user has no history
    column = torch.arange(width, device=seq_lengths.device)  # (L,)
    return column.unsqueeze(0) >= (width - length).unsqueeze(1)  # (U, L)


def interaction_ages(seq_times: Tensor, mask: Tensor, *, unit: TimeUnit = "days") -> Tensor:
    """Age ``t_last - t_ui`` of each sequence entry, in ``unit``, 0 outside ``mask``.

    ``t_last`` is the most recent entry (last column). With ``unit="positions"`` the age is the
    number of interactions since (0 for the most recent one), for data without timestamps.

    Shapes:
        seq_times: (U, L) int64 seconds; mask: (U, L) bool; returns (U, L) float32.
    """
    width = seq_times.size(-1)
    if unit == "positions":
        age = (width - 1 - torch.arange(width, device=seq_times.device)).to(torch.float32)
        age = age.expand_as(seq_times)  # (U, L)
    elif unit in SECONDS_PER_UNIT:
        # Integer difference first: float32 cannot hold epoch seconds to the second.
        gap = seq_times[:, -1:] - seq_times  # (U, L) int64
        age = gap.to(torch.float64).div(SECONDS_PER_UNIT[unit]).to(torch.float32)
    else:
        raise ValueError(
            f"Unknown time unit {unit!r}; choices: {[*SECONDS_PER_UNIT, 'positions']}"
        )
    return torch.where(mask, age, torch.zeros_like(age))


def _masked_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dimension restricted to ``mask``; an all-False row gives zeros."""
    filled = logits.masked_fill(~mask, float("-inf"))
    any_valid = mask.any(-1, keepdim=True)
    filled = torch.where(any_valid, filled, torch.zeros_like(filled))  # no NaN for empty rows
    return torch.softmax(filled, dim=-1) * mask


def rating_time_weights(
    ratings: Tensor,
    ages: Tensor,
    mask: Tensor,
    *,
    gamma1: float = 0.4,
    beta: float = 0.2,
) -> Tensor:
    """The dual-aware attention weights ``w_i = softmax_i(exp(-beta age_i) softmax_i(gamma1 r_i))``.

    Args:
        ratings: (U, L) ratings ``r_ui`` (anything at masked-out positions).
        ages: (U, L) non-negative ages ``t_last - t_ui`` in the chosen unit.
        mask: (U, L) bool, the short-term positions.
        gamma1: rating sharpness (default: 0.4, methods.md 1.7).
        beta: time decay per unit of age (default: 0.2); 0 switches the time term off.

    Returns:
        (U, L) weights: non-negative, summing to 1 over each row's mask (0 for an empty row).
    """
    if beta < 0:
        raise ValueError(f"Expected 'beta' >= 0 so that weights decay with age (got {beta})")
    if ratings.shape != mask.shape or ages.shape != mask.shape:
        raise ValueError(
            f"Expected 'ratings', 'ages' and 'mask' of one shape (got {tuple(ratings.shape)}, "
            f"{tuple(ages.shape)}, {tuple(mask.shape)})"
        )
    rating_weight = _masked_softmax(gamma1 * ratings, mask)  # (U, L)
    time_weight = torch.exp(-beta * ages)  # (U, L)
    return _masked_softmax(time_weight * rating_weight, mask)  # (U, L)


class RatingTimeAttention(nn.Module):
    """Pools item vectors of the short-term sequence with :func:`rating_time_weights`.

    Has no parameters (``gamma1`` and ``beta`` are hyper-parameters, as in the paper); it exists
    so that the pooling reads as one layer in the model.

    Args:
        gamma1: rating sharpness (default: 0.4).
        beta: time decay per unit of age (default: 0.2).

    Shapes:
        - item_vectors: (U, L, d) vectors q_i of the sequence items (anything at masked positions).
        - weights: (U, L) from :func:`rating_time_weights`.
        - output: (U, d) ``e_u^short``; 0 for a user with an empty sequence.
    """

    def __init__(self, *, gamma1: float = 0.4, beta: float = 0.2) -> None:
        super().__init__()
        if beta < 0:
            raise ValueError(f"Expected 'beta' >= 0 so that weights decay with age (got {beta})")
        self.gamma1, self.beta = gamma1, beta

    def weights(self, ratings: Tensor, ages: Tensor, mask: Tensor) -> Tensor:
        """(U, L) attention weights (see :func:`rating_time_weights`)."""
        return rating_time_weights(ratings, ages, mask, gamma1=self.gamma1, beta=self.beta)

    def forward(self, item_vectors: Tensor, weights: Tensor) -> Tensor:
        if item_vectors.dim() != 3 or item_vectors.shape[:2] != weights.shape:
            raise ValueError(
                f"Expected 'item_vectors' of shape (U, L, d) matching weights "
                f"{tuple(weights.shape)} (got {tuple(item_vectors.shape)})"
            )
        return torch.einsum("ul,uld->ud", weights, item_vectors)  # (U, d)

    def extra_repr(self) -> str:
        return f"gamma1={self.gamma1}, beta={self.beta}"


__all__ = [
    "RatingTimeAttention",
    "TimeUnit",
    "interaction_ages",
    "rating_time_weights",
    "short_term_mask",
]
