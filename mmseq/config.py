"""Strict config: YAML parsed once, at the edge, into frozen dataclasses.

``from_dict(cls, mapping, where=...)`` rejects unknown keys (naming the nearest valid key) and
values
of the wrong type (naming the key and the expected type). Nothing downstream reads raw dicts.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import yaml

from mmseq.domains import (
    CROSS_RULES,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Domain,
    matching,
    rule_domain,
)
from mmseq.errors import ConfigError
from mmseq.plugins import load_installed_plugins, load_plugin_modules
from mmseq.registry import Registry

T = TypeVar("T")
#: Config classes of these modules get the name-rule domains of :mod:`mmseq.domains`.
RULED_MODULES = ("mmseq.models.",)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against ``tp``; lists become tuples, mappings nested dataclasses.

    ``Annotated[T, Domain(...)]`` checks the value against the domain after the type.
    """
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Annotated:
        base, *extras = get_args(tp)
        value = _coerce(value, base, where)
        for domain in extras:
            problem = domain.problem(value) if isinstance(domain, Domain) else None
            if problem and value is not None:
                raise ConfigError(f"{where}: {problem}")
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
    if origin in (tuple, list) or tp in (tuple, list):
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
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number (got {value!r})")
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
    hints = typing.get_type_hints(cls, include_extras=True)
    rules = cls.__module__.startswith(RULED_MODULES)
    kwargs: dict[str, Any] = {}
    for key, value in mapping.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{where}: unknown key '{key}' for {cls.__name__}{hint} (valid: {sorted(fields)})"
            )
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
        if rules and get_origin(hints[key]) is not Annotated and type(kwargs[key]) in (int, float):
            domain = rule_domain(cls.__name__, key)
            problem = domain.problem(kwargs[key]) if domain is not None else None
            if problem:
                raise ConfigError(f"{where}.{key}: {problem}")
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    for rule in CROSS_RULES if rules else ():
        problem = rule(obj)
        if problem:
            raise ConfigError(f"{where}.{problem}")
    return obj


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
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; expected a YAML config file")
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
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


NON_EMPTY = matching(r"(?s).+", "a non-empty string", "")
METRIC = matching(
    r"(hr|ndcg|recall|mrr)(@[1-9][0-9]*)?", "a metric such as 'ndcg@10', 'hr@5' or 'mrr'", "acc@10"
)
DEVICE = matching(r"auto|cpu|mps|cuda(:[0-9]+)?", "'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'", "tpu")


@dataclass(frozen=True)
class DataConfig:
    """Where the interactions come from and how they are filtered."""

    # a file path (relative to the config file or data_root), or "synthetic"
    path: Annotated[str, NON_EMPTY] = "synthetic"
    format: str = "auto"  # reader name (see ``mmseq data formats``) or "auto" to detect
    # iterative k-core on unique (user, item) pairs; 0 = off
    kcore: Annotated[int, NON_NEGATIVE] = 0
    # keep the first N users (by first appearance) for quick runs; 0 = all
    max_users: Annotated[int, NON_NEGATIVE] = 0
    synthetic: dict = field(default_factory=dict)  # SyntheticConfig fields when path == "synthetic"
    # [low, high] of valid ratings for formats without a fixed scale (csv, recbole); a rating
    # outside is a bad row. None = any finite number. Amazon (1..5) and MovieLens have their own.
    rating_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.rating_range is not None and self.rating_range[0] > self.rating_range[1]:
            raise ConfigError(
                "rating_range: expected [low, high] with low <= high "
                f"(got {list(self.rating_range)})"
            )


@dataclass(frozen=True)
class SplitConfig:
    """The evaluation protocol (shared/docs/protocols.md)."""

    protocol: Literal["ratio-80-20", "loo-full", "loo-sampled99"] = "ratio-80-20"
    seed: Annotated[int, SEED] = 0  # seed of the fixed negative candidates (loo-sampled99)


@dataclass(frozen=True)
class TrainConfig:
    """Trainer settings; model hyper-parameters live in the model's own config."""

    epochs: Annotated[int, POSITIVE_INT] = 50
    batch_size: Annotated[int, POSITIVE_INT] = 1024
    lr: Annotated[float, POSITIVE] = 1e-3
    # "linear": epoch e trains at lr * (1 - (e - 1) / epochs), down towards 0 at the cap (BERT4Rec,
    # PeerRec); "constant": lr throughout
    lr_schedule: Literal["constant", "linear"] = "constant"
    weight_decay: Annotated[float, NON_NEGATIVE] = 0.0
    # evaluations without improvement before stopping; 0 = never stop early
    patience: Annotated[int, NON_NEGATIVE] = 5
    eval_every: Annotated[int, POSITIVE_INT] = 1  # epochs between validation runs
    # validation metric for early stopping and model choice
    monitor: Annotated[str, METRIC] = "ndcg@10"
    # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    device: Annotated[str, DEVICE] = "auto"
    # longest training sequence fed to sequential models (most recent items)
    max_len: Annotated[int, POSITIVE_INT] = 50
    eval_batch_size: Annotated[int, POSITIVE_INT] = 1024
    grad_clip: Annotated[float, NON_NEGATIVE] = 0.0  # max grad norm; 0 = off
    progress: bool = True  # tqdm bars on a terminal, one line per epoch elsewhere
    tensorboard: bool = False  # TensorBoard event files in <run_dir>/tensorboard
    threads: Annotated[int, NON_NEGATIVE] = 0  # torch intra-op threads; 0 = leave torch's default
    # keep freed host memory for large tensors instead of unmapping it (glibc; same results,
    # fewer page faults: mmseq.train.host_memory); false gives memory back at once
    reuse_memory: bool = True
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
    # The two sections registered by the built-in plug-ins, typed by load_experiment: topics ->
    # topics.TopicConfig (the "topics" stage's section), graphs -> tuple of graphs.GraphSpec.
    topics: Any = None
    graphs: Any = ()
    plugins: tuple[str, ...] = ()  # modules imported before parsing (third-party plug-ins)
    sections: dict = field(default_factory=dict)  # other plug-in sections by name, typed at load
    seed: Annotated[int, SEED] = 0
    # metric cut-offs; () = the protocol's defaults
    ks: tuple[Annotated[int, POSITIVE_INT], ...] = ()
    # results and checkpoints (relative to the working directory)
    output_dir: Annotated[str, NON_EMPTY] = "runs"
    artifacts_dir: Annotated[str, NON_EMPTY] = "artifacts"  # topic and graph caches
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
    """Load an experiment YAML (plus ``key.path=value`` overrides) as an ExperimentConfig.

    Every value is checked here, before any data is read: types and domains of every section,
    ``model.name`` and ``model.params`` (through the model's config class, which also gives its
    domains), ``data.format``, ``data.synthetic``, and ``train.monitor`` against the metrics of
    the protocol and ``ks``. ``model.params`` stays a plain mapping in the returned config (the
    model builds its config from it again), so configs keep their identity.

    Relative paths written in the file (``data.path``, ``output_dir``, ``artifacts_dir``)
    resolve against the file's folder; ``output_dir`` / ``artifacts_dir`` left out of the file,
    or given with ``--set``, stay relative to the working directory.

    Raises:
        ConfigError: one line naming the file and the key.
    """
    path = Path(path)
    written = load_yaml(path)
    folder = path.resolve().parent
    original = {key: written.get(key) for key in ("output_dir", "artifacts_dir")}
    in_file = {
        key: str(folder / value)
        for key, value in original.items()
        if isinstance(value, str) and value and not Path(value).is_absolute()
    }
    mapping = apply_overrides(written, list(overrides or []))
    for key, value in in_file.items():
        if mapping.get(key) == original[key]:  # not replaced by an override
            mapping[key] = value
    cfg = experiment_from_dict(mapping, where=str(path))
    if not cfg.data_root:
        cfg = dataclasses.replace(cfg, data_root=str(folder))
    check_experiment(cfg, where=str(path))
    return cfg


def check_experiment(cfg: ExperimentConfig, *, where: str = "config") -> None:
    """The checks of an ExperimentConfig that span sections or need a registry (see above)."""
    # Imported here: the registries import this module.
    from mmseq.data.readers import READERS
    from mmseq.data.synthetic import SyntheticConfig
    from mmseq.eval.protocol import DEFAULT_KS, NUM_NEGATIVES, metric_names
    from mmseq.models import MODELS

    try:
        cls = MODELS.get(cfg.model.name)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{where}: model.name: {exc}") from None
    from_dict(cls.config_class, cfg.model.params, where=f"{where}: model.params ({cfg.model.name})")
    if cfg.data.path == "synthetic":
        from_dict(SyntheticConfig, cfg.data.synthetic, where=f"{where}.data.synthetic")
    if cfg.data.format != "auto" and cfg.data.format not in READERS:
        close = difflib.get_close_matches(cfg.data.format, READERS.names(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"{where}.data.format: unknown format '{cfg.data.format}'; choices: "
            f"{['auto', *READERS.names()]}{hint}"
        )
    protocol = cfg.split.protocol
    if protocol == "loo-sampled99" and cfg.ks and max(cfg.ks) > NUM_NEGATIVES + 1:
        raise ConfigError(
            f"{where}.ks: expected cut-offs <= {NUM_NEGATIVES + 1} (the candidates per user under "
            f"loo-sampled99) (got {list(cfg.ks)})"
        )
    names = metric_names(protocol, tuple(sorted(set(cfg.ks))) or DEFAULT_KS[protocol])
    if cfg.train.monitor not in names:
        raise ConfigError(
            f"{where}.train.monitor: '{cfg.train.monitor}' is not reported under {protocol} with "
            f"ks {list(cfg.ks) or 'default'}; choices: {list(names)}"
        )


def check_writable_dir(path: str | Path, key: str) -> None:
    """Fail fast unless ``path`` is, or can be created as, a writable directory (creates nothing).

    Raises:
        ConfigError: ``path`` (or a parent) is a file, or the nearest existing parent cannot be
            written.
    """
    target = Path(path).expanduser().absolute()
    probe = target
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{key} '{path}': {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{key} '{path}': {probe} is not writable")


def resolve_data_path(cfg: ExperimentConfig) -> Path | None:
    """The absolute data path of ``cfg`` (None for the synthetic generator)."""
    if cfg.data.path == "synthetic":
        return None
    p = Path(cfg.data.path).expanduser()
    return p if p.is_absolute() else (Path(cfg.data_root) / p).resolve()
