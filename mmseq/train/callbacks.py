"""Trainer callbacks and the early-stopping rule.

Callbacks observe the loop (they may raise to abort it); :class:`EarlyStopping` is the stateful
rule the loop consults, kept separate so its state can be checkpointed and resumed exactly.

Progress: on an interactive terminal the loop shows tqdm bars; elsewhere (CI, ``nohup``, a pipe)
bars would print as fragments, so :class:`EpochLine` prints one clean line per epoch instead.
:class:`TensorBoardLogger` (``train.tensorboard: true``) writes the same numbers as event files.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any, TextIO

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


def is_interactive(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default: stderr, where tqdm writes) is a terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def format_epoch(epoch: int, logs: dict[str, Any], epochs: int | None = None) -> str:
    """``epoch 3/40 | loss total=0.6912 bpr=0.6900 | valid ndcg@10=0.2939 | lr 0.005 | 1.2s``."""
    head = f"epoch {epoch}/{epochs}" if epochs else f"epoch {epoch}"
    parts = [head]
    loss = " ".join(f"{k}={v:.4f}" for k, v in (logs.get("loss") or {}).items())
    parts.append(f"loss {loss}" if loss else "loss -")
    valid = " ".join(f"{k}={v:.4f}" for k, v in (logs.get("valid") or {}).items())
    if valid:
        parts.append(f"valid {valid}")
    if "lr" in logs:
        parts.append(f"lr {logs['lr']:.3g}")
    parts.append(f"{logs.get('seconds', 0.0):.1f}s")
    return " | ".join(parts)


class EpochLine(Callback):
    """One line per epoch on ``stream`` (default: stderr), for non-interactive terminals.

    Args:
        epochs: the epoch cap, shown as ``epoch e/epochs`` (default: None = not shown).
        stream: where lines go (default: ``sys.stderr`` at write time, where tqdm would write).
    """

    def __init__(self, epochs: int | None = None, stream: TextIO | None = None) -> None:
        self.epochs = epochs
        self.stream = stream

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        stream = self.stream or sys.stderr
        stream.write(format_epoch(epoch, logs, self.epochs) + "\n")
        stream.flush()


class TensorBoardLogger(Callback):
    """Loss terms, validation metrics, learning rate and epoch time as TensorBoard scalars.

    Tags: ``loss/<term>``, ``valid/<metric>``, ``lr``, ``epoch_seconds``; the step is the epoch.
    Needs the ``tensorboard`` package (``pip install 'mmseq[tensorboard]'``).

    Args:
        log_dir: where the event files go (``<run_dir>/tensorboard`` in ``run_experiment``).
        lr: the learning rate of each epoch, ``epoch -> lr`` (used when the logs have no ``lr``).
    """

    def __init__(self, log_dir: str | Path, lr: Any = None) -> None:
        from mmseq.optional import require

        require("tensorboard", feature="train.tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.lr = lr
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        for name, value in (logs.get("loss") or {}).items():
            self.writer.add_scalar(f"loss/{name}", float(value), epoch)
        for name, value in (logs.get("valid") or {}).items():
            self.writer.add_scalar(f"valid/{name}", float(value), epoch)
        lr = logs.get("lr", self.lr(epoch) if callable(self.lr) else None)
        if lr is not None:
            self.writer.add_scalar("lr", float(lr), epoch)
        if "seconds" in logs:
            self.writer.add_scalar("epoch_seconds", float(logs["seconds"]), epoch)
        self.writer.flush()

    def on_fit_end(self, result: Any) -> None:
        self.writer.close()


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
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_evaluations": self.bad_evaluations,
        }

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
