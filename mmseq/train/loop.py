"""The model-agnostic training loop; it knows only the ``Recommender`` contract (models/base.py).

``fit`` places the model and inputs on the device, trains epoch by epoch on the batches the model
produces, validates every ``eval_every`` epochs through ``mmseq.eval.protocol.evaluate``, stops
early on ``cfg.monitor`` and restores the best weights. With ``checkpoint_dir`` it saves a full
checkpoint after every epoch and, called again, resumes from it with identical results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mmseq.config import TrainConfig
from mmseq.device import resolve_device
from mmseq.errors import ConfigError, TrainingError
from mmseq.models.base import LossOutput, ModelInputs, Recommender
from mmseq.seed import make_generator, seed_everything
from mmseq.train import distributed
from mmseq.train.callbacks import (
    Callback,
    EarlyStopping,
    EpochLine,
    LoggingCallback,
    is_interactive,
)
from mmseq.train.checkpoint import (
    capture_rng_state,
    checkpoint_path,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from mmseq.train.optim import build_optimizer, epoch_learning_rate, set_learning_rate

log = logging.getLogger(__name__)

EvaluateFn = Callable[..., dict[str, float]]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        best_epoch: epoch of the restored weights (0 for closed-form models).
        best_metrics: validation metrics at ``best_epoch``.
        history: one dict per epoch: ``epoch``, ``loss`` (mean of each loss term, ``total``
            included), ``valid`` (metrics, when validated that epoch), ``seconds``.
        stopped_early: True if early stopping ended training before ``cfg.epochs``.
    """

    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False


def _default_evaluate() -> EvaluateFn:
    if distributed.world_size() > 1:  # users split across ranks, metric sums all-reduced
        return distributed.sharded_evaluate
    from mmseq.eval.protocol import evaluate  # lazy: the trainer works without eval installed

    return evaluate


def _validate(evaluate: EvaluateFn, model: Recommender, inputs: ModelInputs, task: Any,
              cfg: TrainConfig) -> dict[str, float]:
    metrics = {k: float(v) for k, v in evaluate(model, inputs, task,
                                                batch_size=cfg.eval_batch_size).items()}
    if cfg.monitor not in metrics:
        raise ConfigError(
            f"train.monitor is '{cfg.monitor}' but validation gives {sorted(metrics)}"
        )
    return metrics


def _snapshot(model: Recommender) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def fit(
    model: Recommender,
    *,
    train_inputs: ModelInputs,
    valid_inputs: ModelInputs | None,
    valid_task: Any,
    cfg: TrainConfig,
    seed: int | None,
    checkpoint_dir: Path | None = None,
    checkpoint_key: str = "",
    resume_keys: Sequence[str] = (),
    callbacks: Sequence[Callback] = (),
    evaluate_fn: EvaluateFn | None = None,
    generator: torch.Generator | None = None,
) -> FitResult:
    """Train ``model`` on ``train_inputs`` and keep the weights best on validation.

    Without a validation task (``valid_task=None``) it trains exactly ``cfg.epochs`` epochs and
    keeps the last weights (a fixed budget, as the continual strategies train each period).

    Args:
        model: any registered recommender (or a wrapper such as the continual period model).
        train_inputs: inputs the model trains on (the fit part of the split).
        valid_inputs: inputs used as history when validating (None without ``valid_task``).
        valid_task: the validation task (``mmseq.eval.protocol.make_eval_task(split, "valid")``),
            or None for a fixed budget without validation.
        cfg: trainer settings (epochs, batch size, lr, patience, monitor, device, ...).
        seed: seeds the global RNGs and the sampling generator; None leaves the global RNGs as
            they are (the caller seeded them) and needs ``generator``.
        checkpoint_dir: if set, a checkpoint is written there after each epoch and an existing
            one is resumed from.
        checkpoint_key: what the checkpoint belongs to (run_experiment: the config identity,
            trainer settings included); an existing checkpoint with another key is refused,
            never loaded into a model it was not trained as.
        resume_keys: further keys whose checkpoint may be resumed from (a run continued for
            more epochs, :mod:`mmseq.train.run_dir`); the loop then stops at once where that
            run's early stopping had already fired, as a fresh run would have.
        callbacks: observers of the loop (a :class:`LoggingCallback` always runs first).
        evaluate_fn: stand-in for ``mmseq.eval.protocol.evaluate`` (same signature).
        generator: the sampling generator (on the training device); default: seeded by ``seed``.

    Raises:
        TrainingError: on a non-finite loss (naming epoch, step and terms); the last checkpoint
            (previous epoch) is left untouched.
    """
    evaluate = evaluate_fn or _default_evaluate()
    # Bars on a terminal; elsewhere (CI, nohup, a pipe) one clean line per epoch instead. Under
    # DDP rank 0 alone logs the epochs (the others would repeat the same lines).
    lines = [EpochLine(cfg.epochs if model.trainable else None)] if cfg.progress else []
    logging_callbacks = [LoggingCallback(), *(lines if not is_interactive() else [])]
    callbacks = [*(logging_callbacks if distributed.is_main() else []), *callbacks]
    if cfg.eval_every < 1:
        raise ConfigError(f"Expected 'train.eval_every' >= 1 (got {cfg.eval_every})")
    validating = valid_task is not None
    if validating and valid_inputs is None:
        raise ConfigError("fit: a validation task needs valid_inputs (got None)")
    if seed is None and generator is None:
        raise ConfigError("fit: without a seed, give the sampling generator")
    device = distributed.rank_device(resolve_device(cfg.device))
    if cfg.precision == "bf16" and device.type != "cuda":
        raise ConfigError(
            f"train.precision 'bf16' is a CUDA autocast switch; device {device} trains in fp32 "
            "(set train.precision: fp32)"
        )
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if seed is not None:
        seed_everything(seed)
    model.to(device)
    train_inputs = train_inputs.to(device)
    valid_inputs = valid_inputs.to(device) if valid_inputs is not None else None

    if not model.trainable:
        if not validating:
            raise ConfigError(f"{type(model).__name__} is fitted in closed form: it needs a "
                              "validation task to report on")
        start = time.perf_counter()
        model.fit_closed_form(train_inputs)
        metrics = _validate(evaluate, model, valid_inputs, valid_task, cfg)
        logs = {"epoch": 0, "loss": {}, "valid": metrics, "seconds": time.perf_counter() - start}
        for cb in callbacks:
            cb.on_epoch_end(0, logs)
        result = FitResult(0, metrics, [logs], False)
        for cb in callbacks:
            cb.on_fit_end(result)
        return result

    optimizer = build_optimizer(model, cfg)
    ddp = distributed.wrap_for_loss(model)  # None unless launched by torchrun with >1 process
    if generator is None:
        generator = make_generator(seed, device)
    early = EarlyStopping(cfg.patience)
    history: list[dict[str, Any]] = []
    best_state = _snapshot(model)
    best_metrics: dict[str, float] = {}
    stopped_early, start_epoch = False, 1

    state = load_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    accepted = {checkpoint_key, *resume_keys}
    if state is not None and state.get("key", "") not in accepted:
        raise ConfigError(
            f"{checkpoint_path(checkpoint_dir)} belongs to another experiment (checkpoint key "
            f"{state.get('key') or 'none'!r}, this run {checkpoint_key or 'none'!r}): give this "
            "run its own directory (mmseq train --run-dir DIR), or start over (--no-resume)"
        )
    if state is not None:
        model.load_state_dict(state["model"])
        try:
            optimizer.load_state_dict(state["optimizer"])
        except ValueError as exc:  # e.g. PeerRec's stacked peer weights (result_version 1)
            raise ConfigError(
                f"{checkpoint_path(checkpoint_dir)}: its optimizer state does not fit "
                f"{type(model).__name__}'s parameters ({exc}); it was written by an older layout "
                "of the model: start over (--no-resume)"
            ) from None
        early.load_state_dict(state["early_stopping"])
        history, best_state = state["history"], state["best_state"]
        best_metrics, stopped_early = state["best_metrics"], state["stopped_early"]
        start_epoch = state["epoch"] + 1
        restore_rng_state(state["rng"], generator)
        if state.get("key", "") != checkpoint_key:  # a continued run: stop where a fresh one did
            stopped_early = stopped_early or early.should_stop
        log.info("resumed from %s at epoch %d", checkpoint_path(checkpoint_dir), state["epoch"])
    for cb in callbacks:
        cb.on_fit_start(model, start_epoch)

    epoch = start_epoch
    while epoch <= cfg.epochs and not stopped_early:
        started = time.perf_counter()
        lr = epoch_learning_rate(cfg, epoch)
        set_learning_rate(optimizer, lr)
        losses = _train_epoch(model, train_inputs, optimizer, generator, cfg, epoch, checkpoint_dir,
                              ddp)
        logs: dict[str, Any] = {"epoch": epoch, "loss": losses}
        if cfg.lr_schedule != "constant":
            logs["lr"] = lr
        if validating and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            metrics = _validate(evaluate, model, valid_inputs, valid_task, cfg)
            logs["valid"] = metrics
            if early.update(metrics[cfg.monitor], epoch):
                best_state, best_metrics = _snapshot(model), metrics
            stopped_early = early.should_stop and epoch < cfg.epochs
        logs["seconds"] = time.perf_counter() - started
        history.append(logs)
        if checkpoint_dir is not None and distributed.is_main():
            save_checkpoint(checkpoint_dir, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "early_stopping": early.state_dict(), "history": history,
                "best_state": best_state, "best_metrics": best_metrics,
                "stopped_early": stopped_early, "rng": capture_rng_state(generator),
                "key": checkpoint_key,
            })
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        epoch += 1

    if not validating:  # a fixed budget: the last weights are the result
        result = FitResult(len(history) and history[-1]["epoch"], {}, history, False)
        for cb in callbacks:
            cb.on_fit_end(result)
        return result
    model.load_state_dict(best_state)
    if not best_metrics:  # no validation happened (epochs == 0): score the initial weights
        best_metrics = _validate(evaluate, model, valid_inputs, valid_task, cfg)
    result = FitResult(early.best_epoch, best_metrics, history, stopped_early)
    for cb in callbacks:
        cb.on_fit_end(result)
    return result


def _train_epoch(model: Recommender, inputs: ModelInputs, optimizer: torch.optim.Optimizer,
                 generator: torch.Generator, cfg: TrainConfig, epoch: int,
                 checkpoint_dir: Path | None, ddp: torch.nn.Module | None = None
                 ) -> dict[str, float]:
    """One pass over ``model.training_batches``; returns the mean of each loss term.

    Under DDP (``ddp`` set) each global batch is cut into this rank's slice, and the loss is
    scaled so that the averaged gradient is the global batch's (mmseq/train/distributed.py).
    """
    model.train()
    sums: dict[str, torch.Tensor] = {}
    steps = 0
    batches = model.training_batches(inputs, cfg.batch_size, generator)
    bf16 = cfg.precision == "bf16"
    show = cfg.progress and is_interactive() and distributed.is_main()
    for step, batch in enumerate(tqdm(batches, desc=f"epoch {epoch}", disable=not show,
                                      leave=False)):
        weight, scale = 1.0, 1.0
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            if ddp is None:
                out = model.loss(batch, inputs)
            else:
                local, n = distributed.shard_batch(batch, distributed.world_size(),
                                                   distributed.rank())
                start, stop = distributed.shard_bounds(n, distributed.world_size(),
                                                       distributed.rank())
                if stop == start:  # fewer rows than ranks: join the all-reduce with zero weight
                    local = batch
                weight = (stop - start) / n
                scale = distributed.loss_scale(stop - start, n)
                total, terms = ddp(local, inputs)
                out = LossOutput(total, terms)
        if not bool(torch.isfinite(out.total)):
            bad = [k for k, v in out.terms.items() if not bool(torch.isfinite(v).all())]
            kept = (f"the last good checkpoint is {checkpoint_path(checkpoint_dir)}"
                    if checkpoint_dir is not None else "no checkpoint directory was given")
            raise TrainingError(
                f"Non-finite loss {float(out.total.detach())} at epoch {epoch}, step {step}; "
                f"non-finite terms: {bad or ['total']} (terms: {sorted(out.terms)}); {kept}"
            )
        optimizer.zero_grad(set_to_none=True)
        (out.total * scale if scale != 1.0 else out.total).backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        for name, value in {"total": out.total, **out.terms}.items():
            value = value.detach().float() * weight
            sums[name] = sums[name] + value if name in sums else value
        steps += 1
    if steps == 0:
        raise TrainingError(
            f"{type(model).__name__}.training_batches produced no batch at epoch {epoch}; "
            "is the training history empty?"
        )
    if ddp is not None:  # rank-weighted sums -> the global batches' mean loss
        names = list(sums)
        reduced = distributed.all_reduce_sum(torch.stack([sums[k] for k in names]))
        sums = dict(zip(names, reduced))
    return {k: float(v) / steps for k, v in sums.items()}
