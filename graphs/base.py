"""The graph-builder contract and its registry.

A modality is one :class:`GraphBuilder` subclass registered by name in :data:`GRAPH_BUILDERS`,
with a frozen config dataclass beside it. ``graphs.compose.build_all`` parses each config entry
``{builder: name, params: {...}}`` into that dataclass (strictly), runs the artifact stages the
builder ``requires`` (:mod:`mmseq.stages`), runs the builder on the FIT (training) interactions
only, checks the emitted :class:`~mmseq.data.graph_bundle.GraphPart` and caches it.

Built-in builders are found by importing every module of this package (``GRAPH_BUILDERS``
discovers them on first lookup); third-party ones by the entry point group
``mmseq.graph_builders`` or a ``plugins:`` module list in the experiment YAML.

Example (a new modality in its own file, plus a YAML entry ``- builder: my_graph``)::

    @dataclass(frozen=True)
    class MyGraphConfig:
        scale: float = 1.0  # what it means, with units

    @GRAPH_BUILDERS.register("my_graph")
    class MyGraphBuilder(GraphBuilder):
        name = "my_graph"
        config_class = MyGraphConfig

        def build(self, train, artifacts, config):  # artifacts: {stage name: artifact}
            ...
            return GraphPart(name=self.name, kind="graph", ...)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch

from mmseq.config import to_dict
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions
from mmseq.errors import ArtifactError, DataError
from mmseq.registry import Registry

#: Every graph builder by name: this package's modules, then the ``mmseq.graph_builders`` entry
#: points, imported on first lookup (plus any module a config names under ``plugins:``).
GRAPH_BUILDERS: Registry[type[GraphBuilder]] = Registry(
    "graph builder", packages=("graphs",), entry_point_group="mmseq.graph_builders"
)

#: No artifacts: what ``build`` receives when a builder requires none.
NO_ARTIFACTS: Mapping[str, Any] = MappingProxyType({})


class GraphBuilder(ABC):
    """Turns training interactions (and declared artifacts) into one graph or hypergraph.

    Class attributes:
        name: the registered name; also the default name of the emitted part.
        config_class: frozen dataclass of the builder's settings (``params`` in the config).
        requires: names of the artifact stages (``mmseq.stages.STAGES``) whose artifacts
            ``build`` reads, e.g. ``("topics",)``.
        directed: True when a kind-"graph" part may be directed (``A != A^T``, e.g. a kNN
            graph); the conformance suite then skips its symmetry check.
        features_only: True when the part is edgeless and carries node features only (e.g.
            ``item_text_embedding``: ``features["text"]``); the conformance suite then checks
            its features instead of its edges.
        version: bump when the output for the same inputs changes (invalidates caches).

    ``build`` must be deterministic, use ``train`` (the fit rows) and the declared artifacts only,
    and return a part whose ``name`` is ``self.name``; ``build_all`` renames it when the config
    asks for another name.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    requires: ClassVar[tuple[str, ...]] = ()
    directed: ClassVar[bool] = False
    features_only: ClassVar[bool] = False
    version: ClassVar[int] = 1

    @abstractmethod
    def build(
        self, train: Interactions, artifacts: Mapping[str, Any] = NO_ARTIFACTS, config: Any = None
    ) -> GraphPart:
        """Build the part from ``train`` (fit rows only) and the ``requires`` artifacts.

        Args:
            train: the fit interactions.
            artifacts: ``{stage name: artifact}``, holding at least every name in ``requires``.
            config: an instance of ``config_class`` (None = its defaults).
        """

    def artifact(self, artifacts: Mapping[str, Any], stage: str) -> Any:
        """``artifacts[stage]``, or an ArtifactError saying which stage to run."""
        if artifacts.get(stage) is None:
            raise ArtifactError(
                f"Graph builder '{self.name}' needs the '{stage}' artifact (has: "
                f"{sorted(artifacts)}); build_all runs the stage on the fit rows "
                "(scripts/build_graphs.py)"
            )
        return artifacts[stage]

    def base_meta(self, train: Interactions, config: Any) -> dict[str, Any]:
        """Provenance every part carries: builder, its version and settings, input hash."""
        return {
            "builder": self.name,
            "builder_version": self.version,
            "settings": to_dict(config),
            "train_hash": train.content_hash(),
            "train_rows": len(train),
        }


def require_interactions(train: Interactions, builder: str) -> None:
    """Raise :class:`DataError` when ``train`` has no rows (an empty graph helps nobody)."""
    if len(train) == 0:
        raise DataError(
            f"Graph builder '{builder}': the training table has no interactions "
            f"({train.num_users} users, {train.num_items} items); nothing to build a graph from"
        )


def coalesce(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted (row-major), duplicate-free ``edge_index`` (int64) and ``edge_weight`` (float32).

    Duplicates are added; callers that want another rule merge them first. Sorting makes the
    output independent of row order in the input table (determinism).
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    key = rows * shape[1] + cols
    uniq, inverse = np.unique(key, return_inverse=True)
    summed = np.zeros(len(uniq), dtype=np.float64)
    np.add.at(summed, inverse, np.asarray(values, dtype=np.float64))
    edge_index = torch.from_numpy(np.stack([uniq // shape[1], uniq % shape[1]]).astype(np.int64))
    return edge_index, torch.from_numpy(summed.astype(np.float32))
