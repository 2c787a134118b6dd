"""The results store: one small JSON per finished run, keyed by what the run is and by the code.

A stored result is the file ``<root>/<model>/<config identity>-<code hash>.json`` (no weights):

* **config identity** — :func:`mmseq.identity.config_identity` of the run's config after
  :func:`canonical_config`: the model's params are resolved through its config class and the
  fields left at their defaults dropped, so ``params: {}`` and the same defaults written out are
  one run, and a new model option whose default keeps the old behaviour does not orphan the store.
* **code hash** — :func:`code_version`: the model class's ``result_version`` and
  :data:`mmseq.eval.protocol.EVAL_VERSION` (split, candidates, metrics), hashed. Versions are
  bumped by hand in the change that alters a number at an unchanged config (a default, a loss,
  the protocol); hashing source files instead would orphan every result at each refactor or
  comment, and miss a changed default in another file (docs/results_store.md).

:func:`lookup` returns a stored result only when the file's recorded identity AND code hash equal
the ones computed now from the config and the code, and its stored config hashes to that identity:
a renamed, edited or stale file is never mixed into a table.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mmseq.config import ExperimentConfig, ModelSection, from_dict, to_dict
from mmseq.data.schema import settings_hash
from mmseq.errors import DataError
from mmseq.eval.protocol import EVAL_VERSION
from mmseq.identity import config_identity, identity_fields
from mmseq.io import write_json
from mmseq.models import MODELS

log = logging.getLogger(__name__)

STORE_FORMAT = 1
#: Per-epoch history kept in a stored result: these validation metrics (plus the monitored one),
#: the total loss and the seconds, so that curves can be drawn and the file stays a few kB.
HISTORY_METRICS: tuple[str, ...] = ("hr@10", "ndcg@10")


def _drop_defaults(values: Any, defaults: Any) -> Any:
    """``values`` less every (nested) key whose value equals the one in ``defaults``."""
    if not isinstance(values, dict) or not isinstance(defaults, dict):
        return values
    out = {}
    for key, value in values.items():
        if key in defaults and value == defaults[key]:
            continue
        out[key] = _drop_defaults(value, defaults.get(key))
    return out


def canonical_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with ``model.params`` resolved by the model's config class, defaults left out."""
    cls = MODELS.get(cfg.model.name)
    resolved = from_dict(cls.config_class, cfg.model.params, where="model.params")
    params = _drop_defaults(to_dict(resolved), to_dict(cls.config_class()))
    return dataclasses.replace(cfg, model=ModelSection(name=cfg.model.name, params=params))


def code_version(cfg: ExperimentConfig) -> dict[str, str]:
    """The code versions a result of ``cfg`` depends on (what :func:`code_hash` hashes)."""
    cls = MODELS.get(cfg.model.name)
    return {"model": cfg.model.name, "model_version": cls.result_version, "eval": EVAL_VERSION}


def code_hash(cfg: ExperimentConfig) -> str:
    """16 hex chars over :func:`code_version`."""
    return settings_hash(code_version(cfg))


@dataclasses.dataclass(frozen=True)
class StoreKey:
    """Where a run's result lives: its config identity and the code hash, and the model name."""

    identity: str
    code: str
    model: str

    @classmethod
    def of(cls, cfg: ExperimentConfig) -> StoreKey:
        return cls(config_identity(canonical_config(cfg)), code_hash(cfg), cfg.model.name)

    def path(self, root: Path) -> Path:
        return Path(root) / self.model / f"{self.identity}-{self.code}.json"


def _trim_history(history: list[dict[str, Any]], monitor: str) -> list[dict[str, Any]]:
    keep = {*HISTORY_METRICS, monitor}
    out = []
    for epoch in history:
        row: dict[str, Any] = {"epoch": epoch.get("epoch")}
        loss = epoch.get("loss")
        if isinstance(loss, Mapping) and "total" in loss:
            row["loss"] = loss["total"]
        if isinstance(epoch.get("valid"), Mapping):
            row["valid"] = {k: v for k, v in epoch["valid"].items() if k in keep}
        if "seconds" in epoch:
            row["seconds"] = epoch["seconds"]
        out.append(row)
    return out


def entry_from_results(
    cfg: ExperimentConfig, results: Mapping[str, Any], *, provenance: Mapping[str, Any]
) -> dict[str, Any]:
    """The stored form of one finished run (``run_experiment``'s return value or an equal dict).

    Keeps test and validation metrics, chosen epoch, epochs run, wall seconds, a trimmed history
    (:data:`HISTORY_METRICS`), the data summary and ``provenance`` (git SHA, machine, ...).
    """
    if not results.get("test"):
        raise DataError("Expected finished results with test metrics to store (got none)")
    key = StoreKey.of(cfg)
    seconds = dict(results.get("seconds") or {})
    return {
        "format": STORE_FORMAT,
        "config_identity": key.identity,
        "code_hash": key.code,
        "code": code_version(cfg),
        "config": identity_fields(canonical_config(cfg)),
        "seed": cfg.seed,
        "test": dict(results["test"]),
        "valid": dict(results.get("valid") or {}),
        "best_epoch": results.get("best_epoch"),
        "epochs_run": results.get("epochs_run"),
        "stopped_early": results.get("stopped_early"),
        "wall_s": float(results.get("wall_s") or sum(seconds.values())),
        "seconds": seconds,
        "history": _trim_history(list(results.get("history") or []), cfg.train.monitor),
        "data": results.get("data"),
        "provenance": {**provenance, "stored": datetime.datetime.now(datetime.UTC).isoformat()},
    }


def save(root: Path, cfg: ExperimentConfig, entry: Mapping[str, Any]) -> Path:
    """Write ``entry`` (:func:`entry_from_results` of ``cfg``) at its key; returns the path."""
    key = StoreKey.of(cfg)
    if (entry.get("config_identity"), entry.get("code_hash")) != (key.identity, key.code):
        raise DataError(
            f"Expected an entry for {key} (got {entry.get('config_identity')}, "
            f"{entry.get('code_hash')})"
        )
    path = key.path(root)
    write_json(path, dict(entry))
    return path


def _valid_entry(path: Path, key: StoreKey) -> dict[str, Any] | None:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("results store: unreadable %s (%s): ignored", path, err)
        return None
    recorded = (entry.get("config_identity"), entry.get("code_hash"))
    if recorded != (key.identity, key.code):
        log.warning(
            "results store: %s records %s, expected %s: ignored",
            path,
            recorded,
            (key.identity, key.code),
        )
        return None
    if settings_hash(entry.get("config")) != key.identity:
        log.warning(
            "results store: %s: its config does not hash to %s: ignored", path, key.identity
        )
        return None
    return entry


def lookup(root: Path, cfg: ExperimentConfig) -> dict[str, Any] | None:
    """The stored result of exactly this config and code, or None."""
    key = StoreKey.of(cfg)
    path = key.path(root)
    return _valid_entry(path, key) if path.is_file() else None


def entries(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every readable stored entry under ``root`` (no validation against the current code)."""
    for path in sorted(Path(root).glob("*/*.json")):
        try:
            yield path, json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue


def stale(root: Path) -> list[Path]:
    """Stored files no table can use any more: unreadable, of other code (the code hash no
    longer equals the current code's for their config), or filed under another key than their
    config has now (a change of :func:`canonical_config` or of the config identity moved it)."""
    out = []
    for path, entry in entries(root):
        try:
            cfg = from_dict(ExperimentConfig, entry["config"], where=str(path))
            key = StoreKey.of(cfg)
        except (KeyError, ValueError):
            out.append(path)
            continue
        if entry.get("code_hash") != key.code or key.path(root) != path:
            out.append(path)
    return out
