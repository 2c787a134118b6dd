"""Bar charts of results tables: mean over seeds per (model, metric), with the seed spread.

``scripts/make_results.py`` draws each table it writes as a PNG beside the markdown and links it.
A bar is the mean over seeds, the error bar the sample standard deviation (drawn only with two
or more seeds, as the table prints ``±`` only then), and each seed's value is a dot on the bar, so
the spread is visible even with two seeds. Reference (paper) rows are hatched, without spread.
"""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmseq.errors import DataError
from mmseq.io import atomic_write


@dataclass(frozen=True)
class ChartRow:
    """One model of a table.

    Attributes:
        label: the row's name (legend entry).
        values: metric -> one value per seed (a metric may be missing).
        reference: a reported number, not a run of ours (drawn hatched, without spread).
    """

    label: str
    values: Mapping[str, Sequence[float]] = field(default_factory=dict)
    reference: bool = False


def chart_path(markdown: str | Path, table: str) -> Path:
    """Where the chart of ``table`` goes: beside ``markdown``, ``<stem>_<table>.png``."""
    markdown = Path(markdown)
    return markdown.with_name(f"{markdown.stem}_{table}.png")


def mean_and_spread(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, sample std)``; the std is 0 with fewer than two values (no spread to show)."""
    if not values:
        return float("nan"), 0.0
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def results_bar_chart(rows: Sequence[ChartRow], columns: Sequence[str], title: str) -> bytes:
    """Grouped bars: one group per metric column, one bar per row; returns PNG bytes."""
    if not rows or not columns:
        raise DataError(
            f"Expected rows and columns to chart (got {len(rows)} rows, "
            f"{len(columns)} columns) for '{title}'"
        )
    from mmseq.report.figures import pyplot, to_png

    plt = pyplot()
    n = len(rows)
    width = 0.8 / n
    x = np.arange(len(columns), dtype=np.float64)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(columns) + 0.35 * n * len(columns)), 4.2))
    for j, row in enumerate(rows):
        pos = x - 0.4 + width * (j + 0.5)
        stats = [mean_and_spread(list(row.values.get(c, ()))) for c in columns]
        means = np.array([m for m, _ in stats])
        spread = np.array([s for _, s in stats])
        color = f"C{j % 10}"
        ax.bar(
            pos,
            np.nan_to_num(means),
            width * 0.92,
            label=row.label,
            color=color,
            alpha=0.45 if row.reference else 0.85,
            hatch="//" if row.reference else None,
            edgecolor=color,
        )
        if not row.reference and (spread > 0).any():
            ax.errorbar(pos, means, yerr=spread, fmt="none", ecolor="black", capsize=3, lw=1)
        for k, c in enumerate(columns):
            seeds = list(row.values.get(c, ()))
            if not row.reference and len(seeds) > 1:
                ax.scatter([pos[k]] * len(seeds), seeds, s=8, color="black", zorder=3)
    ax.set_xticks(x, list(columns))
    ax.set_ylabel("test metric (mean over seeds)")
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(
        fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(n, 4), frameon=False
    )
    fig.tight_layout()
    return to_png(fig)


def write_results_chart(
    rows: Sequence[ChartRow], columns: Sequence[str], title: str, path: str | Path
) -> Path:
    """Draw :func:`results_bar_chart` and write it to ``path`` (atomically)."""
    png = results_bar_chart(rows, columns, title)

    def write(tmp: Path) -> None:
        tmp.write_bytes(png)

    return atomic_write(Path(path), write)


__all__ = ["ChartRow", "chart_path", "mean_and_spread", "results_bar_chart", "write_results_chart"]
