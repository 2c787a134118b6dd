"""One entry point from a :class:`~mmseq.config.DataConfig` to a filtered interactions table."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import numpy as np

from mmseq.config import DataConfig, from_dict
from mmseq.data.dedup import deduplicate
from mmseq.data.kcore import kcore_filter
from mmseq.data.readers import READERS, detect_format, load_interactions
from mmseq.data.schema import Interactions
from mmseq.data.synthetic import SyntheticConfig, generate_synthetic
from mmseq.errors import ConfigError

logger = logging.getLogger(__name__)


def _counts(step: str, before: Interactions | None, after: Interactions) -> dict[str, Any]:
    def sizes(d: Interactions) -> dict[str, int]:
        return {
            "interactions": len(d),
            "users": int(np.unique(d.user).size),
            "items": int(np.unique(d.item).size),
        }

    record: dict[str, Any] = {"step": step, "after": sizes(after)}
    if before is not None:
        record["before"] = sizes(before)
    logger.info("data step %s: %s", step, record)
    return record


def keep_first_users(data: Interactions, max_users: int) -> Interactions:
    """The rows of the first ``max_users`` users by first appearance in row order, compacted."""
    users, first = np.unique(data.user, return_index=True)
    if len(users) <= max_users:
        return data
    chosen = users[np.argsort(first, kind="stable")[:max_users]]
    keep = np.zeros(data.num_users, dtype=bool)
    keep[chosen] = True
    return data.select(keep[data.user]).compact()


def _reader_options(cfg: DataConfig, path: Path) -> dict[str, Any]:
    """Reader options from ``cfg``: ``rating_range`` for the formats without a fixed scale."""
    if cfg.rating_range is None:
        return {}
    fmt = detect_format(path) if cfg.format == "auto" else cfg.format
    if "rating_range" not in _params(fmt):
        raise ConfigError(
            f"data.rating_range: format '{fmt}' has a fixed rating scale; the option applies to "
            f"{[n for n in READERS.names() if 'rating_range' in _params(n)]}"
        )
    return {"rating_range": cfg.rating_range}


def _params(name: str) -> Any:
    return inspect.signature(READERS.get(name)).parameters


def read_raw(cfg: DataConfig, path: Path | None) -> Interactions:
    """The table as read (``path`` None: generated from ``cfg.synthetic``), before any filter."""
    if path is None:
        return generate_synthetic(from_dict(SyntheticConfig, cfg.synthetic, where="data.synthetic"))
    return load_interactions(path, cfg.format, **_reader_options(cfg, path))


def apply_pipeline(data: Interactions, cfg: DataConfig) -> Interactions:
    """Deduplicate, k-core filter and truncate ``data`` as ``cfg`` says, recording every step.

    Steps: ``read`` (the input's counts), ``dedup`` (always; policy "first"), ``kcore`` (if
    ``cfg.kcore > 0``), ``max_users`` (if ``cfg.max_users > 0``: the first N users by first
    appearance).

    Returns:
        The table; ``meta["steps"]`` lists each step with ``before``/``after`` counts of
        interactions, users and items.
    """
    steps = [_counts("read", None, data)]
    deduped = deduplicate(data, "first")
    steps.append(
        {**_counts("dedup", data, deduped), "duplicates_removed": len(data) - len(deduped)}
    )
    data = deduped
    if cfg.kcore > 0:
        filtered = kcore_filter(data, cfg.kcore)
        steps.append({**_counts("kcore", data, filtered), **filtered.meta["kcore"]})
        data = filtered
    if cfg.max_users > 0:
        truncated = keep_first_users(data, cfg.max_users)
        steps.append({**_counts("max_users", data, truncated), "max_users": cfg.max_users})
        data = truncated
    return data.with_meta(steps=steps)


def load_dataset(cfg: DataConfig, path: Path | None) -> Interactions:
    """:func:`read_raw` then :func:`apply_pipeline` (``cfg.format`` "auto" detects the reader)."""
    return apply_pipeline(read_raw(cfg, path), cfg)
