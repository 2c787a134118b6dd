"""Hyper-parameter studies on VALIDATION only, run by Optuna (the optional ``[optuna]`` extra).

A study file names a base experiment config, fixed overrides, the search space over any config
fields (``key.path`` as in ``--set``), the sampler and the pruner:

    config: configs/experiments/sdmtmp_musical_instruments.yaml
    metric: ndcg@10              # validation metric maximised (and reported for pruning)
    seed: 0                      # the runs' seed; TPE's sampler seed is seed * 1000 + worker
    set: [train.threads=1]       # fixed overrides, applied before the sampled ones
    sampler: grid                # grid (every combination of the lists) | tpe
    trials: 0                    # trials per worker; 0 = the grid's size (grid) or 20 (tpe)
    pruner: median               # median | none: stop a run whose per-epoch validation metric is
    startup_trials: 4            #   below the median of earlier runs at that epoch, after this
    warmup_epochs: 2             #   many finished trials and from this epoch on
    space:                       # (``grid:`` is accepted as the old name of this section)
      model.params.embedding_dim: [64, 128]                 # a list: categorical
      train.lr: {low: 0.0001, high: 0.01, log: true}        # floats: uniform (log) range
      model.params.num_layers: {low: 1, high: 3}            # ints: integer range (step 1)

Every trial goes through ``run_experiment(..., score_test=False)`` with a
:class:`~mmseq.train.callbacks.PruningCallback`: the same path as ``mmseq train``, minus the test
stage. The study lives in an RDB storage (``sqlite:///<out>/study.db`` unless a URL is given), so
any number of workers on any number of machines share it; a worker's run lands in
``<out>/<config identity>/``, locked while it trains, and a finished run is read back instead of
being trained again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mmseq.config import load_experiment, load_yaml
from mmseq.errors import ConfigError
from mmseq.identity import config_identity
from mmseq.lock import file_lock
from mmseq.optional import require
from mmseq.train.callbacks import PruningCallback
from mmseq.train.experiment import run_experiment

log = logging.getLogger(__name__)

STUDY_KEYS = (
    "config",
    "metric",
    "seed",
    "set",
    "sampler",
    "trials",
    "pruner",
    "startup_trials",
    "warmup_epochs",
    "space",
    "grid",
)
DEFAULT_TPE_TRIALS = 20


@dataclass(frozen=True)
class Dimension:
    """One searched config field: a list of choices, or a float/int range."""

    key: str  # config path, e.g. "model.params.embedding_dim"
    choices: tuple[Any, ...] = ()  # categorical values (empty for a range)
    low: float = 0.0  # range bounds, inclusive
    high: float = 0.0
    log: bool = False  # sample the range on a log scale
    integer: bool = False  # an int range (both bounds ints)

    def suggest(self, trial: Any) -> Any:
        """The value ``trial`` (an ``optuna.Trial``) draws for this field."""
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class StudySpec:
    """A validation study: base config, fixed overrides, search space, sampler and pruner."""

    name: str
    config: Path
    metric: str = "ndcg@10"
    seed: int = 0
    fixed: tuple[str, ...] = ()
    space: tuple[Dimension, ...] = ()
    sampler: str = "grid"  # "grid" | "tpe"
    trials: int = 0  # trials per worker; 0 = grid size (grid) or DEFAULT_TPE_TRIALS (tpe)
    pruner: str = "median"  # "median" | "none"
    startup_trials: int = 4  # finished trials before the median pruner acts
    warmup_epochs: int = 2  # epochs before the median pruner acts within a trial

    def grid_size(self) -> int:
        size = 1
        for dim in self.space:
            size *= len(dim.choices)
        return size

    def trials_per_worker(self) -> int:
        if self.trials:
            return self.trials
        return self.grid_size() if self.sampler == "grid" else DEFAULT_TPE_TRIALS


def _dimension(key: str, value: Any, where: str) -> Dimension:
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"{where}: space.{key} must be a non-empty list, got []")
        return Dimension(key, choices=tuple(value))
    if (
        isinstance(value, Mapping)
        and set(value) <= {"low", "high", "log"}
        and {"low", "high"} <= set(value)
    ):
        low, high = value["low"], value["high"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise ConfigError(f"{where}: space.{key} bounds must be numbers (got {dict(value)})")
        if not low < high:
            raise ConfigError(f"{where}: space.{key} needs low < high (got {low}, {high})")
        integer = isinstance(low, int) and isinstance(high, int)
        return Dimension(
            key, low=low, high=high, log=bool(value.get("log", False)), integer=integer
        )
    raise ConfigError(
        f"{where}: space.{key} must be a non-empty list or {{low, high[, log]}}, got {value!r}"
    )


def load_study_spec(path: Path, root: Path) -> StudySpec:
    """Read and check a study file; a relative ``config`` resolves against ``root``."""
    raw = load_yaml(path)
    where = str(path)
    unknown = set(raw) - set(STUDY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected {list(STUDY_KEYS)}")
    if "space" in raw and "grid" in raw:
        raise ConfigError(f"{where}: give 'space' or its old name 'grid', not both")
    space = raw.get("space", raw.get("grid"))
    if "config" not in raw or space is None:
        raise ConfigError(f"{where}: needs 'config' and 'space'")
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(
            f"{where}: 'space' ('grid') must map config keys to lists of values or ranges"
        )
    dims = tuple(_dimension(str(k), v, where) for k, v in space.items())
    sampler = str(raw.get("sampler", "grid"))
    if sampler not in ("grid", "tpe"):
        raise ConfigError(f"{where}: sampler must be 'grid' or 'tpe' (got {sampler!r})")
    if sampler == "grid" and any(not d.choices for d in dims):
        ranged = [d.key for d in dims if not d.choices]
        raise ConfigError(
            f"{where}: the grid sampler needs lists of values; {ranged} are ranges "
            "(use sampler: tpe)"
        )
    pruner = str(raw.get("pruner", "median"))
    if pruner not in ("median", "none"):
        raise ConfigError(f"{where}: pruner must be 'median' or 'none' (got {pruner!r})")
    config = Path(raw["config"])
    return StudySpec(
        name=path.stem,
        config=config if config.is_absolute() else root / config,
        metric=str(raw.get("metric", "ndcg@10")),
        seed=int(raw.get("seed", 0)),
        fixed=tuple(str(s) for s in raw.get("set", [])),
        space=dims,
        sampler=sampler,
        trials=int(raw.get("trials", 0)),
        pruner=pruner,
        startup_trials=int(raw.get("startup_trials", 4)),
        warmup_epochs=int(raw.get("warmup_epochs", 2)),
    )


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _sampler(spec: StudySpec, worker: int) -> Any:
    import optuna

    if spec.sampler == "grid":
        # One seed for every worker: GridSampler's trial -> grid point map is a seeded shuffle,
        # and workers that shuffled differently would read each other's grid ids as other points.
        space = {d.key: list(d.choices) for d in spec.space}
        return optuna.samplers.GridSampler(space, seed=spec.seed)
    # Distinct per worker, so that TPE workers do not propose the same points in lockstep.
    return optuna.samplers.TPESampler(seed=spec.seed * 1000 + worker)


def _pruner(spec: StudySpec) -> Any:
    import optuna

    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_epochs
    )


def default_storage(out: Path) -> str:
    """SQLite file in the study's folder: shared by every worker on this file system."""
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_study(spec: StudySpec, storage: str, *, worker: int = 0) -> Any:
    """Create or join the study ``spec.name`` in ``storage`` (an RDB URL)."""
    require("optuna", feature="Hyper-parameter studies (mmseq.train.tune)")
    import optuna

    rdb: Any = storage  # a SQLite file waits up to 120 s for another worker's write lock
    with contextlib.ExitStack() as stack:
        if storage.startswith("sqlite:///"):
            # Two workers creating one SQLite file's tables at once collide (alembic's version
            # row): the first creates them, the others wait and join.
            stack.enter_context(file_lock(Path(storage.removeprefix("sqlite:///")).parent))
            rdb = optuna.storages.RDBStorage(
                storage, engine_kwargs={"connect_args": {"timeout": 120}}
            )
        return optuna.create_study(
            study_name=spec.name,
            storage=rdb,
            direction="maximize",
            load_if_exists=True,
            sampler=_sampler(spec, worker),
            pruner=_pruner(spec),
        )


def _grid_left(study: Any, spec: StudySpec) -> int:
    """Grid points no trial has taken yet (finished, pruned or running)."""
    import optuna

    taken = {
        tuple(_yaml_value(t.params.get(d.key)) for d in spec.space)
        for t in study.get_trials(deepcopy=False)
        if t.state != optuna.trial.TrialState.FAIL and len(t.params) == len(spec.space)
    }
    return spec.grid_size() - len(taken)


def _trial_overrides(trial: Any, spec: StudySpec) -> list[str]:
    return [f"{d.key}={_yaml_value(d.suggest(trial))}" for d in spec.space]


def run_trial(trial: Any, spec: StudySpec, out: Path, *, worker: int = 0) -> float:
    """Train (or read back) the run for ``trial``'s values; returns its validation metric."""
    combo = _trial_overrides(trial, spec)
    cfg = load_experiment(spec.config, [*spec.fixed, f"seed={spec.seed}", *combo])
    run_dir = out / config_identity(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with file_lock(run_dir):  # another worker on the same values waits, then reads back
        done = run_dir / "results.json"
        read_back = done.is_file()
        if read_back:
            extra = json.loads(done.read_text())["extra"]
        else:
            extra = run_experiment(
                cfg,
                run_dir=run_dir,
                resume=True,
                score_test=False,
                callbacks=[PruningCallback(trial, spec.metric)],
            )
    valid = extra["valid"]
    if spec.metric not in valid:
        raise ConfigError(
            f"study {spec.name}: metric {spec.metric!r} is not among the "
            f"validation metrics {sorted(valid)}"
        )
    trial.set_user_attr("set", combo)
    trial.set_user_attr("valid", valid)
    trial.set_user_attr("best_epoch", extra["best_epoch"])
    trial.set_user_attr("epochs_run", extra["epochs_run"])
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
    trial.set_user_attr("worker", worker)
    trial.set_user_attr("read_back", read_back)
    return float(valid[spec.metric])


def run_study(
    spec: StudySpec, out: Path, *, storage: str | None = None, worker: int = 0, trials: int = 0
) -> Any:
    """Run this worker's share of the study; returns the ``optuna.Study``.

    Args:
        spec: the study.
        out: folder of the study's runs (and of the default SQLite storage).
        storage: RDB URL shared by all workers (default :func:`default_storage`).
        worker: this worker's number (seeds its TPE sampler; recorded on its trials).
        trials: trials for this worker (default ``spec.trials_per_worker()``); with the grid
            sampler a worker also stops when every grid point is taken.
    """
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(spec, storage or default_storage(out), worker=worker)
    n_trials = trials or spec.trials_per_worker()
    if spec.sampler == "grid":
        n_trials = min(n_trials, _grid_left(study, spec))
    if n_trials > 0:
        study.optimize(lambda t: run_trial(t, spec, out, worker=worker), n_trials=n_trials)
    return study


def finished_rows(study: Any) -> list[dict[str, Any]]:
    """One row per finished trial (pruned and failed ones are counted, not listed)."""
    import optuna

    return [
        {"value": t.value, **t.user_attrs}
        for t in study.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.COMPLETE and "set" in t.user_attrs
    ]


def to_markdown(spec: StudySpec, study: Any, root: Path) -> str:
    """The finished trials ranked by the validation metric (best first); counts of the rest."""
    import optuna

    rows = sorted(finished_rows(study), key=lambda r: -r["value"])
    states = [t.state for t in study.get_trials(deepcopy=False)]
    pruned = sum(s == optuna.trial.TrialState.PRUNED for s in states)
    failed = sum(s == optuna.trial.TrialState.FAIL for s in states)
    config = spec.config.relative_to(root) if spec.config.is_relative_to(root) else spec.config
    head = [
        *(d.key.rsplit(".", 1)[-1] for d in spec.space),
        f"valid {spec.metric}",
        "best epoch / run",
    ]
    lines = [
        f"Study `{spec.name}` on `{config}`, seed {spec.seed}, sampler {spec.sampler}, pruner "
        f"{spec.pruner}, fixed overrides {list(spec.fixed) or 'none'}; validation only (test "
        f"never scored). {len(rows)} finished, {pruned} pruned, {failed} failed.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        values = [s.split("=", 1)[1] for s in r["set"]]
        lines.append(
            "| "
            + " | ".join([*values, f"{r['value']:.4f}", f"{r['best_epoch']} / {r['epochs_run']}"])
            + " |"
        )
    return "\n".join(lines) + "\n"
