"""Continual learning over time periods: ADER, fine-tuning and joint retraining (methods.md 6).

Modules: :mod:`.config` (frozen configs), :mod:`.periods` (periods by global time),
:mod:`.samples` (next-item samples as table rows; pseudo-user inputs), :mod:`.exemplars` (budget
split and herding), :mod:`.ader` (lambda_t, period training through the shared trainer, evaluation),
:mod:`.distillation` (the KD term), :mod:`.period_model` (a period as a Recommender),
:mod:`.strategies` (``STRATEGIES`` registry, :func:`run_comparison`), :mod:`.report` (tables).
"""

from mmseq.train.continual.ader import ader_lambda, evaluate_samples, train_on_samples
from mmseq.train.continual.config import (
    ADERConfig,
    ContinualConfig,
    PeriodConfig,
    PeriodTrainConfig,
    load_continual_config,
)
from mmseq.train.continual.distillation import Distillation, distillation_loss
from mmseq.train.continual.exemplars import herding_select, select_exemplars, split_budget
from mmseq.train.continual.period_model import PeriodModel
from mmseq.train.continual.periods import Periods, assign_periods, seen_items
from mmseq.train.continual.samples import SequenceTable, predict_logits
from mmseq.train.continual.strategies import STRATEGIES, ComparisonResult, run_comparison

__all__ = [
    "ADERConfig", "ComparisonResult", "ContinualConfig", "Distillation", "PeriodConfig",
    "PeriodModel", "PeriodTrainConfig",
    "Periods", "STRATEGIES", "SequenceTable", "ader_lambda", "assign_periods", "distillation_loss",
    "evaluate_samples", "herding_select", "load_continual_config", "predict_logits",
    "run_comparison", "seen_items", "select_exemplars", "split_budget", "train_on_samples",
]
