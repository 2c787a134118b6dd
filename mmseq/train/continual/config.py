"""Frozen configs of the continual-learning comparison (shared/docs/methods.md section 6).

A continual YAML (``configs/continual/*.yaml``) has the sections ``data`` (the usual
:class:`~mmseq.config.DataConfig`), ``model`` (:class:`~mmseq.config.ModelSection`: the backbone,
any sequential model of ``mmseq.models.MODELS``), ``train`` (:class:`PeriodTrainConfig`),
``periods`` (:class:`PeriodConfig`), ``ader`` (:class:`ADERConfig`) and a few top-level keys
(:class:`ContinualConfig`). :func:`load_continual_config` parses it strictly, once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mmseq.config import DataConfig, ModelSection, apply_overrides, from_dict, load_yaml
from mmseq.errors import ConfigError


@dataclass(frozen=True)
class PeriodConfig:
    """How the interactions are cut into time periods D_1..D_T (by GLOBAL time)."""

    num_periods: int = 5  # T >= 2; train on D_t, evaluate on D_{t+1} for t = 1..T-1
    rule: Literal["count", "span"] = "count"  # equal interaction counts, or equal time spans

    def __post_init__(self) -> None:
        if self.num_periods < 2:
            raise ValueError(f"Expected 'periods.num_periods' >= 2 (got {self.num_periods})")


@dataclass(frozen=True)
class PeriodTrainConfig:
    """Training budget of ONE period (every strategy gets the same budget; no early stopping)."""

    epochs: int = 3  # passes over the period's training samples
    batch_size: int = 256  # samples (one next-item target each) per step
    lr: float = 1e-3  # Adam learning rate (a fresh optimiser per period)
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max grad norm; 0 = off
    max_len: int = 50  # context length L: the last L items before each target
    eval_batch_size: int = 1024  # samples per scoring batch
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", ...
    threads: int = 0  # torch intra-op threads; 0 = leave torch's default

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "max_len", "eval_batch_size"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"Expected 'train.{name}' >= 1 (got {value})")


@dataclass(frozen=True)
class ADERConfig:
    """ADER (Mi, Lin & Faltings, RecSys 2020): exemplar replay + adaptive distillation."""

    exemplar_budget: int = 1000  # N, exemplars kept after each period (split over items)
    lambda_base: float = 1.0  # lambda_base of the adaptive distillation weight
    # "issue": lambda_base * sqrt(|I_{t-1}|/|I_t| * |E_{t-1}|/|D_t|) (the paper's rule);
    # "methods": lambda_base * sqrt(|I_{t-1}|/|I_t|) (shared/docs/methods.md section 6).
    lambda_rule: Literal["issue", "methods"] = "issue"
    kd_temperature: float = 1.0  # softmax temperature of both sides of the KD term
    # Herding works on the model's next-item logits over the items seen so far; > 0 first maps
    # them to this many dimensions with a fixed Gaussian random projection (saves memory on large
    # item sets; distances are approximately kept). 0 = raw logits.
    herding_projection_dim: int = 0

    def __post_init__(self) -> None:
        if self.exemplar_budget < 1:
            raise ValueError(f"Expected 'ader.exemplar_budget' >= 1 (got {self.exemplar_budget})")
        if self.lambda_base < 0:
            raise ValueError(f"Expected 'ader.lambda_base' >= 0 (got {self.lambda_base})")
        if self.kd_temperature <= 0:
            raise ValueError(f"Expected 'ader.kd_temperature' > 0 (got {self.kd_temperature})")
        if self.herding_projection_dim < 0:
            raise ValueError(
                f"Expected 'ader.herding_projection_dim' >= 0 (got {self.herding_projection_dim})"
            )


@dataclass(frozen=True)
class ContinualConfig:
    """One continual comparison: data, backbone, per-period budget, periods, strategies."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=lambda: ModelSection(name="sasrec"))
    train: PeriodTrainConfig = field(default_factory=PeriodTrainConfig)
    periods: PeriodConfig = field(default_factory=PeriodConfig)
    ader: ADERConfig = field(default_factory=ADERConfig)
    strategies: tuple[str, ...] = ("finetune", "joint", "ader")  # names in STRATEGIES
    joint_warm_start: bool = False  # joint: False = retrain from a fresh model every period
    ks: tuple[int, ...] = (20,)  # metric cut-offs (recall@k, ndcg@k) besides mrr
    seed: int = 0
    data_root: str = ""  # base for a relative data.path; "" = the config file's folder


def load_continual_config(path: str | Path, overrides: list[str] | None = None) -> ContinualConfig:
    """Read a continual YAML with ``key.path=value`` overrides into :class:`ContinualConfig`.

    Raises:
        ConfigError: on an unknown key, a wrong type or an out-of-range value (naming the file).
    """
    path = Path(path)
    mapping = apply_overrides(load_yaml(path), list(overrides or []))
    cfg = from_dict(ContinualConfig, mapping, where=str(path))
    if not cfg.strategies:
        raise ConfigError(f"{path}: expected at least one name in 'strategies' (got none)")
    if not cfg.data_root:
        cfg = dataclasses.replace(cfg, data_root=str(path.resolve().parent))
    return cfg


def resolve_continual_data_path(cfg: ContinualConfig) -> Path | None:
    """The absolute data path of ``cfg`` (None for the synthetic generator)."""
    if cfg.data.path == "synthetic":
        return None
    p = Path(cfg.data.path).expanduser()
    return p if p.is_absolute() else (Path(cfg.data_root) / p).resolve()
