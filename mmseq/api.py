"""The Python API: train an experiment and use a trained run in a few lines.

    >>> import mmseq
    >>> results = mmseq.run_experiment(  # doctest: +SKIP
    ...     "configs/experiments/demo.yaml", **{"model.name": "bprmf", "train.epochs": 3})
    >>> run = mmseq.load_run(results["run_dir"])  # doctest: +SKIP
    >>> run.recommend("u00000", k=5).for_user("u00000")  # doctest: +SKIP

Both are thin: configs go through :func:`mmseq.config.load_experiment` /
:func:`mmseq.config.apply_overrides`, training through
:func:`mmseq.train.experiment.run_experiment`, reloading through :func:`mmseq.recommend.load_run`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmseq.config import (
    ExperimentConfig,
    apply_overrides,
    experiment_from_dict,
    load_experiment,
    to_dict,
)
from mmseq.errors import ConfigError
from mmseq.recommend import TrainedRun, load_run


def override_strings(overrides: Mapping[str, Any]) -> list[str]:
    """``{"train.epochs": 3, "model": {"params": {"beta": 0.1}}}`` -> ``key.path=value`` strings.

    Nested mappings are flattened into dotted keys (so a nested override changes only the keys it
    names; an empty mapping sets its key to ``{}``); values are written as JSON, which
    :func:`apply_overrides` parses back as YAML.
    """
    out: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key, sub in value.items():
                walk(f"{prefix}.{key}", sub)
            return
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, Path):
            value = str(value)
        try:
            out.append(f"{prefix}={json.dumps(value)}")
        except TypeError:
            raise ConfigError(
                f"Override '{prefix}': expected a plain value (got {type(value).__name__})"
            ) from None

    for key, value in overrides.items():
        walk(str(key), value)
    return out


def resolve_config(config: ExperimentConfig | str | Path, **overrides: Any) -> ExperimentConfig:
    """An ExperimentConfig from a config object or a YAML path, with overrides applied."""
    strings = override_strings(overrides)
    if isinstance(config, ExperimentConfig):
        if not strings:
            return config
        mapping = apply_overrides(to_dict(config), strings)
        return experiment_from_dict(mapping, where="run_experiment overrides")
    if isinstance(config, (str, Path)):
        return load_experiment(config, strings)
    raise ConfigError(f"Expected an ExperimentConfig or a YAML path (got {type(config).__name__})")


def run_experiment(
    config: ExperimentConfig | str | Path,
    *,
    run_dir: str | Path | None = None,
    resume: bool = True,
    graph_bundle: Any = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Train and evaluate one experiment; returns its results (also in ``results.json``).

    Args:
        config: an :class:`~mmseq.config.ExperimentConfig` or an experiment YAML path.
        run_dir: where results and weights go (default: ``output_dir/<run name>``).
        resume: resume from the run's checkpoint when there is one (default: True).
        graph_bundle: a :class:`~mmseq.data.graph_bundle.GraphBundle` to use instead of the one
            ``scripts/build_graphs.py`` wrote (default: None = read that one when the model
            needs graphs).
        **overrides: config values by dotted key (``**{"train.epochs": 3}``) or nested
            (``train={"epochs": 3}``).

    Returns:
        The results dict: ``test``, ``valid``, ``best_epoch``, ``history``, ..., ``run_dir``.
    """
    from mmseq.train.experiment import run_experiment as _run

    cfg = resolve_config(config, **overrides)
    return _run(cfg, graphs=graph_bundle, run_dir=Path(run_dir) if run_dir else None, resume=resume)


__all__ = ["TrainedRun", "load_run", "override_strings", "resolve_config", "run_experiment"]
