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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from mmseq.errors import ConfigError
from mmseq.plugins import load_installed_plugins, load_plugin_modules
from mmseq.registry import Registry

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
    # The two sections registered by the built-in plug-ins, typed by load_experiment: topics ->
    # topics.TopicConfig (the "topics" stage's section), graphs -> tuple of graphs.GraphSpec.
    topics: Any = None
    graphs: Any = ()
    plugins: tuple[str, ...] = ()  # modules imported before parsing (third-party plug-ins)
    sections: dict = field(default_factory=dict)  # other plug-in sections by name, typed at load
    seed: int = 0
    ks: tuple[int, ...] = ()  # metric cut-offs; () = the protocol's defaults
    output_dir: str = "runs"  # results and checkpoints (relative to the working directory)
    artifacts_dir: str = "artifacts"  # topic and graph caches
    data_root: str = ""  # base for relative data paths; "" = the config file's folder


# --------------------------------------------------------------------------------------------
# Plug-in sections: a plug-in package registers the YAML section it owns (graphs/ registers
# "graphs"); each artifact stage owns the section ``section_name()`` gives (topics/ -> "topics").
# load_experiment parses them all into typed configs once, at load.

SectionParser = Callable[[Any, str], Any]  # (raw YAML value or None, where) -> typed config

#: Explicitly registered sections by name (stage sections come from ``mmseq.stages.STAGES``).
SECTIONS: Registry[SectionParser] = Registry("config section", discover=(load_installed_plugins,))

#: Sections that are ExperimentConfig fields of their own (the rest live in ``sections``).
FIELD_SECTIONS: tuple[str, ...] = ("topics", "graphs")


def register_section(name: str, parse: SectionParser) -> SectionParser:
    """Register ``parse`` for the YAML section ``name``; it must accept its own output too."""
    return SECTIONS.register(name)(parse)


def _stage_parser(cls: Any) -> SectionParser:
    def parse(raw: Any, where: str) -> Any:
        return raw if isinstance(raw, cls.config_class) else from_dict(
            cls.config_class, raw, where=where
        )

    return parse


def section_parsers() -> dict[str, SectionParser]:
    """Every known plug-in section: registered ones plus one per stage section."""
    from mmseq.stages import STAGES  # lazily: mmseq.stages imports this module

    parsers = {name: SECTIONS.get(name) for name in SECTIONS.names()}
    owners: dict[str, Any] = {}
    for name in STAGES.names():
        cls = STAGES.get(name)
        section = cls.section_name()
        other = owners.setdefault(section, cls)
        if other.config_class is not cls.config_class:
            raise ConfigError(
                f"Stages '{other.name}' and '{cls.name}' share the section '{section}' but not "
                f"a config class ({other.config_class.__name__} vs {cls.config_class.__name__})"
            )
        if section in parsers and section not in owners:
            raise ConfigError(f"Stage '{cls.name}' claims the registered section '{section}'")
        parsers.setdefault(section, _stage_parser(cls))
    return parsers


def experiment_from_dict(mapping: Mapping[str, Any] | None, *, where: str) -> ExperimentConfig:
    """ExperimentConfig from a plain mapping, every plug-in section typed (strictly).

    Loads the plug-ins first (built-in, entry points, then the mapping's ``plugins:`` modules),
    so that a section of a plug-in named in the same file is known. A section key may sit at the
    top level (``item_text: {...}``) or under ``sections:`` (how ``to_dict`` writes it back).

    Raises:
        ConfigError: on an unknown key or section, or a bad value in any section.
    """
    mapping = dict(mapping or {})
    plugins = _coerce(mapping.get("plugins", ()), tuple[str, ...], f"{where}: plugins")
    load_plugin_modules(plugins, where=f"{where}: plugins")
    parsers = section_parsers()
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    extra = dict(_coerce(mapping.pop("sections", {}), dict, f"{where}: sections"))
    for key in list(mapping):
        if key not in fields and key in parsers:
            extra[key] = mapping.pop(key)
    cfg = from_dict(ExperimentConfig, mapping, where=where)
    typed = {
        name: parsers[name](getattr(cfg, name), f"{where}: {name}")
        for name in FIELD_SECTIONS
        if name in parsers
    }
    sections = {}
    for name, raw in sorted(extra.items()):
        if name not in parsers or name in FIELD_SECTIONS:
            choices = sorted(set(parsers) - set(FIELD_SECTIONS))
            close = difflib.get_close_matches(str(name), choices, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{where}: unknown section '{name}'{hint} (plug-in sections: {choices})"
            )
        sections[name] = parsers[name](raw, f"{where}: {name}")
    return dataclasses.replace(cfg, **typed, sections=sections)


def section_value(cfg: ExperimentConfig, name: str) -> Any:
    """The typed config of plug-in section ``name`` (its default when the YAML has none)."""
    parsers = section_parsers()
    if name not in parsers:
        raise ConfigError(f"Unknown config section '{name}'; known: {sorted(parsers)}")
    raw = getattr(cfg, name) if name in FIELD_SECTIONS else cfg.sections.get(name)
    return parsers[name](raw, f"config section '{name}'")


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load an experiment YAML (plus ``key.path=value`` overrides) as an ExperimentConfig."""
    path = Path(path)
    mapping = apply_overrides(load_yaml(path), list(overrides or []))
    cfg = experiment_from_dict(mapping, where=str(path))
    if not cfg.data_root:
        cfg = dataclasses.replace(cfg, data_root=str(path.resolve().parent))
    return cfg


def resolve_data_path(cfg: ExperimentConfig) -> Path | None:
    """The absolute data path of ``cfg`` (None for the synthetic generator)."""
    if cfg.data.path == "synthetic":
        return None
    p = Path(cfg.data.path).expanduser()
    return p if p.is_absolute() else (Path(cfg.data_root) / p).resolve()
