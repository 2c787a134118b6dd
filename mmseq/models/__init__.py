"""Models. ``MODELS`` imports every module of this package (each registers itself) on first use."""

from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.models.registry import MODELS

__all__ = ["MODELS", "LossOutput", "ModelInputs", "Recommender"]
