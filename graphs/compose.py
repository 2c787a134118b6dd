"""Run the configured graph builders, with a per-part on-disk cache, into one GraphBundle.

A config lists the builders to run::

    graphs:
      - builder: rating_graph
        params: {duplicates: max}
      - builder: user_topic_hypergraph
        params: {weights: count}
        name: user_topic_hypergraph_counts   # optional; default = the builder name

Each part is cached as ``<cache_dir>/<name>-<key>.pt`` (+ ``.sha256``), written atomically
through :meth:`GraphBundle.save`. ``key = settings_hash(name, builder, version, settings,
train.content_hash(), topics hash)``; the topics hash enters only for builders that require
topics. A changed input or setting therefore gives a new key (a rebuild); a file that fails its
checksum or does not load is rebuilt and rewritten (and logged). Old files are left in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from graphs.base import GRAPH_BUILDERS, KNOWN_REQUIREMENTS, GraphBuilder
from mmseq.config import from_dict, to_dict
from mmseq.data.graph_bundle import GraphBundle, GraphPart
from mmseq.data.schema import Interactions, TopicAssignments, settings_hash
from mmseq.errors import ArtifactError, ConfigError, DataError
from mmseq.lock import file_lock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphSpec:
    """One entry of the config's ``graphs`` list."""

    builder: str  # a name in GRAPH_BUILDERS
    params: dict = field(default_factory=dict)  # fields of the builder's config_class
    name: str = ""  # name of the emitted part; "" = the builder's name


def parse_specs(
    specs: Sequence[Mapping[str, Any] | GraphSpec], *, where: str = "graphs"
) -> list[tuple[GraphSpec, type[GraphBuilder], Any]]:
    """Strictly parse specs into ``(spec, builder class, builder config)`` triples.

    Raises:
        ConfigError: on an unknown key, an unknown builder (with the choices), a bad parameter
            (naming the builder and the nearest valid key) or two parts with one name.
    """
    if isinstance(specs, (str, bytes)) or not isinstance(specs, Sequence):
        raise ConfigError(
            f"{where}: expected a list of {{builder: name, params: {{...}}}} "
            f"(got {type(specs).__name__})"
        )
    parsed: list[tuple[GraphSpec, type[GraphBuilder], Any]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(specs):
        loc = f"{where}[{i}]"
        spec = raw if isinstance(raw, GraphSpec) else from_dict(GraphSpec, raw, where=loc)
        try:
            cls = GRAPH_BUILDERS.get(spec.builder)
        except ValueError as exc:
            raise ConfigError(f"{loc}: {exc}") from None
        config: Any = from_dict(
            cls.config_class, spec.params, where=f"{loc}.params (builder '{spec.builder}')"
        )
        name = spec.name or cls.name
        if name in seen:
            raise ConfigError(
                f"{loc}: a part named '{name}' is already built by {where}[{seen[name]}]; "
                "give one of them another 'name'"
            )
        seen[name] = i
        parsed.append((dataclasses.replace(spec, name=name), cls, config))
    return parsed


def topics_hash(topics: TopicAssignments | None) -> str | None:
    """sha256 (16 hex chars) of the topic embeddings, membership matrices and labels."""
    if topics is None:
        return None
    h = hashlib.sha256()
    arrays: list[np.ndarray] = [np.ascontiguousarray(topics.topic_embeddings)]
    for mat in (topics.user_topic, topics.item_topic):
        csr = sp.csr_matrix(mat)
        csr.sort_indices()
        arrays += [np.asarray(csr.shape), csr.indptr, csr.indices, csr.data]
    for arr in arrays:
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update("\x1f".join(topics.labels).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:16]


def check_part(part: object, spec: GraphSpec, cls: type[GraphBuilder]) -> GraphPart:
    """The contract every emitted part must meet (checked once, here)."""
    who = f"graph builder '{spec.builder}' ({cls.__module__}.{cls.__qualname__})"
    if not isinstance(part, GraphPart):
        raise TypeError(f"{who} returned {type(part).__name__}; expected a GraphPart")
    if part.kind not in ("graph", "hypergraph"):
        raise DataError(f"{who}: expected kind 'graph' or 'hypergraph' (got {part.kind!r})")
    if part.kind == "graph" and part.shape[0] != part.shape[1]:
        raise DataError(f"{who}: a graph must be square (got shape {part.shape})")
    if part.edge_index.dtype != torch.int64 or part.edge_weight.dtype != torch.float32:
        raise DataError(
            f"{who}: expected int64 edge_index and float32 edge_weight "
            f"(got {part.edge_index.dtype}, {part.edge_weight.dtype})"
        )
    if part.nnz and float(part.edge_weight.min()) < 0:
        raise DataError(f"{who}: negative edge weight {float(part.edge_weight.min())}")
    return part


def _build_one(
    spec: GraphSpec,
    cls: type[GraphBuilder],
    config: Any,
    train: Interactions,
    topics: TopicAssignments | None,
    provenance: dict[str, Any],
) -> GraphPart:
    unknown = set(cls.requires) - set(KNOWN_REQUIREMENTS)
    if unknown:
        raise ConfigError(
            f"Graph builder '{spec.builder}' requires unknown artifacts {sorted(unknown)}"
            f" (known: {list(KNOWN_REQUIREMENTS)})"
        )
    if "topics" in cls.requires and topics is None:
        raise ArtifactError(
            f"Graph builder '{spec.builder}' requires topics, but none were given; "
            "run the topic stage on the fit rows first (scripts/build_graphs.py)"
        )
    part = check_part(cls().build(train, topics=topics, config=config), spec, cls)
    meta = dict(part.meta) | provenance | {"shape": list(part.shape), "nnz": part.nnz}
    return dataclasses.replace(part, name=spec.name, meta=meta)


def _load_cached(path: Path, name: str, key: str) -> tuple[GraphPart | None, str]:
    if not path.exists():
        return None, "built"
    try:
        part = GraphBundle.load(path)[name]
        if part.meta.get("cache_key") != key:
            raise ArtifactError(
                f"{path} holds cache key {part.meta.get('cache_key')!r}, not {key!r}"
            )
        return part, "hit"
    except (ArtifactError, DataError, KeyError, TypeError, ValueError) as exc:
        logger.warning("graph cache %s is unusable (%s); rebuilding", path, exc)
        return None, "rebuilt"


def _build_or_load(
    spec: GraphSpec,
    cls: type[GraphBuilder],
    config: Any,
    train: Interactions,
    topics: TopicAssignments | None,
    train_hash: str,
    t_hash: str | None,
    cache_dir: str | Path | None,
    parts: dict[str, GraphPart],
    status: dict[str, str],
) -> None:
    """Load one part from the cache or build (and cache) it; fills ``parts`` and ``status``."""
    settings = to_dict(config)
    uses_topics = "topics" in cls.requires
    key = settings_hash(
        spec.name,
        spec.builder,
        cls.version,
        settings,
        train_hash,
        t_hash if uses_topics else None,
    )
    provenance = {
        "builder": spec.builder,
        "builder_version": cls.version,
        "settings": settings,
        "train_hash": train_hash,
        "topics_hash": t_hash if uses_topics else None,
        "cache_key": key,
    }
    path = None if cache_dir is None else Path(cache_dir) / f"{spec.name}-{key}.pt"
    part, state = (None, "off") if path is None else _load_cached(path, spec.name, key)
    if part is None:
        part = _build_one(spec, cls, config, train, topics, provenance)
        if path is not None:
            GraphBundle({spec.name: part}, {"cache_key": key}).save(path)
    logger.info("graph part %s: %s (%s nnz)", spec.name, state, part.nnz)
    parts[spec.name], status[spec.name] = part, state


def build_all(
    specs: Sequence[Mapping[str, Any] | GraphSpec],
    train: Interactions,
    *,
    topics: TopicAssignments | None,
    cache_dir: str | Path | None,
) -> GraphBundle:
    """Build (or load from cache) every configured part from the FIT rows ``train``.

    Args:
        specs: ``[{builder: name, params: {...}, name: optional}]`` (see :class:`GraphSpec`).
        train: the fit interactions only (``Split.fit``): nothing held out may reach a graph.
        topics: topic assignments computed from ``train`` only, or None when no builder needs them.
        cache_dir: folder of the per-part cache; None = no cache.

    Returns:
        A :class:`GraphBundle`; its ``meta`` has the input hashes, the parsed specs and
        ``cache`` = ``{part: "hit" | "built" | "rebuilt" | "off"}``.
    """
    parsed = parse_specs(specs)
    train_hash, t_hash = train.content_hash(), topics_hash(topics)
    parts: dict[str, GraphPart] = {}
    status: dict[str, str] = {}
    # One writer per cache folder at a time: a concurrent run waits here, then hits the cache.
    guard = contextlib.nullcontext() if cache_dir is None else file_lock(cache_dir)
    with guard:
        for spec, cls, config in parsed:
            _build_or_load(spec, cls, config, train, topics, train_hash, t_hash, cache_dir,
                           parts, status)
    meta = {
        "train_hash": train_hash,
        "topics_hash": t_hash,
        "num_users": train.num_users,
        "num_items": train.num_items,
        "specs": [to_dict(spec) for spec, _, _ in parsed],
        "cache": status,
    }
    return GraphBundle(parts, meta)


def summary_rows(bundle: GraphBundle) -> list[dict[str, Any]]:
    """One row per part for a printed table: name, kind, builder, nodes by type, edges, nnz.

    ``edges`` counts stored (directed) entries of a graph, so an undirected edge counts twice;
    for a hypergraph it is the number of hyperedges and ``nnz`` the number of incidences.
    """
    rows = []
    for name in bundle.names():
        part = bundle[name]
        offsets = sorted(dict(part.node_offsets).items(), key=lambda kv: kv[1])
        bounds = [start for _, start in offsets] + [part.shape[0]]
        nodes = " ".join(f"{t}={bounds[j + 1] - bounds[j]}" for j, (t, _) in enumerate(offsets))
        rows.append(
            {
                "name": name,
                "kind": part.kind,
                "builder": part.meta.get("builder", ""),
                "nodes": nodes or str(part.shape[0]),
                "num_nodes": part.shape[0],
                "edges": part.nnz if part.kind == "graph" else part.shape[1],
                "nnz": part.nnz,
            }
        )
    return rows
