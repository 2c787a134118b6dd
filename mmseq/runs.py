"""Reload a finished run: its config, weights, data, split and graph parts, ready to score.

``mmseq evaluate``, ``mmseq recommend`` and :func:`mmseq.load_run` share this loader. It trains
nothing (closed-form models are fitted again on the fit part, as training did).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from mmseq.config import ExperimentConfig, experiment_from_dict
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.inputs import ModelInputs
from mmseq.data.prepare import PreparedData, load_graph_parts, make_inputs, prepare_data
from mmseq.device import resolve_device
from mmseq.errors import ArtifactError
from mmseq.models.base import Recommender
from mmseq.models.build import build_model
from mmseq.seed import seed_everything


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """A finished run reloaded from ``<run_dir>/model.pt``: what scoring it again needs.

    Attributes:
        run_dir: the run directory.
        cfg: the run's resolved config (``train.progress`` off).
        prepared: its data set and split, loaded again from the config.
        model: the model with the saved weights, on ``device``, in eval mode (closed-form models
            fitted again on the fit part, as training did).
        parts: the graph parts the model consumes (empty for models without graphs).
        fit_inputs: inputs of the fit part (training and validation history).
        test_inputs: inputs of fit + valid (the history the test stage is scored with).
        device: where the model and the inputs live.
    """

    run_dir: Path
    cfg: ExperimentConfig
    prepared: PreparedData
    model: Recommender
    parts: dict[str, GraphPart]
    fit_inputs: ModelInputs
    test_inputs: ModelInputs
    device: torch.device


def load_trained_run(run_dir: Path | str, *, device: str | None = None) -> LoadedRun:
    """Reload a finished run (config + weights), its data, split and graph parts.

    Args:
        run_dir: a directory written by ``mmseq train`` (holds ``model.pt``).
        device: overrides the run's ``train.device`` (default: None = the run's setting).

    Raises:
        ArtifactError: if ``model.pt`` is missing or does not fit the data set.
    """
    run_dir = Path(run_dir)
    path = run_dir / "model.pt"
    if not path.is_file():
        raise ArtifactError(
            f"No trained model at {path}; is {run_dir} a run directory written by 'mmseq train'?"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    cfg = experiment_from_dict(state["config"], where=str(path))
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, progress=False))
    seed_everything(cfg.seed)
    prepared = prepare_data(cfg)
    model = build_model(cfg, prepared.data.num_users, prepared.data.num_items)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise ArtifactError(f"{path} does not fit its own config's data set: {exc}") from None
    parts = load_graph_parts(cfg, prepared.split, model.requires_graphs)
    fit_inputs, test_inputs = make_inputs(cfg, prepared, parts)
    dev = resolve_device(device or cfg.train.device)
    model.to(dev)
    fit_inputs, test_inputs = fit_inputs.to(dev), test_inputs.to(dev)
    if not model.trainable:
        model.fit_closed_form(fit_inputs)
    model.eval()
    return LoadedRun(run_dir, cfg, prepared, model, parts, fit_inputs, test_inputs, dev)
