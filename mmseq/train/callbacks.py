"""Trainer callbacks and the early-stopping rule.

Callbacks observe the loop (they may raise to abort it); :class:`EarlyStopping` is the stateful
rule the loop consults, kept separate so its state can be checkpointed and resumed exactly.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from mmseq.errors import ConfigError

log = logging.getLogger(__name__)


class Callback:
    """Hooks called by :func:`mmseq.train.loop.fit`; override the ones you need."""

    def on_fit_start(self, model: Any, start_epoch: int) -> None:
        """Before the first epoch (``start_epoch`` > 1 after resuming from a checkpoint)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """After epoch ``epoch`` (1-based) was trained, validated and checkpointed."""

    def on_fit_end(self, result: Any) -> None:
        """After the best weights were restored; ``result`` is the FitResult."""


class LoggingCallback(Callback):
    """Logs one line per epoch: loss terms, validation metrics and seconds."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        loss = " ".join(f"{k}={v:.4f}" for k, v in logs.get("loss", {}).items())
        valid = " ".join(f"{k}={v:.4f}" for k, v in logs.get("valid", {}).items())
        log.info("epoch %d | %s | %s | %.1fs", epoch, loss, valid or "-", logs.get("seconds", 0.0))


class EarlyStopping:
    """Stop after ``patience`` validations without a strict improvement (higher is better).

    Args:
        patience: evaluations without improvement tolerated (0 = never stop early).
    """

    def __init__(self, patience: int) -> None:
        if patience < 0:
            raise ValueError(f"Expected 'patience' >= 0 (got {patience})")
        self.patience = patience
        self.best = -math.inf
        self.best_epoch = 0
        self.bad_evaluations = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record a validation value; returns True if it is the best so far."""
        if value > self.best:
            self.best, self.best_epoch, self.bad_evaluations = value, epoch, 0
            return True
        self.bad_evaluations += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_evaluations >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch,
                "bad_evaluations": self.bad_evaluations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_evaluations = int(state["bad_evaluations"])


class PruningCallback(Callback):
    """Reports the validation metric to a hyper-parameter search trial after each validated epoch
    and stops the run when the search prunes it (Optuna's ``TrialPruned`` is raised).

    Args:
        trial: an ``optuna.Trial`` (anything with ``report(value, step)`` and ``should_prune()``).
        metric: the validation metric reported (a key of the epoch's ``logs["valid"]``).
    """

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial = trial
        self.metric = metric

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        valid = logs.get("valid")
        if valid is None:  # not a validation epoch (train.eval_every > 1)
            return
        if self.metric not in valid:
            raise ConfigError(f"Expected validation metric '{self.metric}' (got {sorted(valid)})")
        self.trial.report(float(valid[self.metric]), step=epoch)
        if self.trial.should_prune():
            import optuna  # lazy: optuna is the optional [optuna] extra

            raise optuna.TrialPruned(
                f"pruned at epoch {epoch} ({self.metric}={valid[self.metric]})"
            )
