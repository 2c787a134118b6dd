"""Artifact stages: the plug-in contract for what graph builders consume besides interactions.

A stage turns the FIT (training) rows into one artifact, e.g. review topics or item text
embeddings. It is a :class:`Stage` subclass registered by name in :data:`STAGES`, with a frozen
config dataclass read from the YAML section :attr:`Stage.section` (parsed once, at load). Graph
builders name the stages they need in ``requires``; ``graphs.compose.build_all`` runs only those,
hashes each artifact (:meth:`Stage.content_hash`) into the graph cache keys, and the bundle file
key derives from the required stages' settings (:func:`stage_keys`), so nothing here is specific
to one stage.

Example (a new stage in its own module, named in the YAML's ``plugins:`` or an entry point)::

    @dataclass(frozen=True)
    class ItemPopularityConfig:
        power: float = 1.0  # exponent on the training count

    @STAGES.register("item_popularity")
    class ItemPopularityStage(Stage):
        name = "item_popularity"
        config_class = ItemPopularityConfig

        def run(self, fit, config, *, cache_dir=None, progress=False):
            return np.bincount(fit.item, minlength=fit.num_items) ** config.power
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmseq.config import to_dict
from mmseq.data.schema import Interactions, settings_hash
from mmseq.plugins import load_installed_plugins
from mmseq.registry import Registry

#: Every artifact stage by name (built-in ones register when their package is loaded).
STAGES: Registry[type[Stage]] = Registry(
    "stage", entry_point_group="mmseq.stages", discover=(load_installed_plugins,)
)


def array_hash(*arrays: np.ndarray) -> str:
    """sha256 (16 hex) over dtype, shape and bytes of each array (a content hash)."""
    h = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:16]


class Stage(ABC):
    """Computes one artifact from the fit rows.

    Class attributes:
        name: the registered name; builders list it in ``requires``.
        config_class: frozen dataclass of the stage's settings.
        section: the YAML section holding those settings ("" = ``name``). Two stages may share
            a section (and then a config class), e.g. to reuse one encoder's settings.
        cache_folder: folder under the artifacts directory for the stage's cache ("" = ``name``).
        version: bump when the artifact for the same inputs changes (invalidates bundle keys).

    ``run`` must be deterministic and read ``fit`` (the training rows) only: that keeps every
    artifact, and every graph built from it, free of validation and test information.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    section: ClassVar[str] = ""
    cache_folder: ClassVar[str] = ""
    version: ClassVar[int] = 1

    @classmethod
    def section_name(cls) -> str:
        return cls.section or cls.name

    @classmethod
    def folder_name(cls) -> str:
        return cls.cache_folder or cls.name

    @abstractmethod
    def run(
        self,
        fit: Interactions,
        config: Any,
        *,
        cache_dir: Path | None = None,
        progress: bool = False,
    ) -> Any:
        """The artifact computed from ``fit`` (training rows only), cached under ``cache_dir``."""

    def content_hash(self, artifact: Any) -> str:
        """A hash of the artifact's content (keys the graph parts built from it).

        The default covers a numpy array; stages with richer artifacts override it.
        """
        if isinstance(artifact, np.ndarray):
            return array_hash(artifact)
        raise NotImplementedError(
            f"Stage '{self.name}' returns {type(artifact).__name__}; override content_hash"
        )

    def settings(self, config: Any) -> Any:
        """The settings that change the artifact (they key the bundle file); default: all."""
        return to_dict(config)

    def describe(self, artifact: Any) -> str:
        """A short human-readable summary printed by scripts/build_graphs.py ("" = none)."""
        return ""


def stage_key(name: str, config: Any) -> str:
    """What the artifact of stage ``name`` under ``config`` depends on besides the fit rows."""
    cls = STAGES.get(name)
    return settings_hash(name, cls.version, cls().settings(config))


def stage_keys(names: Iterable[str], configs: Mapping[str, Any]) -> dict[str, str]:
    """``{stage: stage_key}`` for ``names`` (sorted), configs by stage name (default if absent)."""
    out = {}
    for name in sorted(set(names)):
        cls = STAGES.get(name)
        out[name] = stage_key(name, configs.get(name) or cls.config_class())
    return out


def bundle_stage_keys(graph_specs: Iterable[Any], configs: Mapping[str, Any]) -> dict[str, str]:
    """:func:`stage_keys` of the stages the parsed graph specs (``.requires``) need."""
    return stage_keys((name for spec in graph_specs for name in spec.requires), configs)


def stage_configs(cfg: Any, names: Iterable[str]) -> dict[str, Any]:
    """``{stage: typed config}`` read from each stage's section of the experiment config."""
    from mmseq.config import section_value

    return {name: section_value(cfg, STAGES.get(name).section_name()) for name in names}


def experiment_bundle_path(cfg: Any, train_hash: str) -> Path:
    """The GraphBundle file of an experiment config whose fit rows hash to ``train_hash``."""
    from mmseq.config import section_value, to_dict
    from mmseq.data.graph_bundle import bundle_path

    specs = tuple(section_value(cfg, "graphs"))
    needed = sorted({name for spec in specs for name in spec.requires})
    return bundle_path(
        cfg.artifacts_dir,
        train_hash=train_hash,
        graph_specs=to_dict(list(specs)),
        stage_keys=stage_keys(needed, stage_configs(cfg, needed)),
    )
