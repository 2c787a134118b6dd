"""Continual learning over time periods: ADER, fine-tuning and joint retraining (methods.md 6).

Modules: :mod:`.config` (frozen configs), :mod:`.periods` (periods by global time),
:mod:`.samples` (next-item samples as table rows; pseudo-user inputs), :mod:`.exemplars` (budget
split and herding), :mod:`.ader` (lambda_t, KD, the period training loop, evaluation),
:mod:`.strategies` (``STRATEGIES`` registry, :func:`run_comparison`), :mod:`.report` (tables).
"""

from mmseq.continual.ader import ader_lambda, distillation_loss, evaluate_samples, train_on_samples
from mmseq.continual.config import (
    ADERConfig,
    ContinualConfig,
    PeriodConfig,
    PeriodTrainConfig,
    load_continual_config,
)
from mmseq.continual.exemplars import herding_select, select_exemplars, split_budget
from mmseq.continual.periods import Periods, assign_periods, seen_items
from mmseq.continual.samples import SequenceTable, predict_logits
from mmseq.continual.strategies import STRATEGIES, ComparisonResult, run_comparison

__all__ = [
    "ADERConfig", "ComparisonResult", "ContinualConfig", "PeriodConfig", "PeriodTrainConfig",
    "Periods", "STRATEGIES", "SequenceTable", "ader_lambda", "assign_periods", "distillation_loss",
    "evaluate_samples", "herding_select", "load_continual_config", "predict_logits",
    "run_comparison", "seen_items", "select_exemplars", "split_budget", "train_on_samples",
]
