"""Figures of the run report, drawn with matplotlib's Agg backend into PNG bytes.

Each function takes plain data (the run's ``results.json`` history, metric dicts, a
:class:`~mmseq.report.topic_map.TopicMap`) and returns the PNG as bytes; nothing here reads files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmseq.report.topic_map import TopicMap

DPI = 100


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display: the report is made on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def to_png(fig: Any) -> bytes:
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def metric_order(name: str) -> tuple[str, int, str]:
    """Sort key: ``hr@5`` before ``hr@10`` (cut-offs by number), names without ``@k`` by name."""
    base, _, k = name.partition("@")
    return (base, int(k) if k.isdigit() else -1, k)


def _grid(n: int, cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def _series(history: Sequence[Mapping[str, Any]], section: str) -> dict[str, tuple[list, list]]:
    """``{name: (epochs, values)}`` of ``history[e][section][name]`` where present."""
    out: dict[str, tuple[list, list]] = {}
    for entry in history:
        for name, value in (entry.get(section) or {}).items():
            epochs, values = out.setdefault(name, ([], []))
            epochs.append(int(entry["epoch"]))
            values.append(float(value))
    return out


def loss_curves(history: Sequence[Mapping[str, Any]]) -> bytes | None:
    """One panel per loss term (``total`` first): mean training loss per epoch.

    Returns None when the history has no loss (closed-form models).
    """
    series = _series(history, "loss")
    if not series:
        return None
    names = sorted(series, key=lambda n: (n != "total", n))
    rows, cols = _grid(len(names))
    plt = pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        epochs, values = series[name]
        ax.plot(epochs, values, marker="o", markersize=3, color="C0" if name == "total" else "C1")
        ax.set_title(f"loss: {name}", fontsize=10)
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return to_png(fig)


def validation_curves(
    history: Sequence[Mapping[str, Any]], *, best_epoch: int | None = None
) -> bytes | None:
    """Every validation metric per validated epoch, one axis; a dashed line at ``best_epoch``."""
    series = _series(history, "valid")
    if not series:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for j, name in enumerate(sorted(series, key=metric_order)):
        epochs, values = series[name]
        ax.plot(epochs, values, marker="o", markersize=3, label=name, color=f"C{j % 10}")
    if best_epoch is not None:
        ax.axvline(best_epoch, linestyle="--", color="grey", linewidth=1)
        ax.annotate(
            f"best epoch {best_epoch}",
            (best_epoch, ax.get_ylim()[1]),
            fontsize=8,
            ha="left",
            va="top",
            xytext=(3, -3),
            textcoords="offset points",
        )
    ax.set_xlabel("epoch")
    _integer_epochs(ax)
    ax.set_ylabel("validation metric")
    ax.set_title("Validation metrics per epoch", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(
        fontsize=8,
        ncol=max(1, math.ceil(len(series) / 12)),
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
    )
    fig.tight_layout()
    return to_png(fig)


def epoch_curves(history: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Wall time per epoch (s) and, when the history has it, the learning rate."""
    epochs = [int(h["epoch"]) for h in history if "seconds" in h]
    if not epochs:
        return None
    seconds = [float(h["seconds"]) for h in history if "seconds" in h]
    lrs = [(int(h["epoch"]), float(h["lr"])) for h in history if "lr" in h]
    plt = pyplot()
    fig, axes = plt.subplots(1, 2 if lrs else 1, figsize=(8 if lrs else 4.5, 2.6), squeeze=False)
    ax = axes[0, 0]
    ax.bar(epochs, seconds, color="C2")
    ax.set_title("seconds per epoch (train + validation)", fontsize=10)
    ax.set_xlabel("epoch")
    _integer_epochs(ax)
    if lrs:
        ax = axes[0, 1]
        ax.plot([e for e, _ in lrs], [v for _, v in lrs], marker="o", markersize=3, color="C4")
        ax.set_title("learning rate", fontsize=10)
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


def metric_bars(metrics: Mapping[str, float], *, title: str) -> bytes | None:
    """A horizontal bar per metric with its value printed."""
    if not metrics:
        return None
    names = sorted(metrics, key=metric_order)
    values = [float(metrics[n]) for n in names]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.0))
    bars = ax.barh(names, values, color="C0")
    ax.bar_label(bars, labels=[f"{v:.4f}" for v in values], fontsize=8, padding=2)
    ax.invert_yaxis()
    ax.set_xlim(0, max(values) * 1.2 if max(values) > 0 else 1)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


def topic_map_figure(topic_map: TopicMap, *, max_labels: int = 15) -> bytes:
    """Topics at their PCA coordinates; area ~ users + items; the largest ``max_labels`` named."""
    size = (topic_map.users + topic_map.items).astype(np.float64)
    area = 30 + 600 * size / max(size.max(), 1.0)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.scatter(
        topic_map.xy[:, 0], topic_map.xy[:, 1], s=area, alpha=0.45, color="C0", edgecolors="C0"
    )
    for g in np.argsort(-size, kind="stable")[:max_labels]:
        ax.annotate(
            topic_map.labels[g],
            topic_map.xy[g],
            fontsize=7,
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7, "lw": 0},
        )
    named = min(max_labels, len(topic_map.labels))
    ax.set_title(
        f"{len(topic_map.labels)} review topics, the {named} largest named "
        "(PCA of topic embeddings; area ~ users + items)",
        fontsize=10,
    )
    ax.margins(0.12)  # room for the labels of the outermost topics
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return to_png(fig)


__all__ = [
    "epoch_curves",
    "loss_curves",
    "metric_bars",
    "topic_map_figure",
    "metric_order",
    "validation_curves",
]
