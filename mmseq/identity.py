"""What a run is: the identity of a resolved experiment config.

A run directory, a checkpoint and a stored result belong to exactly one identity. Every field
that can change a metric is part of it, trainer settings included; the fields that only say where
files live or how progress is shown are not.
"""

from __future__ import annotations

from typing import Any

from mmseq.config import ExperimentConfig, to_dict
from mmseq.data.schema import settings_hash

# (section, key) paths of ExperimentConfig fields that cannot change a result.
NON_RESULT_FIELDS: tuple[tuple[str, ...], ...] = (
    ("output_dir",),
    ("artifacts_dir",),
    ("data_root",),
    ("train", "progress"),
    ("train", "tensorboard"),
    ("train", "reuse_memory"),  # where freed memory goes, not what is computed
)


def identity_fields(cfg: ExperimentConfig) -> dict[str, Any]:
    """The plain (JSON-ready) config that defines a run: ``to_dict(cfg)`` less NON_RESULT_FIELDS."""
    plain = to_dict(cfg)
    for path in NON_RESULT_FIELDS:
        node = plain
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return plain


def config_identity(cfg: ExperimentConfig) -> str:
    """16 hex chars of sha256 over ``identity_fields(cfg)``: equal iff the runs are the same."""
    return settings_hash(identity_fields(cfg))
