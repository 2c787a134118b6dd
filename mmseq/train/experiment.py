"""One experiment end to end: data -> split -> inputs (+ graphs) -> fit -> test -> results JSON.

This is the library behind ``mmseq train`` / ``mmseq evaluate`` and ``scripts/train.py``. It never
builds graphs or topics (``mmseq`` does not import ``graphs``/``topics``): models that need graphs
read the bundle that ``scripts/build_graphs.py`` wrote for the same data, split and settings.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mmseq.config import (
    ExperimentConfig,
    check_experiment,
    check_writable_dir,
    resolve_data_path,
    to_dict,
)
from mmseq.data.graph_bundle import GraphBundle
from mmseq.data.prepare import (
    PreparedData,
    load_graph_parts,
    make_inputs,
    prepare_data,
)
from mmseq.data.stats import pipeline_stages, stages_line, trivial_metric_warnings
from mmseq.device import resolve_device
from mmseq.errors import ConfigError
from mmseq.eval.protocol import DEFAULT_KS, NUM_NEGATIVES, evaluate, make_eval_task
from mmseq.eval.report import pin_code_state, write_results
from mmseq.identity import config_identity
from mmseq.io import atomic_write, file_sha256
from mmseq.models.build import build_model
from mmseq.runs import load_trained_run
from mmseq.seed import seed_everything
from mmseq.train import distributed
from mmseq.train.callbacks import Callback
from mmseq.train.host_memory import reuse_freed_memory
from mmseq.train.loop import fit
from mmseq.train.run_dir import claim_run_dir, read_claim

log = logging.getLogger(__name__)


def checkpoint_key(cfg: ExperimentConfig) -> str:
    """What a run's checkpoint belongs to: the whole config identity, trainer included."""
    return config_identity(cfg)


def run_name(cfg: ExperimentConfig, data_hash: str) -> str:
    """The default run directory name: model, protocol, data content, seed and config identity.

    Two configs that differ anywhere (trainer settings included) get different names, so a
    default run directory is never shared by two configs (:mod:`mmseq.train.run_dir`).
    """
    return (
        f"{cfg.model.name}-{cfg.split.protocol}-{data_hash[:8]}-seed{cfg.seed}"
        f"-{config_identity(cfg)}"
    )


def _data_report(cfg: ExperimentConfig, prepared: PreparedData) -> tuple[dict, list[str]]:
    """(``{"raw_sha256", "stages"}``, trivial-metric warnings) of the prepared data."""
    path = resolve_data_path(cfg)
    stages = pipeline_stages(prepared.data, prepared.split)
    protocol = cfg.split.protocol
    ks = tuple(cfg.ks) or DEFAULT_KS[protocol]
    candidates = NUM_NEGATIVES + 1 if protocol == "loo-sampled99" else None
    warnings = trivial_metric_warnings(prepared.split, ks, candidates)
    for warning in warnings:
        log.warning("trivial metrics: %s", warning)
    raw_sha256 = file_sha256(path) if path is not None else None
    return {"raw_sha256": raw_sha256, "stages": stages}, warnings


def check_before_work(cfg: ExperimentConfig, run_dir: Path | None = None) -> None:
    """Every check that needs no data: the config's domains and cross-section rules, the device,
    and that the output (or ``run_dir``) and artifact directories can be written.

    Raises:
        ConfigError: naming the key (or ``--run-dir``) and the problem.
    """
    check_experiment(cfg)
    device = resolve_device(cfg.train.device)
    if cfg.train.precision == "bf16" and device.type != "cuda":
        raise ConfigError(
            f"train.precision 'bf16' is a CUDA autocast switch; device {device} trains in fp32 "
            "(set train.precision: fp32)"
        )
    if run_dir is not None:
        check_writable_dir(run_dir, "--run-dir")
    else:
        check_writable_dir(cfg.output_dir, "output_dir")
    check_writable_dir(cfg.artifacts_dir, "artifacts_dir")


def run_experiment(
    cfg: ExperimentConfig,
    *,
    graphs: GraphBundle | None = None,
    run_dir: Path | None = None,
    resume: bool = True,
    score_test: bool = True,
    continue_from: Path | None = None,
    announce: Callable[[str], None] | None = None,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Train ``cfg.model`` on the fit part, choose the epoch on valid, score the test part.

    ``score_test=False`` stops after the fit: the test part is never scored (its metrics are
    ``None``, and results.json has empty ``metrics``). Hyper-parameter searches use it, so that
    a choice can only ever see validation numbers. ``callbacks`` go to the trainer (a search's
    :class:`~mmseq.train.callbacks.PruningCallback`, for one).

    ``run_dir`` (default: ``output_dir/<run_name>``) belongs to this config alone; with
    ``resume`` an interrupted run there resumes and a finished one is reused, a run of another
    config there is refused; ``resume=False`` starts fresh; ``continue_from`` continues a
    finished run for more epochs (:func:`mmseq.train.run_dir.claim_run_dir`).

    ``announce`` receives the one-line data summary (rows/users/items kept and dropped at each
    stage, raw -> dedup -> k-core -> split) and any trivial-metric warning, before training.

    Returns the results dict that is also written to ``<run_dir>/results.json``.
    """
    if continue_from is not None and not resume:
        raise ConfigError("--continue-from needs checkpoints; it cannot be used with --no-resume")
    pin_code_state()  # the code this process loaded, whatever the checkout does meanwhile
    check_before_work(cfg, run_dir)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    if cfg.train.reuse_memory:
        reuse_freed_memory()  # no page faults on every large tensor (results unchanged)
    world = distributed.init_from_env(cfg.train.device)  # > 1 under torchrun (DDP)
    seed_everything(cfg.seed)
    prepared = prepare_data(cfg)
    data, split = prepared.data, prepared.split
    data_hash = data.content_hash()
    pipeline, warnings = _data_report(cfg, prepared)
    for line in [stages_line(pipeline["stages"]), *(f"WARNING: {w}" for w in warnings)]:
        log.info("%s", line)
        if announce is not None:
            announce(line)
    run_dir = Path(run_dir or Path(cfg.output_dir) / run_name(cfg, data_hash))
    if distributed.is_main():  # under DDP rank 0 claims the directory, the others read its claim
        claim = claim_run_dir(run_dir, cfg, resume=resume, continue_from=continue_from)
    distributed.barrier()
    if not distributed.is_main():
        claim = read_claim(run_dir)
    model = build_model(cfg, data.num_users, data.num_items)
    parts = load_graph_parts(cfg, split, model.requires_graphs, graphs)
    fit_inputs, test_inputs = make_inputs(cfg, prepared, parts)
    ks = cfg.ks or None
    valid_task = make_eval_task(split, "valid", ks=ks, seed=cfg.split.seed)
    test_task = make_eval_task(split, "test", ks=ks, seed=cfg.split.seed)

    callbacks = list(callbacks)
    if cfg.train.tensorboard and distributed.is_main():
        from mmseq.train.callbacks import TensorBoardLogger
        from mmseq.train.optim import epoch_learning_rate

        lr = functools.partial(epoch_learning_rate, cfg.train)
        callbacks.append(TensorBoardLogger(run_dir / "tensorboard", lr=lr))
    start = time.perf_counter()
    result = fit(
        model,
        train_inputs=fit_inputs,
        valid_inputs=fit_inputs,
        valid_task=valid_task,
        cfg=cfg.train,
        seed=cfg.seed,
        checkpoint_dir=run_dir / "checkpoints" if resume else None,
        checkpoint_key=claim.identity,
        resume_keys=claim.resume_keys,
        callbacks=callbacks,
    )
    fit_seconds = time.perf_counter() - start
    device = next((p.device for p in model.parameters()), resolve_device(cfg.train.device))
    start = time.perf_counter()
    score = distributed.sharded_evaluate if world > 1 else evaluate
    test_metrics = (
        score(model, test_inputs.to(device), test_task, batch_size=cfg.train.eval_batch_size)
        if score_test
        else None
    )
    test_seconds = time.perf_counter() - start

    results = {
        "test": test_metrics,
        "valid": result.best_metrics,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "epochs_run": len(result.history),
        "history": result.history,
        "data": {**data.describe(), "name": cfg.data.path, "split": dict(split.meta)},
        "seconds": {"data": prepared.seconds, "fit": fit_seconds, "test": test_seconds},
        "graphs": sorted(parts),
        "identity": claim.identity,
        "continued_from": claim.continued_from,
        "world_size": world,
    }
    if not distributed.is_main():  # rank 0 writes the weights and results of a DDP run
        return {**results, "run_dir": str(run_dir)}
    run_dir.mkdir(parents=True, exist_ok=True)
    payload = {"state_dict": model.state_dict(), "config": to_dict(cfg)}
    atomic_write(run_dir / "model.pt", lambda p: torch.save(payload, p))
    write_results(
        run_dir / "results.json",
        metrics=test_metrics or {},
        extra={k: v for k, v in results.items() if k != "test"},
        config=cfg,
        seed=cfg.seed,
        data_hash=data_hash,
        protocol=cfg.split.protocol,
        data_pipeline=pipeline,
        warnings=warnings,
    )
    log.info("results written to %s", run_dir / "results.json")
    return {**results, "run_dir": str(run_dir), "data_pipeline": pipeline, "warnings": warnings}


def evaluate_run(run_dir: Path, *, stage: str = "test") -> dict[str, float]:
    """Reload a finished run (config + weights) and score ``stage`` again."""
    run = load_trained_run(run_dir)
    inputs = run.test_inputs if stage == "test" else run.fit_inputs
    cfg = run.cfg
    task = make_eval_task(run.prepared.split, stage, ks=cfg.ks or None, seed=cfg.split.seed)
    return evaluate(run.model, inputs, task, batch_size=cfg.train.eval_batch_size)
