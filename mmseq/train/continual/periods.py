"""Time-ordered periods D_1..D_T cut by GLOBAL time (shared/docs/methods.md section 6).

Two rules (:class:`~mmseq.train.continual.config.PeriodConfig`):

* ``"count"`` (default): equal-size blocks of the time-sorted interactions. With ``n`` rows sorted
  by time, the boundary ``b_k`` (``k = 1..T-1``) is the timestamp of sorted row ``floor(k n / T)``
  and a row belongs to period ``#{k : b_k <= t}``. Interactions that share a timestamp always land
  in the same period (time is the only key), so a tie group that straddles a cut moves wholly into
  the LATER period and the sizes are equal only up to such groups (Amazon times have day
  resolution).
* ``"span"``: equal time spans between the first and the last timestamp (ADER cuts its data sets
  into weeks); sizes may then differ a lot.

Periods are 0-based in code (``0..T-1``); reports print them 1-based.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmseq.errors import DataError


@dataclass(frozen=True, eq=False)
class Periods:
    """The period of every interaction row.

    Attributes:
        index: (N,) int64 period of each row, in ``[0, num_periods)``, aligned with the input rows.
        boundaries: (T-1,) float64 start time of periods ``1..T-1`` (a row with time ``>= b_k``
            is in period ``k`` or later).
        sizes: (T,) int64 rows per period.
    """

    index: np.ndarray
    boundaries: np.ndarray
    sizes: np.ndarray

    @property
    def num_periods(self) -> int:
        return int(self.sizes.size)


def assign_periods(timestamp: np.ndarray, num_periods: int, rule: str = "count") -> Periods:
    """Cut rows into ``num_periods`` periods by their timestamp.

    Args:
        timestamp: (N,) int64 times (seconds).
        num_periods: T >= 2.
        rule: ``"count"`` (equal-size blocks by time) or ``"span"`` (equal time spans).

    Returns:
        The :class:`Periods`.

    Raises:
        ValueError: on a bad ``num_periods`` or ``rule``.
        DataError: if some period gets no row (too few distinct timestamps for T periods).
    """
    if isinstance(num_periods, bool) or not isinstance(num_periods, int) or num_periods < 2:
        raise ValueError(f"Expected 'num_periods' to be an integer >= 2 (got {num_periods!r})")
    timestamp = np.asarray(timestamp)
    n = timestamp.size
    if n == 0:
        raise DataError("Expected interactions to cut into periods (got an empty table)")
    if rule == "count":
        ordered = np.sort(timestamp, kind="stable")
        cuts = (np.arange(1, num_periods, dtype=np.int64) * n) // num_periods
        boundaries = ordered[cuts].astype(np.float64)
    elif rule == "span":
        lo, hi = float(timestamp.min()), float(timestamp.max())
        boundaries = lo + (hi - lo) * np.arange(1, num_periods, dtype=np.float64) / num_periods
    else:
        raise ValueError(f"Expected 'rule' to be one of ['count', 'span'] (got {rule!r})")
    index = np.searchsorted(boundaries, timestamp.astype(np.float64), side="right").astype(np.int64)
    sizes = np.bincount(index, minlength=num_periods).astype(np.int64)
    empty = np.flatnonzero(sizes == 0)
    if empty.size:
        raise DataError(
            f"Expected every one of the {num_periods} periods (rule '{rule}') to hold interactions "
            f"(got none in period(s) {(empty + 1).tolist()}; sizes {sizes.tolist()}); "
            f"use fewer periods"
        )
    return Periods(index=index, boundaries=boundaries, sizes=sizes)


def seen_items(item: np.ndarray, period: np.ndarray, num_items: int,
               num_periods: int) -> np.ndarray:
    """Items seen up to each period: ``out[t, i]`` is True iff item ``i`` occurs in D_1..D_{t+1}.

    This is I_t of the paper (0-based ``t``): the items the model can have learned by the end of
    period ``t``, hence the ranking candidates when evaluating on the next period.

    Shapes:
        item, period: (N,); returns (num_periods, num_items) bool.
    """
    first = np.full(num_items, num_periods, dtype=np.int64)  # num_periods = never seen
    np.minimum.at(first, np.asarray(item, dtype=np.int64), np.asarray(period, dtype=np.int64))
    return first[None, :] <= np.arange(num_periods)[:, None]
