"""One experiment end to end: data -> split -> inputs (+ graphs) -> fit -> test -> results JSON.

This is the library behind ``mmseq train`` / ``mmseq evaluate`` and ``scripts/train.py``. It never
builds graphs or topics (``mmseq`` does not import ``graphs``/``topics``): models that need graphs
read the bundle that ``scripts/build_graphs.py`` wrote for the same data, split and settings.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmseq.config import ExperimentConfig, from_dict, resolve_data_path, to_dict
from mmseq.data.graph_bundle import GraphBundle, GraphPart, bundle_path
from mmseq.data.inputs import build_model_inputs
from mmseq.data.load import load_dataset
from mmseq.data.schema import Interactions, settings_hash
from mmseq.data.split import Split, split_interactions
from mmseq.errors import ArtifactError
from mmseq.eval.protocol import evaluate, make_eval_task
from mmseq.eval.report import write_results
from mmseq.io import atomic_write
from mmseq.models import MODELS, Recommender
from mmseq.models.base import ModelInputs
from mmseq.seed import seed_everything
from mmseq.train import distributed
from mmseq.train.callbacks import Callback
from mmseq.train.loop import fit

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PreparedData:
    """The loaded data set and its split (what build_graphs and training share)."""

    data: Interactions
    split: Split
    seconds: float


def prepare_data(cfg: ExperimentConfig) -> PreparedData:
    """Load ``cfg.data`` and split it by ``cfg.split.protocol``."""
    start = time.perf_counter()
    data = load_dataset(cfg.data, resolve_data_path(cfg))
    split = split_interactions(data, cfg.split.protocol)
    return PreparedData(data, split, time.perf_counter() - start)


def graph_bundle_file(cfg: ExperimentConfig, split: Split) -> Path:
    """The bundle path that ``scripts/build_graphs.py`` writes for this config and split."""
    return bundle_path(
        cfg.artifacts_dir,
        train_hash=split.fit.content_hash(),
        graph_specs=list(cfg.graphs),
        topic_settings=dict(cfg.topics),
    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(cfg: ExperimentConfig, num_users: int, num_items: int) -> Recommender:
    """The registered model ``cfg.model.name`` with its params validated into its config class."""
    cls = MODELS.get(cfg.model.name)
    model_cfg = from_dict(
        cls.config_class, cfg.model.params, where=f"model.params ({cfg.model.name})"
    )
    return cls(model_cfg, num_users, num_items)


def _graph_parts(
    cfg: ExperimentConfig, split: Split, model: Recommender, graphs: GraphBundle | None
) -> dict[str, GraphPart]:
    needed = tuple(model.requires_graphs)
    if not needed:
        return {}
    if graphs is None:
        path = graph_bundle_file(cfg, split)
        if not path.is_file():
            raise ArtifactError(
                f"Model '{cfg.model.name}' needs graphs {list(needed)} but no bundle exists at "
                f"{path}; "
                "run: python scripts/build_graphs.py --config <this config>"
            )
        graphs = GraphBundle.load(path)
    return {name: graphs[name] for name in needed}


def _item_attribute_extras(data: Interactions) -> dict[str, torch.Tensor]:
    if data.item_attributes is None:
        return {}
    coo = data.item_attributes.tocoo()
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))  # (2, nnz)
    values = torch.ones(coo.nnz, dtype=torch.float32)
    attrs = torch.sparse_coo_tensor(index, values, coo.shape, check_invariants=False)
    return {"item_attributes": attrs.coalesce()}


def make_inputs(
    cfg: ExperimentConfig, prepared: PreparedData, parts: dict[str, GraphPart]
) -> tuple[ModelInputs, ModelInputs]:
    """(fit inputs for training and validation, fit+valid inputs for the test stage)."""
    extras = _item_attribute_extras(prepared.data)
    max_len = cfg.train.max_len
    fit_inputs = build_model_inputs(
        prepared.split.fit, max_len=max_len, graphs=parts, extras=extras
    )
    test_inputs = build_model_inputs(
        prepared.split.history("test"), max_len=max_len, graphs=parts, extras=extras
    )
    return fit_inputs, test_inputs


def checkpoint_key(cfg: ExperimentConfig) -> str:
    """What a run's checkpoint belongs to: everything but the trainer settings (so that a resumed
    run may, say, get more epochs), hashed."""
    plain = to_dict(cfg)
    plain.pop("train", None)
    return settings_hash(plain)


def run_name(cfg: ExperimentConfig, data_hash: str) -> str:
    return f"{cfg.model.name}-{cfg.split.protocol}-{data_hash[:8]}-seed{cfg.seed}"


def run_experiment(
    cfg: ExperimentConfig,
    *,
    graphs: GraphBundle | None = None,
    run_dir: Path | None = None,
    resume: bool = True,
    score_test: bool = True,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Train ``cfg.model`` on the fit part, choose the epoch on valid, score the test part.

    ``score_test=False`` stops after the fit: the test part is never scored (its metrics are
    ``None``, and results.json has empty ``metrics``). Hyper-parameter searches use it, so that
    a choice can only ever see validation numbers. ``callbacks`` go to the trainer (a search's
    :class:`~mmseq.train.callbacks.PruningCallback`, for one).

    Returns the results dict that is also written to ``<run_dir>/results.json``.
    """
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    world = distributed.init_from_env(cfg.train.device)  # > 1 under torchrun (DDP)
    seed_everything(cfg.seed)
    prepared = prepare_data(cfg)
    data, split = prepared.data, prepared.split
    data_hash = data.content_hash()
    run_dir = Path(run_dir or Path(cfg.output_dir) / run_name(cfg, data_hash))
    model = build_model(cfg, data.num_users, data.num_items)
    parts = _graph_parts(cfg, split, model, graphs)
    fit_inputs, test_inputs = make_inputs(cfg, prepared, parts)
    ks = cfg.ks or None
    valid_task = make_eval_task(split, "valid", ks=ks, seed=cfg.split.seed)
    test_task = make_eval_task(split, "test", ks=ks, seed=cfg.split.seed)

    start = time.perf_counter()
    result = fit(
        model,
        train_inputs=fit_inputs,
        valid_inputs=fit_inputs,
        valid_task=valid_task,
        cfg=cfg.train,
        seed=cfg.seed,
        checkpoint_dir=run_dir / "checkpoints" if resume else None,
        checkpoint_key=checkpoint_key(cfg),
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
    )
    log.info("results written to %s", run_dir / "results.json")
    return {**results, "run_dir": str(run_dir)}


def evaluate_run(run_dir: Path, *, stage: str = "test") -> dict[str, float]:
    """Reload a finished run (config + weights) and score ``stage`` again."""
    from mmseq.config import ExperimentConfig as _EC

    state = torch.load(Path(run_dir) / "model.pt", map_location="cpu", weights_only=True)
    cfg = from_dict(_EC, state["config"], where=str(Path(run_dir) / "model.pt"))
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, progress=False))
    seed_everything(cfg.seed)
    prepared = prepare_data(cfg)
    model = build_model(cfg, prepared.data.num_users, prepared.data.num_items)
    model.load_state_dict(state["state_dict"])
    parts = _graph_parts(cfg, prepared.split, model, None)
    fit_inputs, test_inputs = make_inputs(cfg, prepared, parts)
    inputs = test_inputs if stage == "test" else fit_inputs
    device = resolve_device(cfg.train.device)
    model.to(device)
    if not model.trainable:
        model.fit_closed_form(fit_inputs.to(device))
    task = make_eval_task(prepared.split, stage, ks=cfg.ks or None, seed=cfg.split.seed)
    return evaluate(model, inputs.to(device), task, batch_size=cfg.train.eval_batch_size)
