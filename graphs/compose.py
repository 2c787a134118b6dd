"""Run the configured graph builders (and the artifact stages they need) into one GraphBundle.

A config lists the builders to run::

    graphs:
      - builder: rating_graph
        params: {duplicates: max}
      - builder: user_topic_hypergraph
        params: {weights: count}
        name: user_topic_hypergraph_counts   # optional; default = the builder name

``build_all`` runs only the artifact stages (``mmseq.stages.STAGES``) that the listed builders
``require``, each on the fit rows and with its own cache, and hashes each artifact with the
stage's ``content_hash``. Each part is cached as ``<cache_dir>/<name>-<key>.pt`` (+ ``.sha256``),
written atomically through :meth:`GraphBundle.save`. ``key = settings_hash(name, builder,
version, settings, train.content_hash(), {stage: artifact hash} of the builder's requirements)``.
A changed input or setting therefore gives a new key (a rebuild); a file that fails its checksum
or does not load is rebuilt and rewritten (and logged). Old files are left in place.

This module also registers the ``graphs:`` config section: ``load_experiment`` parses it once
into a tuple of :class:`GraphSpec` whose ``params`` are the builders' typed configs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from graphs.base import GRAPH_BUILDERS, GraphBuilder
from mmseq.config import from_dict, register_section, to_dict
from mmseq.data.graph_bundle import GraphBundle, GraphPart
from mmseq.data.schema import Interactions, settings_hash
from mmseq.errors import ArtifactError, ConfigError, DataError
from mmseq.lock import file_lock
from mmseq.stages import STAGES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphSpec:
    """One entry of the config's ``graphs`` list (typed once parsed by :func:`parse_specs`)."""

    builder: str  # a name in GRAPH_BUILDERS
    params: Any = None  # the builder's config_class instance (a mapping of its fields in YAML)
    name: str = ""  # name of the emitted part; "" = the builder's name

    @property
    def requires(self) -> tuple[str, ...]:
        """The artifact stages this part's builder needs."""
        return tuple(GRAPH_BUILDERS.get(self.builder).requires)


def parse_specs(
    specs: Sequence[Mapping[str, Any] | GraphSpec], *, where: str = "graphs"
) -> list[tuple[GraphSpec, type[GraphBuilder], Any]]:
    """Strictly parse specs into ``(spec, builder class, builder config)`` triples.

    The returned spec has its ``name`` resolved and its ``params`` typed (so parsing a parsed
    spec again returns it unchanged).

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
        config: Any = (
            spec.params
            if isinstance(spec.params, cls.config_class)
            else from_dict(
                cls.config_class, spec.params, where=f"{loc}.params (builder '{spec.builder}')"
            )
        )
        name = spec.name or cls.name
        if name in seen:
            raise ConfigError(
                f"{loc}: a part named '{name}' is already built by {where}[{seen[name]}]; "
                "give one of them another 'name'"
            )
        seen[name] = i
        parsed.append((GraphSpec(spec.builder, config, name), cls, config))
    return parsed


def parse_graph_section(raw: Any, where: str) -> tuple[GraphSpec, ...]:
    """The ``graphs:`` section as typed specs (None or absent = no graphs)."""
    if raw is None:
        return ()
    return tuple(spec for spec, _, _ in parse_specs(raw, where=where))


register_section("graphs", parse_graph_section)


def required_stages(builders: Sequence[type[GraphBuilder]]) -> list[str]:
    """The stage names the builders require, sorted, each checked against ``STAGES``."""
    names = sorted({req for cls in builders for req in cls.requires})
    for name in names:
        if name not in STAGES:
            users = sorted(cls.name for cls in builders if name in cls.requires)
            raise ConfigError(
                f"Graph builders {users} require the unknown stage '{name}' "
                f"(stages: {STAGES.names()})"
            )
    return names


def run_stages(
    names: Sequence[str],
    fit: Interactions,
    *,
    configs: Mapping[str, Any] | None = None,
    cache_root: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``{stage: artifact}``: each named stage run on the fit rows (its config by stage name).

    A stage caches under ``<cache_root>/<stage.folder_name()>`` (None = no cache).
    """
    configs = configs or {}
    out: dict[str, Any] = {}
    for name in names:
        cls = STAGES.get(name)
        config = configs.get(name) or cls.config_class()
        cache = None if cache_root is None else Path(cache_root) / cls.folder_name()
        out[name] = cls().run(fit, config, cache_dir=cache, progress=progress)
    return out


def artifact_hashes(artifacts: Mapping[str, Any]) -> dict[str, str]:
    """``{stage: content hash}`` of artifacts by stage name (the stage's own ``content_hash``)."""
    return {name: STAGES.get(name)().content_hash(art) for name, art in sorted(artifacts.items())}


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
    artifacts: Mapping[str, Any],
    provenance: dict[str, Any],
) -> GraphPart:
    given = {name: artifacts[name] for name in cls.requires}
    part = check_part(cls().build(train, given, config), spec, cls)
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
    artifacts: Mapping[str, Any],
    train_hash: str,
    hashes: Mapping[str, str],
    cache_dir: str | Path | None,
) -> tuple[GraphPart, str]:
    """Load one part from the cache or build (and cache) it; returns (part, cache status)."""
    settings = to_dict(config)
    used = {name: hashes[name] for name in sorted(cls.requires)} or None
    key = settings_hash(spec.name, spec.builder, cls.version, settings, train_hash, used)
    provenance = {
        "builder": spec.builder,
        "builder_version": cls.version,
        "settings": settings,
        "train_hash": train_hash,
        "artifact_hashes": used or {},
        "cache_key": key,
    }
    path = None if cache_dir is None else Path(cache_dir) / f"{spec.name}-{key}.pt"
    part, state = (None, "off") if path is None else _load_cached(path, spec.name, key)
    if part is None:
        part = _build_one(spec, cls, config, train, artifacts, provenance)
        if path is not None:
            GraphBundle({spec.name: part}, {"cache_key": key}).save(path)
    logger.info("graph part %s: %s (%s nnz)", spec.name, state, part.nnz)
    return part, state


def build_all(
    specs: Sequence[Mapping[str, Any] | GraphSpec],
    train: Interactions,
    *,
    artifacts: Mapping[str, Any] | None = None,
    stage_configs: Mapping[str, Any] | None = None,
    cache_dir: str | Path | None,
    stage_cache_root: str | Path | None = None,
    progress: bool = False,
) -> GraphBundle:
    """Build (or load from cache) every configured part from the FIT rows ``train``.

    Args:
        specs: ``[{builder: name, params: {...}, name: optional}]`` (see :class:`GraphSpec`).
        train: the fit interactions only (``Split.fit``): nothing held out may reach a graph.
        artifacts: stage artifacts already computed from ``train`` (by stage name); a required
            stage missing here is run (:func:`run_stages`). Stages no builder needs never run.
        stage_configs: stage configs by stage name (default: each stage's config defaults).
        cache_dir: folder of the per-part cache; None = no cache.
        stage_cache_root: folder holding each stage's cache folder; None = no stage cache.
        progress: let stages show progress bars.

    Returns:
        A :class:`GraphBundle`; its ``meta`` has the input hashes, the parsed specs and
        ``cache`` = ``{part: "hit" | "built" | "rebuilt" | "off"}``.
    """
    parsed = parse_specs(specs)
    needed = required_stages([cls for _, cls, _ in parsed])
    given = dict(artifacts or {})
    missing = [name for name in needed if given.get(name) is None]
    given |= run_stages(
        missing, train, configs=stage_configs, cache_root=stage_cache_root, progress=progress
    )
    used = {name: given[name] for name in needed}
    train_hash, hashes = train.content_hash(), artifact_hashes(used)
    parts: dict[str, GraphPart] = {}
    status: dict[str, str] = {}
    # One writer per cache folder at a time: a concurrent run waits here, then hits the cache.
    guard = contextlib.nullcontext() if cache_dir is None else file_lock(cache_dir)
    with guard:
        for spec, cls, config in parsed:
            parts[spec.name], status[spec.name] = _build_or_load(
                spec, cls, config, train, used, train_hash, hashes, cache_dir
            )
    meta = {
        "train_hash": train_hash,
        "artifact_hashes": hashes,
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
