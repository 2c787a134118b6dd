"""Leak-free chronological splits for the three evaluation protocols (shared/docs/protocols.md).

Every protocol is implemented once here and shared by every model: models train on ``fit`` only,
topics and graphs are built from ``fit`` only, and the evaluation code reads ``valid`` / ``test``
with :meth:`Split.history` as the items to exclude from the ranking.

Per user, interactions are ordered by time, ties kept in file order
(:meth:`Interactions.chronological_order`). With ``n`` the user's interaction count:

* ``ratio-80-20``: ``n_train = max(1, floor(0.8 n))`` is the training history and the remaining
  ``n - n_train`` the test set. The last ``n_valid = max(1, floor(0.1 n_train))`` items of the
  training history are the validation set and the rest is ``fit``. We round the 10% DOWN (at
  least 1), the same rule protocols.md states for the 80%, so ``n_valid = 1`` for ``n_train < 20``.
* ``loo-full`` / ``loo-sampled99``: the last item is the test set, the second-last the validation
  set, the rest is ``fit``.

Users with fewer than 3 interactions are dropped (and counted in :attr:`Split.meta`): 3 is the
smallest ``n`` that leaves ``fit``, ``valid`` and ``test`` all non-empty under both rules (for
``ratio-80-20`` and ``n = 3``: ``floor(2.4) = 2`` training items, 1 valid, 1 fit, 1 test).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mmseq.data.schema import Interactions
from mmseq.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

PROTOCOLS: tuple[str, ...] = ("ratio-80-20", "loo-full", "loo-sampled99")
STAGES: tuple[str, ...] = ("valid", "test")
#: Users with fewer interactions than this are dropped: fit, valid and test must be non-empty.
MIN_INTERACTIONS = 3

Stage = Literal["valid", "test"]


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` if it is known, else raise :class:`ConfigError` listing the choices."""
    if protocol not in PROTOCOLS:
        close = difflib.get_close_matches(str(protocol), PROTOCOLS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"Unknown protocol '{protocol}'; choices: {list(PROTOCOLS)}{hint}")
    return protocol


def check_stage(stage: str) -> str:
    """Return ``stage`` if it is ``"valid"`` or ``"test"``, else raise ``ValueError``."""
    if stage not in STAGES:
        raise ValueError(f"Expected 'stage' to be one of {list(STAGES)} (got {stage!r})")
    return stage


@dataclass(frozen=True, eq=False)
class Split:
    """The fit / valid / test parts of one data set under one protocol.

    All three parts share the id space of the input (``num_users``, ``num_items`` and the raw id
    maps are unchanged; dropped users simply have no rows) and are ordered chronologically per user
    (sorted by user, then time, ties in file order).

    Attributes:
        protocol: one of :data:`PROTOCOLS`.
        fit: what models train on, and what topics and graphs are built from.
        valid: the validation targets (early stopping, model choice).
        test: the test targets.
        meta: counts: ``users`` (with at least one row), ``users_kept``,
            ``users_dropped_fewer_than_3`` (and ``rows_dropped``), ``fit_rows``, ``valid_rows``,
            ``test_rows``.
    """

    protocol: str
    fit: Interactions
    valid: Interactions
    test: Interactions
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_users(self) -> int:
        return self.fit.num_users

    @property
    def num_items(self) -> int:
        return self.fit.num_items

    def history(self, stage: Stage | str) -> Interactions:
        """The interactions a model may see when scoring ``stage``.

        ``"valid"`` -> ``fit``; ``"test"`` -> ``fit`` plus ``valid`` (the whole training history),
        chronological per user.
        """
        check_stage(stage)
        if stage == "valid":
            return self.fit
        both = self.fit.concat(self.valid)
        # Every valid row is, per user, no earlier than every fit row and comes after it in the
        # concatenation, so the stable sort reproduces the input's chronological order exactly.
        return both.select(both.chronological_order())

    def all_interactions(self) -> Interactions:
        """fit + valid + test of the kept users, chronological per user."""
        both = self.fit.concat(self.valid).concat(self.test)
        return both.select(both.chronological_order())


def _part_sizes(counts: np.ndarray, protocol: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-user (fit size, valid size) for counts ``n >= 3``; test size is the rest.

    Integer arithmetic keeps ``floor(0.8 n)`` exact (``0.8 * n`` in floating point is not).
    """
    if protocol == "ratio-80-20":
        n_train = np.maximum(1, (4 * counts) // 5)
        n_valid = np.maximum(1, n_train // 10)
        return n_train - n_valid, n_valid
    return counts - 2, np.ones_like(counts)


def split_interactions(data: Interactions, protocol: str) -> Split:
    """Split ``data`` chronologically per user under ``protocol`` (see the module docstring).

    Vectorised: one stable sort, then each row's position within its user decides its part.

    Args:
        data: interactions in any row order (time ties are broken by row order).
        protocol: ``"ratio-80-20"``, ``"loo-full"`` or ``"loo-sampled99"``.

    Returns:
        A :class:`Split` in the same id space as ``data``.

    Raises:
        ConfigError: on an unknown protocol.
        DataError: if no user has at least 3 interactions.
    """
    check_protocol(protocol)
    order = data.chronological_order()  # (N,) rows grouped by user, chronological
    user_sorted = data.user[order]
    counts = np.bincount(data.user, minlength=data.num_users).astype(np.int64)  # (num_users,)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(order), dtype=np.int64) - starts[user_sorted]  # rank within user

    kept_user = counts >= MIN_INTERACTIONS
    safe_counts = np.where(kept_user, counts, MIN_INTERACTIONS)
    n_fit, n_valid = _part_sizes(safe_counts, protocol)
    row_kept = kept_user[user_sorted]
    row_fit = position < n_fit[user_sorted]
    row_valid = ~row_fit & (position < (n_fit + n_valid)[user_sorted])
    row_test = ~row_fit & ~row_valid

    users_present = int(np.count_nonzero(counts))
    users_kept = int(np.count_nonzero(kept_user))
    if users_kept == 0:
        raise DataError(
            f"Expected at least one user with >= {MIN_INTERACTIONS} interactions for protocol "
            f"'{protocol}' (got {users_present} users, at most {int(counts.max(initial=0))} "
            f"interactions each; source {data.meta.get('source', '<unknown>')})"
        )
    dropped = users_present - users_kept
    rows_dropped = int(np.count_nonzero(~row_kept))
    if dropped:
        logger.info(
            "split %s: dropped %d of %d users (%d rows) with fewer than %d interactions",
            protocol, dropped, users_present, rows_dropped, MIN_INTERACTIONS,
        )

    parts = {}
    for name, mask in (("fit", row_fit), ("valid", row_valid), ("test", row_test)):
        part = data.select(order[row_kept & mask])
        parts[name] = part.with_meta(split_protocol=protocol, split_part=name)
    meta = {
        "protocol": protocol,
        "users": users_present,
        "users_kept": users_kept,
        "users_dropped_fewer_than_3": dropped,
        "rows_dropped": rows_dropped,
        "fit_rows": len(parts["fit"]),
        "valid_rows": len(parts["valid"]),
        "test_rows": len(parts["test"]),
    }
    return Split(protocol=protocol, fit=parts["fit"], valid=parts["valid"], test=parts["test"],
                 meta=meta)
