"""Build the registered model an experiment names, its params validated into its config class."""

from __future__ import annotations

from mmseq.config import ExperimentConfig, from_dict
from mmseq.models.base import Recommender
from mmseq.models.registry import MODELS


def build_model(cfg: ExperimentConfig, num_users: int, num_items: int) -> Recommender:
    """The registered model ``cfg.model.name`` with its params validated into its config class."""
    cls = MODELS.get(cfg.model.name)
    model_cfg = from_dict(
        cls.config_class, cfg.model.params, where=f"model.params ({cfg.model.name})"
    )
    return cls(model_cfg, num_users, num_items)
