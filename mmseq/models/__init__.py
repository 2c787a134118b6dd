"""Model registry. Importing this package registers every built-in model in ``MODELS``."""

from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.models.registry import MODELS

__all__ = ["MODELS", "LossOutput", "ModelInputs", "Recommender"]
from mmseq.models import builtin  # noqa: F401,E402
