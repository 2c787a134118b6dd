"""GraphBundle: the graph and hypergraph artifacts that graph builders emit and models consume.

A :class:`GraphPart` is plain tensors plus metadata, so models never build graphs or read files.
Node layout is explicit: ``node_offsets`` says where each node type starts in the node index space
(e.g. ``{"user": 0, "item": num_users}`` for a bipartite graph stored as a square adjacency).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from mmseq.errors import ArtifactError, DataError
from mmseq.io import atomic_write, verify_checksum, write_checksum

GraphKind = Literal["graph", "hypergraph"]


@dataclass(frozen=True, eq=False)
class GraphPart:
    """One graph (square adjacency) or hypergraph (node x hyperedge incidence).

    Attributes:
        name: artifact name, e.g. ``"rating_graph"``, ``"user_topic_hypergraph"``.
        kind: ``"graph"``: ``edge_index`` is ``[source; target]`` over ``shape = (N, N)``;
            ``"hypergraph"``: ``edge_index`` is ``[node; hyperedge]`` over
            ``shape = (num_nodes, num_hyperedges)``.
        edge_index: (2, nnz) int64.
        edge_weight: (nnz,) float32 (for graphs, the stored, possibly normalised, weight; for
            hypergraphs, the incidence weight, e.g. a sentence count or 1).
        shape: see ``kind``.
        node_offsets: start of each node type in the node index space.
        hyperedge_weight: (num_hyperedges,) float32 or None (hypergraphs only).
        features: named dense features, e.g. ``{"topic": (k, 384)}`` topic embeddings.
        meta: builder name, settings, input content hash, normalisation, counts.
    """

    name: str
    kind: GraphKind
    edge_index: Tensor
    edge_weight: Tensor
    shape: tuple[int, int]
    node_offsets: Mapping[str, int] = field(default_factory=dict)
    hyperedge_weight: Tensor | None = None
    features: Mapping[str, Tensor] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ei = self.edge_index
        if ei.dim() != 2 or ei.size(0) != 2:
            raise DataError(
                f"{self.name}: expected 'edge_index' of shape (2, nnz) (got {tuple(ei.shape)})"
            )
        if self.edge_weight.shape != (ei.size(1),):
            raise DataError(
                f"{self.name}: expected 'edge_weight' of shape ({ei.size(1)},) "
                f"(got {tuple(self.edge_weight.shape)})"
            )
        if ei.numel():
            if int(ei[0].min()) < 0 or int(ei[0].max()) >= self.shape[0]:
                raise DataError(f"{self.name}: row index out of range [0, {self.shape[0]})")
            if int(ei[1].min()) < 0 or int(ei[1].max()) >= self.shape[1]:
                raise DataError(f"{self.name}: column index out of range [0, {self.shape[1]})")
        if not torch.isfinite(self.edge_weight).all():
            raise DataError(f"{self.name}: 'edge_weight' has non-finite values")

    @property
    def nnz(self) -> int:
        return int(self.edge_index.size(1))

    @property
    def hyperedge_index(self) -> Tensor:
        """Alias of ``edge_index`` for hypergraphs (PyG vocabulary)."""
        return self.edge_index

    def to_sparse_csr(self) -> Tensor:
        """The part as a ``torch.sparse_csr`` matrix of ``shape`` (the fast path on CPU and GPU)."""
        coo = torch.sparse_coo_tensor(self.edge_index, self.edge_weight, self.shape).coalesce()
        return coo.to_sparse_csr()

    def to(self, device: torch.device | str) -> GraphPart:
        return dataclasses.replace(
            self,
            edge_index=self.edge_index.to(device),
            edge_weight=self.edge_weight.to(device),
            hyperedge_weight=None
            if self.hyperedge_weight is None
            else self.hyperedge_weight.to(device),
            features={k: v.to(device) for k, v in self.features.items()},
        )

    def to_state(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {
            "node_offsets": dict(self.node_offsets),
            "features": dict(self.features),
            "meta": dict(self.meta),
        }


@dataclass(frozen=True, eq=False)
class GraphBundle:
    """Named :class:`GraphPart`s plus provenance (data hash, builder settings, versions)."""

    parts: Mapping[str, GraphPart]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> GraphPart:
        if name not in self.parts:
            raise ArtifactError(
                f"Graph '{name}' is not in this bundle (has: {sorted(self.parts)}); "
                "add its builder to the config's 'graphs' list and run scripts/build_graphs.py"
            )
        return self.parts[name]

    def __contains__(self, name: object) -> bool:
        return name in self.parts

    def names(self) -> list[str]:
        return sorted(self.parts)

    def to(self, device: torch.device | str) -> GraphBundle:
        return GraphBundle({k: v.to(device) for k, v in self.parts.items()}, self.meta)

    def save(self, path: str | Path) -> Path:
        """Atomic save with a ``.sha256`` checksum beside the file."""
        state = {"parts": {k: v.to_state() for k, v in self.parts.items()}, "meta": dict(self.meta)}
        out = atomic_write(path, lambda p: torch.save(state, p))
        write_checksum(out)
        return out

    @classmethod
    def load(cls, path: str | Path) -> GraphBundle:
        """Load and verify the checksum; a corrupt file raises :class:`ArtifactError`."""
        verify_checksum(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad artifact
            raise ArtifactError(f"Cannot read graph bundle {path}: {exc}") from None
        parts = {k: GraphPart(**v) for k, v in state["parts"].items()}
        return cls(parts, state["meta"])


# TopicConfig fields that change where and how fast embeddings are computed, never the topics
# (topics/config.py keeps them out of its cache keys too).
TOPIC_EXECUTION_SETTINGS = ("threads", "workers", "engine", "ray_address")


def bundle_path(
    artifacts_dir: str | Path, *, train_hash: str, graph_specs: Any, topic_settings: Any
) -> Path:
    """Where the bundle built from these inputs lives: ``<artifacts>/graphs/bundle-<key>.pt``.

    ``scripts/build_graphs.py`` writes it and training reads it; the key covers the training rows'
    content hash, the builder list with their params, and the topic settings, so any change of
    input or setting points to a different file (and so to a rebuild).
    """
    from mmseq.data.schema import settings_hash

    if isinstance(topic_settings, dict):  # where and how topics run does not change them
        topic_settings = {
            k: v for k, v in topic_settings.items() if k not in TOPIC_EXECUTION_SETTINGS
        }
    key = settings_hash("graph-bundle", train_hash, graph_specs, topic_settings)
    return Path(artifacts_dir) / "graphs" / f"bundle-{key}.pt"
