"""Topic explanations: which review topics connect a user and an item (``mmseq explain``).

A user and an item are connected through topic g when the user is a member of hyperedge g of the
``"user_topic_hypergraph"`` and the item of hyperedge g of the ``"item_topic_hypergraph"`` (SD-MTMP,
methods.md 1.2). Links are ranked by the product of the two membership weights (the parts'
incidence weights: 1, or training-sentence counts when the graphs were built with
``weights: count``); with a trained SD-MTMP run they can be ranked by the model's affinity
instead (cosine of the topic-aware user/item representation with the topic node's output).

This module reads only the saved :class:`~mmseq.data.graph_bundle.GraphBundle` (and, for labels,
the topic stage's cache file named in the parts' provenance); ``mmseq`` imports neither ``graphs``
nor ``topics``. Label sources, first found wins:

1. ``part.meta["topic_labels"]`` (and ``"topic_keywords"``) if the builder stored them;
2. the topic cache ``<artifacts_dir>/topics/topics/<cache_key>.npz`` named by
   ``part.meta["topics_meta"]["cache_key"]`` (arrays ``labels`` and ``keywords_json``, checksum
   verified);
3. none: topics are shown by number, and the output says so.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mmseq.data.graph_bundle import GraphBundle, GraphPart
from mmseq.errors import ArtifactError, ConfigError, DataError
from mmseq.io import verify_checksum

log = logging.getLogger(__name__)

USER_PART, ITEM_PART = "user_topic_hypergraph", "item_topic_hypergraph"
RankBy = Literal["membership", "model"]


@dataclass(frozen=True)
class TopicLink:
    """One topic shared by the user and the item."""

    topic: int  # topic (hyperedge) index g
    label: str  # human-readable label, or "topic g" when none is available
    keywords: tuple[str, ...]  # top keywords of the topic (may be empty)
    user_weight: float  # the user's incidence weight in hyperedge g (1 or a sentence count)
    item_weight: float  # the item's incidence weight in hyperedge g
    strength: float  # user_weight * item_weight
    model_affinity: float | None = None  # mean of the two cosines (with a trained run), else None


@dataclass(frozen=True)
class Explanation:
    """The topics connecting one user and one item, best first."""

    user: int
    item: int
    user_id: str
    item_id: str
    user_topics: int  # topics the user belongs to
    item_topics: int  # topics the item belongs to
    links: tuple[TopicLink, ...]
    label_source: str  # where labels came from (see the module docstring)
    ranked_by: str
    score: float | None = None  # the model's score(u, i) with a trained run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def memberships(part: GraphPart, node: int) -> tuple[np.ndarray, np.ndarray]:
    """Hyperedges (topics) that member ``node`` belongs to and its incidence weights there.

    Only member rows count (users or items, which come before the topic nodes).

    Returns:
        ``(topics (T,) int64 sorted, weights (T,) float64)``.
    """
    num_members = int(dict(part.node_offsets).get("topic", part.shape[0] - part.shape[1]))
    if not 0 <= node < num_members:
        raise DataError(f"Expected a node in [0, {num_members}) of '{part.name}' (got {node})")
    rows = part.edge_index[0].cpu().numpy()
    hit = rows == node
    topics = part.edge_index[1].cpu().numpy()[hit]
    weights = part.edge_weight.cpu().numpy()[hit].astype(np.float64)
    order = np.argsort(topics, kind="stable")
    return topics[order], weights[order]


def shared_topics(user_part: GraphPart, item_part: GraphPart, user: int, item: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Topics both belong to, with both weights, ordered by ``user_w * item_w`` (desc), then id.

    Returns:
        ``(topics (T,), user_weight (T,), item_weight (T,))``.
    """
    if user_part.shape[1] != item_part.shape[1]:
        raise ArtifactError(
            f"'{user_part.name}' has {user_part.shape[1]} topics but '{item_part.name}' has "
            f"{item_part.shape[1]}; were they built from different topic runs? rebuild both"
        )
    u_topics, u_w = memberships(user_part, user)
    i_topics, i_w = memberships(item_part, item)
    common, ui, ii = np.intersect1d(u_topics, i_topics, assume_unique=True, return_indices=True)
    uw, iw = u_w[ui], i_w[ii]
    order = np.lexsort((common, -(uw * iw)))
    return common[order], uw[order], iw[order]


def topic_labels(part: GraphPart, artifacts_dir: str | Path | None
                 ) -> tuple[list[str], list[tuple[str, ...]], str]:
    """``(labels, keywords, source)`` for the k topics of ``part`` (see the module docstring)."""
    k = int(part.shape[1])
    meta = dict(part.meta)
    if "topic_labels" in meta:
        labels = [str(x) for x in meta["topic_labels"]]
        keywords = [tuple(str(w) for w in kw) for kw in meta.get("topic_keywords", [()] * k)]
        if len(labels) == k and len(keywords) == k:
            return labels, keywords, f"{part.name}.meta"
        log.warning("%s.meta has %d labels for %d topics; ignoring them", part.name, len(labels), k)
    key = (meta.get("topics_meta") or {}).get("cache_key")
    if key and artifacts_dir is not None:
        path = Path(artifacts_dir) / "topics" / "topics" / f"{key}.npz"
        if path.is_file():
            try:
                verify_checksum(path)
                with np.load(path, allow_pickle=False) as z:
                    labels = [str(x) for x in z["labels"]]
                    keywords = [tuple(kw) for kw in json.loads(str(z["keywords_json"]))]
                if len(labels) == k:
                    keywords = keywords if len(keywords) == k else [()] * k
                    return labels, keywords, str(path)
                log.warning("topic cache %s has %d labels for %d topics", path, len(labels), k)
            except (ArtifactError, OSError, KeyError, ValueError) as exc:
                log.warning("topic cache %s is unusable for labels: %s", path, exc)
    return [f"topic {g}" for g in range(k)], [()] * k, "none (topic numbers only)"


def explain_pair(
    bundle: GraphBundle | Mapping[str, GraphPart],
    user: int,
    item: int,
    *,
    user_id: str = "",
    item_id: str = "",
    artifacts_dir: str | Path | None = None,
    affinity: tuple[torch.Tensor, torch.Tensor] | None = None,
    score: float | None = None,
    rank_by: RankBy = "membership",
    top: int = 10,
) -> Explanation:
    """The topics that connect ``user`` and ``item`` through the two topic hypergraphs.

    Args:
        bundle: a bundle (or mapping) holding ``"user_topic_hypergraph"`` and
            ``"item_topic_hypergraph"``.
        user, item: dense indices.
        user_id, item_id: raw ids, for display.
        artifacts_dir: where the topic cache lives (for labels); None = no lookup.
        affinity: ``(user (k,), item (k,))`` cosines from a trained model, or None.
        score: the model's score of the pair, for display.
        rank_by: ``"membership"`` (product of weights) or ``"model"`` (needs ``affinity``).
        top: how many links to keep (default: 10; 0 = all).
    """
    parts = bundle.parts if isinstance(bundle, GraphBundle) else bundle
    missing = [name for name in (USER_PART, ITEM_PART) if name not in parts]
    if missing:
        raise ArtifactError(
            f"Explanations need the graph parts {missing} (bundle has {sorted(parts)}); add "
            "{builder: user_topic_hypergraph} and {builder: item_topic_hypergraph} to the "
            "config's 'graphs' list and run scripts/build_graphs.py --config <config>"
        )
    if rank_by == "model" and affinity is None:
        raise ConfigError("rank_by='model' needs a trained run (--run RUN_DIR)")
    user_part, item_part = parts[USER_PART], parts[ITEM_PART]
    topics, uw, iw = shared_topics(user_part, item_part, user, item)
    labels, keywords, source = topic_labels(user_part, artifacts_dir)
    model = None
    if affinity is not None:
        model = ((affinity[0].cpu().numpy()[topics] + affinity[1].cpu().numpy()[topics]) / 2)
        if rank_by == "model":
            order = np.lexsort((topics, -model))
            topics, uw, iw, model = topics[order], uw[order], iw[order], model[order]
    links = tuple(
        TopicLink(
            topic=int(g), label=labels[g], keywords=tuple(keywords[g]), user_weight=float(a),
            item_weight=float(b), strength=float(a * b),
            model_affinity=None if model is None else float(model[j]),
        )
        for j, (g, a, b) in enumerate(zip(topics, uw, iw))
    )
    return Explanation(
        user=user, item=item, user_id=user_id, item_id=item_id,
        user_topics=len(memberships(user_part, user)[0]),
        item_topics=len(memberships(item_part, item)[0]),
        links=links[:top] if top > 0 else links, label_source=source, ranked_by=rank_by,
        score=score,
    )


def resolve_id(ids: np.ndarray, value: str, kind: str) -> int:
    """Dense index of ``value``: a raw id (exact match) first, else a decimal index in range."""
    matches = np.flatnonzero(np.asarray(ids, dtype=object) == value)
    if matches.size:
        return int(matches[0])
    if value.isdigit() and int(value) < len(ids):
        return int(value)
    close = difflib.get_close_matches(value, [str(x) for x in ids], n=3)
    hint = f"; did you mean {close}?" if close else ""
    raise DataError(
        f"Unknown {kind} '{value}': neither a raw {kind} id of this data set nor an index in "
        f"[0, {len(ids)}){hint}"
    )


def format_explanation(expl: Explanation) -> str:
    """A short human-readable report."""
    head = (f"user {expl.user_id or expl.user} (#{expl.user}, {expl.user_topics} topics) and "
            f"item {expl.item_id or expl.item} (#{expl.item}, {expl.item_topics} topics)")
    lines = [head]
    if expl.score is not None:
        lines.append(f"model score {expl.score:.4f}")
    if not expl.links:
        lines.append("no shared topic: the two hypergraphs do not connect this pair")
    else:
        lines.append(f"shared topics, ranked by {expl.ranked_by} (labels: {expl.label_source}):")
        for r, link in enumerate(expl.links, 1):
            extra = "" if link.model_affinity is None else f"  model {link.model_affinity:+.3f}"
            words = f"  [{', '.join(link.keywords[:6])}]" if link.keywords else ""
            lines.append(f"{r:>3}. {link.label}  user {link.user_weight:g} x item "
                         f"{link.item_weight:g} = {link.strength:g}{extra}{words}")
    return "\n".join(lines)


def explain_from_config(cfg: Any, user: str, item: str, *, run_dir: Path | None = None,
                        rank_by: RankBy = "membership", top: int = 10) -> Explanation:
    """Load the data, split and graph bundle of ``cfg`` (and a trained run) and explain a pair.

    Args:
        cfg: an :class:`~mmseq.config.ExperimentConfig` (the data and graphs to read).
        user, item: raw ids (or dense indices) of the pair.
        run_dir: a finished ``mmseq train`` run of SD-MTMP on the same data (optional).
    """
    from mmseq.config import experiment_from_dict
    from mmseq.data.prepare import graph_bundle_file, make_inputs, prepare_data
    from mmseq.models.build import build_model

    prepared = prepare_data(cfg)
    data = prepared.data
    path = graph_bundle_file(cfg, prepared.split)
    if not path.is_file():
        raise ArtifactError(f"No graph bundle at {path}; run: python scripts/build_graphs.py "
                            "--config <this config>")
    bundle = GraphBundle.load(path)
    u = resolve_id(data.user_ids, user, "user")
    i = resolve_id(data.item_ids, item, "item")
    affinity, score = None, None
    if run_dir is not None:
        state = torch.load(Path(run_dir) / "model.pt", map_location="cpu", weights_only=True)
        where = str(Path(run_dir) / "model.pt")
        run_cfg = experiment_from_dict(state["config"], where=where)
        model = build_model(run_cfg, data.num_users, data.num_items)
        try:
            model.load_state_dict(state["state_dict"])
        except RuntimeError as exc:
            raise ArtifactError(f"Run {run_dir} does not fit this data set: {exc}") from None
        topic_affinity = getattr(model, "topic_affinity", None)
        if not callable(topic_affinity):
            raise ConfigError(f"Model '{run_cfg.model.name}' of run {run_dir} has no topic "
                              "representations; explanations with --run need SD-MTMP")
        parts = {name: bundle[name] for name in model.requires_graphs}
        _, inputs = make_inputs(cfg, prepared, parts)
        model.eval()
        affinity = topic_affinity(u, i, inputs)
        with torch.no_grad():
            score = float(model.score_all(torch.tensor([u]), inputs)[0, i])
    return explain_pair(bundle, u, i, user_id=str(data.user_ids[u]), item_id=str(data.item_ids[i]),
                        artifacts_dir=cfg.artifacts_dir, affinity=affinity, score=score,
                        rank_by=rank_by, top=top)


__all__ = [
    "Explanation",
    "TopicLink",
    "explain_from_config",
    "explain_pair",
    "format_explanation",
    "memberships",
    "resolve_id",
    "shared_topics",
    "topic_labels",
]
