"""A human-readable summary of an interactions table (``python -m mmseq data stats FILE``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from mmseq.data.dedup import pair_keys
from mmseq.data.schema import Interactions
from mmseq.data.split import Split


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


def _duplicates_line(data: Interactions) -> str:
    rows, pairs = duplicate_pairs(data)
    removed = int(data.meta.get("duplicates_removed", 0))
    line = f"{rows:,} repeat an earlier (user, item) pair ({pairs:,} pairs)"
    if removed:
        line += f"; {removed:,} removed before this table"
    return line


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
        ("duplicate rows", _duplicates_line(data)),
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


# ------------------------------------------------------------------------------ pipeline stages
def duplicate_pairs(data: Interactions) -> tuple[int, int]:
    """(rows that repeat an earlier (user, item) pair, distinct pairs that occur more than once)."""
    if not len(data):
        return 0, 0
    _, counts = np.unique(pair_keys(data), return_counts=True)
    return int((counts - 1).sum()), int((counts > 1).sum())


def pipeline_stages(data: Interactions, split: Split | None = None) -> list[dict[str, Any]]:
    """Rows, users and items kept and dropped at each stage: raw -> dedup -> k-core -> split.

    Args:
        data: the output of :func:`mmseq.data.load.apply_pipeline` (its ``meta["steps"]``).
        split: its split, for the last stage (users with too few rows are dropped there).

    Returns:
        One dict per stage: ``stage``, ``rows``, ``users``, ``items`` and ``dropped_rows``,
        ``dropped_users``, ``dropped_items`` (relative to the stage before; 0 for ``raw``).
    """
    names = {"read": "raw", "kcore": "k-core"}
    stages = []
    for step in data.meta.get("steps", ()):
        after = step["after"]
        name = names.get(step["step"], step["step"])
        if step["step"] == "kcore":
            name = f"{step['k']}-core"
        stages.append(
            {
                "stage": name,
                "rows": after["interactions"],
                "users": after["users"],
                "items": after["items"],
            }
        )
    if split is not None:
        kept_items = np.concatenate([split.fit.item, split.valid.item, split.test.item])
        stages.append(
            {
                "stage": f"split ({split.protocol})",
                "rows": int(
                    split.meta["fit_rows"] + split.meta["valid_rows"] + split.meta["test_rows"]
                ),
                "users": int(split.meta["users_kept"]),
                "items": int(np.unique(kept_items).size),
                "fit_rows": int(split.meta["fit_rows"]),
                "valid_rows": int(split.meta["valid_rows"]),
                "test_rows": int(split.meta["test_rows"]),
            }
        )
    previous = None
    for stage in stages:
        for key in ("rows", "users", "items"):
            stage[f"dropped_{key}"] = 0 if previous is None else previous[key] - stage[key]
        previous = stage
    return stages


def format_stages(stages: list[dict[str, Any]]) -> str:
    """A table: one line per stage with rows/users/items kept and dropped."""
    header = f"{'stage':<22}{'rows':>12}{'users':>10}{'items':>10}   dropped rows/users/items"
    lines = [header]
    for s in stages:
        lines.append(
            f"{s['stage']:<22}{s['rows']:>12,}{s['users']:>10,}{s['items']:>10,}   "
            f"{s['dropped_rows']:,} / {s['dropped_users']:,} / {s['dropped_items']:,}"
        )
    return "\n".join(lines)


def stages_line(stages: list[dict[str, Any]]) -> str:
    """The one-line summary ``mmseq train`` prints: each stage's kept counts and what it dropped."""
    parts = []
    for s in stages:
        kept = f"{s['rows']:,} rows/{s['users']:,} users/{s['items']:,} items"
        dropped = [
            f"-{s[f'dropped_{k}']:,} {k}" for k in ("rows", "users", "items") if s[f"dropped_{k}"]
        ]
        parts.append(f"{s['stage']} {kept}" + (f" ({', '.join(dropped)})" if dropped else ""))
    return "data: " + " -> ".join(parts)


def trivial_metric_warnings(split: Split, ks: tuple[int, ...], candidates: int | None) -> list[str]:
    """Why metrics at the largest K of ``ks`` would be trivial on this split (empty: they are not).

    Args:
        split: the split scored.
        ks: the metric cut-offs.
        candidates: fixed candidates per user (``loo-sampled99``: 100), or None for ranking over
            every item the user has not interacted with.

    Returns:
        Messages: all items fit in the top K; or, per stage, the share of users whose candidate
        list holds no more than K items (each of those scores a hit whatever the model does).
    """
    k = max(ks)
    num_items = int(
        np.unique(np.concatenate([split.fit.item, split.valid.item, split.test.item])).size
    )
    out = []
    if num_items <= k:
        out.append(
            f"only {num_items} items <= K={k}: every item is in the top {k}; "
            f"metrics @{k} are trivial"
        )
    if candidates is not None:
        if candidates <= k:
            out.append(f"{candidates} candidates per user <= K={k}: metrics @{k} are trivial")
        return out
    for stage in ("valid", "test"):
        history = split.history(stage)
        seen = np.bincount(
            np.unique(pair_keys(history)) // max(history.num_items, 1), minlength=history.num_users
        )
        users = np.unique(getattr(split, stage).user)
        few = int(((num_items - seen[users]) <= k).sum())
        if few:
            out.append(
                f"{stage}: {few} of {len(users)} users have <= {k} candidate items "
                f"(items they have not seen): their metrics @{k} are trivial"
            )
    return out
