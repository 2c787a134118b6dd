"""PruningCallback: reports validated epochs to a search trial and stops a pruned run."""

from __future__ import annotations

import pytest

from mmseq.errors import ConfigError
from mmseq.train.callbacks import PruningCallback

optuna = pytest.importorskip("optuna")


class _Trial:
    def __init__(self, prune_at: int) -> None:
        self.prune_at = prune_at
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return self.reports[-1][1] >= self.prune_at


def test_reports_validated_epochs_and_raises_when_pruned() -> None:
    trial = _Trial(prune_at=3)
    cb = PruningCallback(trial, "ndcg@10")
    cb.on_epoch_end(1, {"loss": {"total": 1.0}, "valid": {"ndcg@10": 0.1, "hr@10": 0.3}})
    cb.on_epoch_end(2, {"loss": {"total": 0.9}})  # not validated: nothing reported
    with pytest.raises(optuna.TrialPruned, match="epoch 3"):
        cb.on_epoch_end(3, {"loss": {"total": 0.8}, "valid": {"ndcg@10": 0.05, "hr@10": 0.2}})
    assert trial.reports == [(0.1, 1), (0.05, 3)]


def test_unknown_metric_names_the_metric_and_the_choices() -> None:
    cb = PruningCallback(_Trial(prune_at=9), "hr@3")
    with pytest.raises(ConfigError, match=r"metric 'hr@3' \(got \['ndcg@10'\]\)"):
        cb.on_epoch_end(1, {"valid": {"ndcg@10": 0.1}})
