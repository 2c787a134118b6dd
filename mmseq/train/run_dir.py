"""Which run a run directory holds: one config identity per directory, and the rules to reuse it.

A run directory belongs to exactly one resolved config (:func:`mmseq.identity.config_identity`,
trainer settings included). ``identity.json`` in the directory stores that identity and the
fields behind it; checkpoints carry the same identity as their key. The rules:

* same identity: an interrupted run resumes, a finished run is reused as it is;
* another identity (or a directory with run files but no ``identity.json``): refused with a
  one-line :class:`~mmseq.errors.ConfigError` naming the differing keys, unless ``resume`` is
  off, which starts fresh (the directory's own run files are removed first, so no file of the
  old run can sit beside the new one's);
* ``continue_from=DIR``: a finished (or interrupted) run whose config differs ONLY by a smaller
  ``train.epochs`` (constant learning rate, its epochs a multiple of ``train.eval_every``) is
  continued for the extra epochs; its checkpoint is copied here and results record
  ``continued_from``. Under those conditions the result equals a fresh run of the new config.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmseq.config import ExperimentConfig
from mmseq.errors import ConfigError
from mmseq.identity import config_identity, identity_fields
from mmseq.io import write_json
from mmseq.train.checkpoint import CHECKPOINT_NAME

IDENTITY_FILE = "identity.json"
CHECKPOINT_DIR = "checkpoints"
#: Files and folders a run writes into its directory (removed when a run starts fresh there).
RUN_FILES = (IDENTITY_FILE, "results.json", "model.pt", CHECKPOINT_DIR)


@dataclass(frozen=True)
class RunClaim:
    """What :func:`claim_run_dir` decided.

    Attributes:
        identity: this run's config identity (the checkpoint key).
        resume_keys: checkpoint keys the trainer may resume from (this identity, plus the
            identity of the continued run with ``continue_from``).
        continued_from: ``{"identity", "epochs", "run_dir"}`` of the continued run, or None.
    """

    identity: str
    resume_keys: tuple[str, ...]
    continued_from: dict[str, Any] | None


def flatten(plain: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}`` (lists stay values)."""
    if not isinstance(plain, dict):
        return {prefix: plain}
    out: dict[str, Any] = {}
    for key, value in plain.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two ``identity_fields`` views: (old, new)."""
    a, b = flatten(old), flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _describe(diff: dict[str, tuple[Any, Any]], limit: int = 4) -> str:
    shown = [f"{k}: {o!r} -> {n!r}" for k, (o, n) in list(diff.items())[:limit]]
    more = f" and {len(diff) - limit} more" if len(diff) > limit else ""
    return "; ".join(shown) + more


def read_identity(run_dir: Path) -> dict[str, Any] | None:
    """The stored ``identity.json`` of ``run_dir`` (None when absent)."""
    path = run_dir / IDENTITY_FILE
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: unreadable run identity ({type(exc).__name__}); remove {run_dir} or "
            "start over with --no-resume"
        ) from None
    if not isinstance(stored, dict) or not isinstance(stored.get("identity"), str):
        raise ConfigError(f"{path}: not a run identity file; remove {run_dir} or use --no-resume")
    return stored


def _has_run_files(run_dir: Path) -> bool:
    return any((run_dir / name).exists() for name in RUN_FILES)


def _clear(run_dir: Path) -> None:
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _continuation(
    cfg: ExperimentConfig, identity: str, source: Path
) -> tuple[dict[str, Any], Path]:
    """Check that ``source`` holds a run this config may continue; returns (record, checkpoint)."""
    stored = read_identity(source)
    if stored is None:
        raise ConfigError(f"--continue-from {source}: no run there (no {IDENTITY_FILE})")
    checkpoint = source / CHECKPOINT_DIR / CHECKPOINT_NAME
    if not checkpoint.is_file():
        raise ConfigError(
            f"--continue-from {source}: the run has no checkpoint (it was trained without one)"
        )
    diff = differences(stored.get("fields", {}), identity_fields(cfg))
    if stored["identity"] == identity:
        raise ConfigError(f"--continue-from {source}: that run has this very config; nothing to do")
    if set(diff) != {"train.epochs"}:
        others = {k: v for k, v in diff.items() if k != "train.epochs"}
        raise ConfigError(
            f"--continue-from {source}: a run may only be continued with more train.epochs; "
            f"this config also changes {_describe(others)}"
        )
    old_epochs, new_epochs = diff["train.epochs"]
    if not new_epochs > old_epochs:
        raise ConfigError(
            f"--continue-from {source}: train.epochs must grow (was {old_epochs}, now {new_epochs})"
        )
    if cfg.train.lr_schedule != "constant":
        raise ConfigError(
            f"--continue-from {source}: train.lr_schedule '{cfg.train.lr_schedule}' depends on "
            "train.epochs, so a continued run would differ from a fresh one; train afresh"
        )
    if old_epochs % cfg.train.eval_every:
        raise ConfigError(
            f"--continue-from {source}: its train.epochs {old_epochs} is not a multiple of "
            f"train.eval_every {cfg.train.eval_every}, so it validated at another epoch than a "
            "fresh run would; train afresh"
        )
    record = {"identity": stored["identity"], "epochs": old_epochs, "run_dir": str(source)}
    return record, checkpoint


def read_claim(run_dir: Path) -> RunClaim:
    """The claim :func:`claim_run_dir` wrote for ``run_dir`` (other DDP ranks read it).

    Raises:
        ConfigError: if ``run_dir`` holds no identity (it was never claimed).
    """
    stored = read_identity(Path(run_dir))
    if stored is None:
        raise ConfigError(f"{run_dir} was not claimed by rank 0 (no {IDENTITY_FILE})")
    continued = stored.get("continued_from")
    identity = str(stored["identity"])
    keys = (identity,) if continued is None else (identity, str(continued["identity"]))
    return RunClaim(identity, keys, continued)


def claim_run_dir(
    run_dir: Path,
    cfg: ExperimentConfig,
    *,
    resume: bool = True,
    continue_from: Path | None = None,
) -> RunClaim:
    """Make ``run_dir`` this config's run directory, or refuse (see the module docstring).

    Raises:
        ConfigError: the directory holds another config's run (the message names the differing
            keys), or ``continue_from`` does not hold a run this config may continue.
    """
    run_dir = Path(run_dir)
    identity = config_identity(cfg)
    stored = read_identity(run_dir)
    if stored is not None and stored["identity"] != identity:
        if resume:
            diff = differences(stored.get("fields", {}), identity_fields(cfg))
            raise ConfigError(
                f"{run_dir} holds the run of another config (identity {stored['identity']}, this "
                f"one {identity}; {_describe(diff) or 'fields unknown'}): give this run its own "
                "directory (mmseq train --run-dir DIR, or leave --run-dir out), start over there "
                "(--no-resume), or continue that run for more epochs (--continue-from DIR)"
            )
        _clear(run_dir)
        stored = None
    elif stored is None and _has_run_files(run_dir):
        if resume:
            raise ConfigError(
                f"{run_dir} holds run files of unknown settings (no {IDENTITY_FILE}): give this "
                "run its own directory (--run-dir DIR), or start over there (--no-resume)"
            )
        _clear(run_dir)
    elif stored is not None and not resume:
        _clear(run_dir)
        stored = None

    continued = stored.get("continued_from") if stored is not None else None
    if continue_from is not None and stored is None:
        continued, checkpoint = _continuation(cfg, identity, Path(continue_from))
        target = run_dir / CHECKPOINT_DIR
        target.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT_NAME, CHECKPOINT_NAME + ".sha256"):
            shutil.copy2(checkpoint.parent / name, target / name)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        run_dir / IDENTITY_FILE,
        {"identity": identity, "fields": identity_fields(cfg), "continued_from": continued},
    )
    keys = (identity,) if continued is None else (identity, str(continued["identity"]))
    return RunClaim(identity, keys, continued)
