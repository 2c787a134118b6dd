"""``mmseq report``: one self-contained HTML page about a finished run.

Reads the run directory (``results.json``, ``model.pt``) and, through
:func:`mmseq.recommend.load_run`, the run's data and graph bundle; writes ``report.html`` with
every figure inline, and the same figures as PNG files beside it (``<name>_figures/``).

Sections: run (config and provenance), training curves (every loss term and validation metric
per epoch, epoch time and learning rate), test metrics, and, when the run's graphs include the topic
hypergraphs (the SD-MTMP family), the topic map and a few users' recommendations with the topics
that explain them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mmseq.errors import ArtifactError, MmseqError
from mmseq.io import atomic_write
from mmseq.report import figures
from mmseq.report.html import esc, flatten, image, key_values, page, table
from mmseq.report.topic_map import TopicMap, topic_map_2d, topic_members

log = logging.getLogger(__name__)

USER_PART, ITEM_PART = "user_topic_hypergraph", "item_topic_hypergraph"


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    html: Path
    figures: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _write_bytes(path: Path, data: bytes) -> Path:
    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return atomic_write(path, write)


def read_results(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "results.json"
    if not path.is_file():
        raise ArtifactError(
            f"No results.json in {run_dir}; is it a run directory written by 'mmseq train'?"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def topic_map_of(parts: dict[str, Any]) -> TopicMap:
    """The topic map from the bundle's two topic hypergraphs (embeddings, labels, members)."""
    from mmseq.explain import topic_labels

    user_part, item_part = parts[USER_PART], parts[ITEM_PART]
    k = int(user_part.shape[1])
    labels, keywords, _ = topic_labels(user_part, None)
    emb = user_part.features["topic"].cpu().numpy()  # (k, d)

    def members(part: Any) -> np.ndarray:
        num = int(part.shape[0]) - k
        return topic_members(part.edge_index.cpu().numpy(), num, k)

    return TopicMap(
        topic_map_2d(emb),
        tuple(labels),
        members(user_part),
        members(item_part),
        tuple(tuple(kw) for kw in keywords),
    )


def _topic_table(topic_map: TopicMap, top: int = 25) -> str:
    size = topic_map.users + topic_map.items
    order = np.argsort(-size, kind="stable")[:top]
    rows = [
        (
            int(g),
            topic_map.labels[g],
            int(topic_map.users[g]),
            int(topic_map.items[g]),
            ", ".join(topic_map.keywords[g][:8]) if topic_map.keywords else "",
        )
        for g in order
    ]
    note = (
        f'<p class="note">The {len(order)} largest of {len(size)} topics.</p>'
        if len(size) > top
        else ""
    )
    return note + table(rows, ("topic", "label", "users", "items", "keywords"))


def _run_section(results: dict[str, Any], cfg: Any) -> str:
    from mmseq.identity import config_identity

    extra = results.get("extra", {})
    summary = {
        "model": results["config"]["model"]["name"],
        "protocol": results.get("protocol"),
        "seed": results.get("seed"),
        "run identity (mmseq.identity)": config_identity(cfg),
        "config hash (results.json)": results.get("config_hash"),
        "data hash": results.get("data_hash"),
        "best epoch": extra.get("best_epoch"),
        "epochs run": extra.get("epochs_run"),
        "stopped early": extra.get("stopped_early"),
        "graphs": ", ".join(extra.get("graphs", [])) or "none",
    }
    summary.update({f"data.{k}": v for k, v in flatten(extra.get("data", {})).items()})
    summary.update({f"seconds.{k}": v for k, v in (extra.get("seconds") or {}).items()})
    config_yaml = yaml.safe_dump(results["config"], sort_keys=False)
    prov = flatten(results.get("provenance", {}))
    return (
        '<div class="cols"><div>'
        + key_values(summary)
        + "</div><div><h3>Provenance</h3>"
        + key_values(prov)
        + "</div></div><details><summary>Resolved config (YAML)</summary><pre>"
        + esc(config_yaml)
        + "</pre></details>"
    )


def _recommendations_section(run: Any, num_users: int, k: int, explain: bool) -> str:
    split = run.split  # the run's own split: test items mark hits
    test_users = np.unique(split.test.user)[:num_users]
    if test_users.size == 0:
        return '<p class="note">No user has test items.</p>'
    ids = [str(run.user_ids[u]) for u in test_users]
    recs = run.recommend(ids, k, exclude="eval")
    shown = np.isin(split.test.user, test_users)
    held_out = set(zip(split.test.user[shown].tolist(), split.test.item[shown].tolist()))
    blocks = [
        '<p class="note">The whole catalogue ranked; the history (fit + valid) masked, as '
        "full-ranking evaluation masks it; "
        '<span class="hit">&#10003;</span> marks an item the user has in the test part.'
        + (
            " Topics: the review topics shared by the user and the item, ranked by the model's "
            "topic affinity."
            if explain
            else ""
        )
        + "</p>"
    ]
    for u, user in zip(test_users, ids):
        rows = []
        for rank, (item, score) in enumerate(recs.for_user(user), 1):
            hit = (int(u), int(run.item_index(item)[0])) in held_out
            row: list[Any] = [rank, item, score, '<span class="hit">&#10003;</span>' if hit else ""]
            if explain:
                expl = run.explain(user, item, top=3)
                row.append(esc(", ".join(link.label for link in expl.links) or "none shared"))
            rows.append(row)
        header = ["rank", "item", "score", "test"] + (["topics"] if explain else [])
        blocks.append(f"<h3>user {esc(user)}</h3>" + table(rows, header, raw=True))
    return "\n".join(blocks)


def write_report(
    run_dir: str | Path, out: str | Path | None = None, *, users: int = 3, k: int = 5
) -> Report:
    """Write the HTML report of the run in ``run_dir``.

    Args:
        run_dir: a run directory (``results.json``; ``model.pt`` for recommendations).
        out: the HTML path (default: ``<run_dir>/report.html``); PNGs go to
            ``<out without .html>_figures/``.
        users: users whose recommendations are shown (the first ones with test items).
        k: recommendations per user.
    """
    from mmseq.config import experiment_from_dict

    run_dir = Path(run_dir)
    results = read_results(run_dir)
    cfg = experiment_from_dict(results["config"], where=str(run_dir / "results.json"))
    extra = results.get("extra", {})
    history = extra.get("history", [])
    out = Path(out) if out else run_dir / "report.html"
    fig_dir = out.with_name(out.stem + "_figures")
    report = Report(out)
    pngs: dict[str, bytes | None] = {
        "loss": figures.loss_curves(history),
        "valid": figures.validation_curves(history, best_epoch=extra.get("best_epoch")),
        "epochs": figures.epoch_curves(history),
        "test_metrics": figures.metric_bars(
            results.get("metrics") or {}, title=f"Test metrics ({results.get('protocol')})"
        ),
    }
    recs_html, run = "", None
    try:
        from mmseq.recommend import load_run

        run = load_run(run_dir)
    except MmseqError as exc:
        report.notes.append(f"recommendations skipped: {exc}")
    has_topics = run is not None and run.has_topics
    topics_html = ""
    if run is not None and has_topics:
        topic_map = topic_map_of(run.graph_parts())
        pngs["topic_map"] = figures.topic_map_figure(topic_map)
        topics_html = _topic_table(topic_map)
    if run is not None:
        recs_html = _recommendations_section(run, users, k, has_topics)

    def fig(name: str, alt: str, missing: str) -> str:
        png = pngs.get(name)
        return image(png, alt) if png else f'<p class="note">{esc(missing)}</p>'

    terms = sorted(
        {t for h in history for t in h.get("loss") or {}}, key=lambda n: (n != "total", n)
    )
    monitored = sorted({m for h in history for m in h.get("valid") or {}}, key=figures.metric_order)
    training = (
        "<h3>Training loss (mean per epoch, every term)</h3>"
        + fig("loss", "training loss per epoch", "No training loss: a closed-form model.")
        + (f'<p class="note">loss terms: {esc(", ".join(terms))}</p>' if terms else "")
        + "<h3>Validation</h3>"
        + fig("valid", "validation metrics per epoch", "No validation in the history.")
        + (
            f'<p class="note">metrics: {esc(", ".join(monitored))}; monitored: '
            f"{esc(cfg.train.monitor)}</p>"
            if monitored
            else ""
        )
        + "<h3>Epoch time and learning rate</h3>"
        + fig("epochs", "seconds per epoch", "No epoch timings in the history.")
    )
    metrics = results.get("metrics") or {}
    best_valid = extra.get("valid") or {}
    names = sorted(set(metrics) | set(best_valid), key=figures.metric_order)
    metric_table = table(
        [(n, best_valid.get(n, ""), metrics.get(n, "")) for n in names],
        ("metric", f"valid (epoch {extra.get('best_epoch')})", "test"),
    )
    sections = [
        ("run", "Run", _run_section(results, cfg)),
        ("training", "Training curves", training),
        (
            "metrics",
            "Test metrics",
            metric_table + fig("test_metrics", "test metrics", "The test part was not scored."),
        ),
    ]
    if has_topics:
        sections.append(("topics", "Topic map", fig("topic_map", "topic map", "") + topics_html))
    if run is not None:
        title = "Recommendations and explanations" if has_topics else "Recommendations"
        sections.append(("recommendations", title, recs_html))
    if report.notes:
        sections.append(("notes", "Notes", "".join(f"<p>{esc(n)}</p>" for n in report.notes)))
    subtitle = (
        f"{results['config']['model']['name']} on {extra.get('data', {}).get('name', '?')}"
        f" · {results.get('protocol')} · seed {results.get('seed')} · "
        f"{results.get('provenance', {}).get('time_utc', '')}"
    )
    text = page(f"mmseq run report: {run_dir.name}", subtitle, sections)
    for name, png in pngs.items():
        if png:
            report.figures[name] = _write_bytes(fig_dir / f"{name}.png", png)
    _write_bytes(out, text.encode("utf-8"))
    return report


__all__ = ["Report", "read_results", "topic_map_of", "write_report"]
