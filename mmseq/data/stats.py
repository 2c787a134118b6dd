"""A human-readable summary of an interactions table (``python -m mmseq data stats FILE``)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from mmseq.data.schema import Interactions


def _day(seconds: int) -> str:
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%d")


def _rating_line(data: Interactions) -> str:
    if not data.meta.get("has_rating", True):
        return "none (implicit feedback, all 1.0)"
    values, counts = np.unique(data.rating, return_counts=True)
    if len(values) > 12:
        return (
            f"{len(values)} distinct values, min {values[0]:g}, mean {data.rating.mean():.3f}, "
            f"max {values[-1]:g}"
        )
    return "  ".join(f"{v:g}: {c:,}" for v, c in zip(values, counts))


def _time_line(data: Interactions) -> str:
    if not len(data):
        return "-"
    if not data.meta.get("has_time", True):
        return "none (positions in each user's sequence)"
    return f"{_day(data.timestamp.min())} .. {_day(data.timestamp.max())} (UTC)"


def _text_line(data: Interactions) -> str:
    if data.review is None:
        return "none"
    with_text = int(sum(1 for text in data.review if text))
    share = with_text / len(data) if len(data) else 0.0
    return f"{with_text:,} ({share:.2%})"


def format_stats(data: Interactions) -> str:
    """A two-column table: sizes, density, per-user counts, ratings, time, text, meta counts."""
    n = len(data)
    users, items = int(np.unique(data.user).size), int(np.unique(data.item).size)
    per_user = np.bincount(data.user)[np.unique(data.user)] if n else np.zeros(1, dtype=np.int64)
    per_item = np.bincount(data.item)[np.unique(data.item)] if n else np.zeros(1, dtype=np.int64)
    meta = data.meta
    rows = [
        ("source", f"{meta.get('source', '?')} (format {meta.get('format', '?')})"),
        ("interactions", f"{n:,}"),
        ("users", f"{users:,}"),
        ("items", f"{items:,}"),
        ("density", f"{n / (users * items):.6f}" if users and items else "-"),
        (
            "interactions/user",
            f"mean {per_user.mean():.2f}, min {per_user.min()}, max {per_user.max()}",
        ),
        (
            "interactions/item",
            f"mean {per_item.mean():.2f}, min {per_item.min()}, max {per_item.max()}",
        ),
        ("ratings", _rating_line(data)),
        ("time range", _time_line(data)),
        ("with text", _text_line(data)),
        ("duplicates removed", f"{meta.get('duplicates_removed', 0):,}"),
        (
            "skipped rows",
            ", ".join(f"{k}: {v:,}" for k, v in dict(meta.get("skipped", {})).items()) or "0",
        ),
    ]
    if data.item_attributes is not None:
        rows.append(
            (
                "item attributes",
                f"{data.item_attributes.shape[1]:,} attributes, "
                f"{data.item_attributes.nnz:,} item-attribute pairs",
            )
        )
    if "kcore" in meta:
        kc = meta["kcore"]
        rows.append(
            (
                "k-core",
                f"k={kc['k']}, {kc['rounds']} round(s), removed "
                f"{kc['removed_interactions']:,} interactions, "
                f"{kc['removed_users']:,} users, {kc['removed_items']:,} items",
            )
        )
    for step in meta.get("steps", ()):
        after = step["after"]
        rows.append(
            (
                f"step {step['step']}",
                f"-> {after['interactions']:,} interactions, "
                f"{after['users']:,} users, {after['items']:,} items",
            )
        )
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
