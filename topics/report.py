"""A human-readable topic report: sizes, keywords and a 2-D map of the topic embeddings.

The map is a PCA projection of the (k, d) topic embeddings (``mmseq.report.topic_map``), always
written to ``topics.json``; the PNG needs matplotlib, which mmseq does not depend on. Without it the
PNG is skipped with a logged warning and the JSON says why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mmseq.data.schema import TopicAssignments
from mmseq.io import atomic_write, write_json
from mmseq.optional import is_available
from mmseq.report.topic_map import topic_map_2d  # one map for the topic stage and the run report

logger = logging.getLogger(__name__)


def topic_summary(assignments: TopicAssignments) -> list[dict[str, Any]]:
    """One record per topic: id, label, keywords, sentences, users, items (with sentences in it)."""
    sizes = list(assignments.meta.get("topic_sizes", [None] * assignments.num_topics))
    users = np.diff(assignments.user_topic.tocsc().indptr)  # (k,) users with >= 1 sentence
    items = np.diff(assignments.item_topic.tocsc().indptr)
    return [
        {
            "topic": g,
            "label": assignments.labels[g],
            "keywords": list(assignments.keywords[g]) if assignments.keywords else [],
            "sentences": sizes[g],
            "users": int(users[g]),
            "items": int(items[g]),
        }
        for g in range(assignments.num_topics)
    ]


def topic_coverage(assignments: TopicAssignments) -> dict[str, float]:
    """Share of users and of items (of the whole id space) that belong to at least one topic."""
    users = assignments.user_topic.getnnz(axis=1) > 0
    items = assignments.item_topic.getnnz(axis=1) > 0
    return {
        "users": float(users.mean()) if users.size else 0.0,
        "items": float(items.mean()) if items.size else 0.0,
    }


def format_topic_table(assignments: TopicAssignments, *, max_keywords: int = 8) -> str:
    """A Markdown table of the topics (largest first, as BERTopic numbers them)."""
    meta = assignments.meta
    cov = topic_coverage(assignments)
    lines = [
        f"{assignments.num_topics} topics from {meta.get('sentences', {}).get('sentences', '?')} "
        f"training sentences; outliers: {meta.get('outliers', '?')} "
        f"({100 * float(meta.get('outlier_share', 0.0)):.1f}%); coverage: "
        f"{100 * cov['users']:.1f}% of users, {100 * cov['items']:.1f}% of items in >= 1 topic",
        "",
        "| topic | sentences | users | items | keywords |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    for rec in topic_summary(assignments):
        kw = ", ".join(rec["keywords"][:max_keywords])
        lines.append(
            f"| {rec['topic']} | {rec['sentences']} | {rec['users']} | {rec['items']} | {kw} |"
        )
    return "\n".join(lines) + "\n"


def write_topic_report(assignments: TopicAssignments, out_dir: str | Path) -> dict[str, Path]:
    """Write ``topics.md``, ``topics.json`` (with 2-D map coordinates) and, with matplotlib,
    ``topic_map.png`` into ``out_dir``. Returns the paths written, by kind."""
    out = Path(out_dir)
    coords = topic_map_2d(assignments.topic_embeddings)
    records = topic_summary(assignments)
    for rec, xy in zip(records, coords):
        rec["map_xy"] = [float(xy[0]), float(xy[1])]
    written = {"table": out / "topics.md", "json": out / "topics.json"}
    text = format_topic_table(assignments)

    def write_table(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(written["table"], write_table)
    png_note = "written"
    if is_available("matplotlib"):
        written["map"] = out / "topic_map.png"
        atomic_write(written["map"], lambda p: _plot_map(records, coords, p))
    else:
        png_note = "skipped: matplotlib is not installed"
        logger.warning(
            "topic_map.png not written: matplotlib is not installed "
            "(the coordinates are in topics.json)"
        )
    write_json(
        written["json"], {"topics": records, "map": "PCA of topic embeddings", "png": png_note}
    )
    return written


def _plot_map(
    records: list[dict[str, Any]], coords: np.ndarray, path: Path
) -> None:  # pragma: no cover
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = np.array([r["sentences"] or 1 for r in records], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.scatter(coords[:, 0], coords[:, 1], s=20 + 400 * sizes / sizes.max(), alpha=0.5)
    for r, (x, y) in zip(records, coords):
        ax.annotate(r["label"], (x, y), fontsize=7)
    ax.set_title("Topics (PCA of topic embeddings; area ~ sentences)")
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)
