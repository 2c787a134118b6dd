"""Every config field has a domain, checked when the file is loaded, before any data is read.

``test_every_field_rejects_an_out_of_domain_value`` walks EVERY field of the experiment config's
sections and of every registered model's config class (nested ones included), sets it to a value
outside its domain (a wrong type where the domain is the type) and expects one line of
``ConfigError`` naming the key. The data path in the base config does not exist, so an error
raised after reading data would be a DataError, not the expected ConfigError.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pytest
import yaml
from rel_helpers import REPO

from mmseq.cli import main as mmseq_main
from mmseq.config import (
    DataConfig,
    ExperimentConfig,
    ModelSection,
    SplitConfig,
    TrainConfig,
    load_experiment,
)
from mmseq.domains import Domain, rule_domain
from mmseq.errors import ConfigError
from mmseq.models import MODELS

BASE: dict[str, Any] = {
    "data": {"path": "missing-data.json", "format": "amazon"},
    "split": {"protocol": "loo-full"},
    "model": {"name": "bprmf"},
    "train": {"epochs": 1, "device": "cpu", "progress": False},
}
#: Fields whose bad value is not derived from their type or domain (a registry decides).
SPECIAL = {
    ("ModelSection", "name"): "no-such-model",
    ("DataConfig", "format"): "no-such-format",
    # plug-in sections, typed by their owners (topics.TopicConfig, graphs.GraphSpec) at load
    ("ExperimentConfig", "topics"): 7,
    ("ExperimentConfig", "graphs"): 7,
}


def _domain(cls: type, name: str, hint: Any) -> Domain | None:
    if get_origin(hint) is Annotated:
        return next((m for m in get_args(hint)[1:] if isinstance(m, Domain)), None)
    return rule_domain(cls.__name__, name)


def _bad_value(cls: type, name: str, hint: Any) -> Any:
    """An out-of-domain value for ``cls.name`` (the test fails for a number without a domain)."""
    if (cls.__name__, name) in SPECIAL:
        return SPECIAL[(cls.__name__, name)]
    base = get_args(hint)[0] if get_origin(hint) is Annotated else hint
    domain = _domain(cls, name, hint)
    if domain is not None:
        return domain.outside()
    assert base not in (int, float), f"{cls.__name__}.{name} is a number without a domain"
    if get_origin(base) is Literal:
        return "not-a-choice"
    if base is bool:
        return "maybe"
    if get_origin(base) is tuple and get_origin(get_args(base)[0]) is Annotated:
        element = get_args(base)[0]
        return [_domain(cls, name, element).outside()]
    if name == "rating_range":
        return [5.0, 1.0]  # low > high
    if dataclasses.is_dataclass(base) or base in (dict, tuple) or get_origin(base) is not None:
        return 7  # a scalar where a mapping or list belongs
    if base is str:
        return 123
    raise AssertionError(f"no bad value for {cls.__name__}.{name}: {hint}")


def _cases(cls: type, path: tuple[str, ...], where: str) -> list[tuple[str, tuple, Any, str]]:
    """(case id, key path in the YAML, bad value, the key the message must name)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and cls is ExperimentConfig:
            continue  # the sections are walked field by field below
        if dataclasses.is_dataclass(hint):
            out += _cases(hint, (*path, f.name), f"{where}.{f.name}")  # nested model config
        out.append((f"{where}.{f.name}", (*path, f.name), _bad_value(cls, f.name, hint), f.name))
    return out


SECTIONS = {"data": DataConfig, "split": SplitConfig, "model": ModelSection, "train": TrainConfig}
CASES = _cases(ExperimentConfig, (), "ExperimentConfig")
for _section, _cls in SECTIONS.items():
    CASES += _cases(_cls, (_section,), _cls.__name__)
MODEL_CASES = {name: MODELS.get(name).config_class for name in MODELS.names()}
for _name, _cls in MODEL_CASES.items():
    CASES += [
        (f"{_name}:{case}", ("model", "params", *keys), value, key)
        for case, keys, value, key in _cases(_cls, (), _cls.__name__)
    ]


def _write(tmp_path: Path, keys: tuple, value: Any, model: str | None = None) -> Path:
    mapping = yaml.safe_load(yaml.safe_dump(BASE))
    if model is not None:
        mapping["model"] = {"name": model, "params": {}}
    node = mapping
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return path


@pytest.mark.parametrize("case,keys,value,key", CASES, ids=[c[0] for c in CASES])
def test_every_field_rejects_an_out_of_domain_value(case, keys, value, key, tmp_path) -> None:
    model = case.split(":")[0] if ":" in case else None
    path = _write(tmp_path, keys, value, model)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert "\n" not in message and key in message and "x.yaml" in message, message
    if model is not None:
        assert f"model.params ({model})" in message, message


def test_the_walk_covers_every_model_and_section() -> None:
    walked = {c[0].split(":")[0] for c in CASES if ":" in c[0]}
    with_fields = {n for n, c in MODEL_CASES.items() if dataclasses.fields(c)}
    assert walked == with_fields and with_fields >= set(MODELS.names()) - {"pop"}
    assert len(CASES) > 150


CROSS_CASES = [
    ("monitor-not-reported", {"train": {"monitor": "recall@10"}}, "train.monitor"),
    ("monitor-k-not-in-ks", {"ks": [5], "train": {"monitor": "ndcg@10"}}, "train.monitor"),
    (
        "ks-above-candidates",
        {"split": {"protocol": "loo-sampled99"}, "ks": [101], "train": {"monitor": "hr@10"}},
        ".ks",
    ),
    (
        "heads-do-not-divide-width",
        {"model": {"name": "sasrec", "params": {"embedding_dim": 10, "num_heads": 3}}},
        "num_heads",
    ),
    ("nan-learning-rate", {"train": {"lr": float("nan")}}, "train.lr"),
    ("infinite-weight-decay", {"train": {"weight_decay": float("inf")}}, "train.weight_decay"),
    ("huge-seed", {"seed": 2**40}, "seed"),
    (
        "synthetic-checked-at-load",
        {"data": {"path": "synthetic", "synthetic": {"num_users": 0}}},
        "num_users",
    ),
]


@pytest.mark.parametrize("case,update,key", CROSS_CASES, ids=[c[0] for c in CROSS_CASES])
def test_settings_across_sections_are_checked_at_load(case, update, key, tmp_path) -> None:
    mapping = yaml.safe_load(yaml.safe_dump(BASE))
    for section, value in update.items():
        if isinstance(value, dict) and isinstance(mapping.get(section), dict):
            mapping[section] = {**mapping[section], **value}
        else:
            mapping[section] = value
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(mapping))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_experiment(path)


# The settings the issue found running with exit 0 or crashing with a traceback, through the CLI.
CLI_CASES = [
    ("epochs-0", ["train.epochs=0"], "train.epochs"),
    ("epochs-negative", ["train.epochs=-3"], "train.epochs"),
    ("embedding-dim-0", ["model.params.embedding_dim=0"], "embedding_dim"),
    ("embedding-dim-negative", ["model.params.embedding_dim=-8"], "embedding_dim"),
    ("kcore-negative", ["data.kcore=-5"], "data.kcore"),
    ("max-users-negative", ["data.max_users=-1"], "data.max_users"),
    ("batch-size-0", ["train.batch_size=0"], "train.batch_size"),
    ("patience-negative", ["train.patience=-1"], "train.patience"),
    ("max-len-0", ["train.max_len=0"], "train.max_len"),
    ("ks-0", ["ks=[0]"], "ks[0]"),
    ("seed-negative", ["seed=-1"], "seed"),
    ("device-tpu", ["train.device=tpu"], "train.device"),
]


@pytest.mark.parametrize("case,overrides,key", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_train_rejects_nonsense_settings_before_reading_data(
    case, overrides, key, tmp_path, capsys
) -> None:
    path = _write(tmp_path, ("output_dir",), str(tmp_path / "runs"))
    args = ["train", "--config", str(path)]
    for item in overrides:
        args += ["--set", item]
    rc = mmseq_main(args)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "missing-data.json" not in lines[0], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key", ["output_dir", "artifacts_dir"])
def test_unwritable_output_dirs_fail_before_any_work(key, tmp_path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = _write(tmp_path, (key,), str(blocker / "sub"))
    rc = mmseq_main(["train", "--config", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and key in err and "is a file" in err, err


def test_a_directory_as_data_file_or_config_says_so(tmp_path, capsys) -> None:
    (tmp_path / "data.json").mkdir()
    assert mmseq_main(["data", "stats", str(tmp_path / "data.json")]) == 2
    assert "is a directory; expected a data file" in capsys.readouterr().err
    assert mmseq_main(["train", "--config", str(tmp_path)]) == 2
    assert "is a directory; expected a YAML config file" in capsys.readouterr().err


def test_an_unexpected_exception_is_one_line_without_debug(monkeypatch, capsys) -> None:
    import mmseq.cli as cli

    def boom(args):
        raise RuntimeError("kaputt\nsecond line")

    monkeypatch.setattr(cli, "_cmd_models", boom)
    assert cli.main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: kaputt second line" in err
    assert "--debug" in err and "Traceback" not in err


def test_configs_in_the_repository_still_load() -> None:
    for path in sorted((REPO / "configs" / "experiments").glob("*.yaml")):
        load_experiment(path)
