"""Strict config: YAML parsed once, at the edge, into frozen dataclasses.

``from_dict(cls, mapping, where=...)`` rejects unknown keys (naming the nearest valid key) and
values
of the wrong type (naming the key and the expected type). Nothing downstream reads raw dicts.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from mmseq.errors import ConfigError

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against ``tp``; lists become tuples, mappings nested dataclasses."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: expected {_type_name(tp)} (got {value!r})")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{where}: expected one of {list(choices)} (got {value!r}){hint}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__} (got {value!r})")
        return from_dict(tp, value, where=where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list (got {value!r})")
        args = get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
        elif origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values (got {len(value)})")
            items = [_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            elem = args[0] if args else Any
            items = [_coerce(v, elem, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping (got {value!r})")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false (got {value!r})")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer (got {value!r})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number (got {value!r})")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string (got {value!r})")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where}: expected a path (got {value!r})")
        return Path(value)
    return value


def from_dict(cls: type[T], mapping: Mapping[str, Any] | None, *, where: str = "config") -> T:
    """Build the frozen dataclass ``cls`` from ``mapping``, strictly.

    Args:
        cls: a dataclass type.
        mapping: keys are field names; missing keys take the field defaults.
        where: a location prefix for messages, e.g. ``"configs/x.yaml: model.params"``.

    Raises:
        ConfigError: on an unknown key (with the nearest valid key) or a value of the wrong type.
    """
    mapping = {} if mapping is None else mapping
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__} (got {mapping!r})")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in mapping.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{where}: unknown key '{key}' for {cls.__name__}{hint} (valid: {sorted(fields)})"
            )
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def to_dict(obj: Any) -> Any:
    """A plain, YAML/JSON-ready view of a (nested) config dataclass."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error naming the file on a parse error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping at the top level (got {type(data).__name__})"
        )
    return data


def apply_overrides(mapping: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a nested mapping, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"Override '{item}' must look like key.path=value")
        key, raw = item.split("=", 1)
        node = mapping
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Override '{item}': '{part}' is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"Override '{item}': the value is not valid YAML ({problem})"
            ) from None
    return mapping


# --------------------------------------------------------------------------------------------
# The experiment config: sections that compose data + split + topics + graphs + model + train.


@dataclass(frozen=True)
class DataConfig:
    """Where the interactions come from and how they are filtered."""

    path: str = (
        "synthetic"  # a file path (relative to the config file or data_root), or "synthetic"
    )
    format: str = "auto"  # reader name (see ``mmseq data formats``) or "auto" to detect
    kcore: int = 0  # iterative k-core on unique (user, item) pairs; 0 = off
    max_users: int = 0  # keep the first N users (by first appearance) for quick runs; 0 = all
    synthetic: dict = field(default_factory=dict)  # SyntheticConfig fields when path == "synthetic"


@dataclass(frozen=True)
class SplitConfig:
    """The evaluation protocol (shared/docs/protocols.md)."""

    protocol: Literal["ratio-80-20", "loo-full", "loo-sampled99"] = "ratio-80-20"
    seed: int = 0  # seed of the fixed negative candidates (loo-sampled99)


@dataclass(frozen=True)
class TrainConfig:
    """Trainer settings; model hyper-parameters live in the model's own config."""

    epochs: int = 50
    batch_size: int = 1024
    lr: float = 1e-3
    # "linear": epoch e trains at lr * (1 - (e - 1) / epochs), down towards 0 at the cap (BERT4Rec,
    # PeerRec); "constant": lr throughout
    lr_schedule: Literal["constant", "linear"] = "constant"
    weight_decay: float = 0.0
    patience: int = 5  # evaluations without improvement before stopping
    eval_every: int = 1  # epochs between validation runs
    monitor: str = "ndcg@10"  # validation metric for early stopping and model choice
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    max_len: int = 50  # longest training sequence fed to sequential models (most recent items)
    eval_batch_size: int = 1024
    grad_clip: float = 0.0  # max grad norm; 0 = off
    progress: bool = True
    threads: int = 0  # torch intra-op threads; 0 = leave torch's default
    # "bf16": bf16 autocast of the training forward/loss on CUDA; CPU trains in fp32 only (an error)
    precision: Literal["fp32", "bf16"] = "fp32"


@dataclass(frozen=True)
class ModelSection:
    """``name`` is a key of ``mmseq.models.MODELS``; ``params`` fill that model's config class."""

    name: str = "pop"
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentConfig:
    """One run: data, protocol, (optional) topics and graphs, model, trainer, seed, output."""

    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    topics: dict = field(default_factory=dict)  # topics.TopicConfig fields (validated by topics/)
    graphs: tuple = ()  # list of {builder: name, params: {...}} (validated by graphs/)
    seed: int = 0
    ks: tuple[int, ...] = ()  # metric cut-offs; () = the protocol's defaults
    output_dir: str = "runs"  # results and checkpoints (relative to the working directory)
    artifacts_dir: str = "artifacts"  # topic and graph caches
    data_root: str = ""  # base for relative data paths; "" = the config file's folder


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load an experiment YAML (plus ``key.path=value`` overrides) as an ExperimentConfig."""
    path = Path(path)
    mapping = apply_overrides(load_yaml(path), list(overrides or []))
    cfg = from_dict(ExperimentConfig, mapping, where=str(path))
    if not cfg.data_root:
        cfg = dataclasses.replace(cfg, data_root=str(path.resolve().parent))
    return cfg


def resolve_data_path(cfg: ExperimentConfig) -> Path | None:
    """The absolute data path of ``cfg`` (None for the synthetic generator)."""
    if cfg.data.path == "synthetic":
        return None
    p = Path(cfg.data.path).expanduser()
    return p if p.is_absolute() else (Path(cfg.data_root) / p).resolve()
