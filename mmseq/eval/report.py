"""Results JSON with provenance (house style 21; protocols.md "What a results file holds").

A results file holds the protocol, the data content hash, the seed, the resolved config (and its
hash), the metric values, free-form ``extra`` fields (chosen epoch, wall time per stage, ...) and
:func:`provenance`: git SHA and dirty flag, machine, threads, device, library versions, UTC time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import platform
import socket
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

import mmseq
from mmseq.config import to_dict
from mmseq.data.schema import settings_hash
from mmseq.errors import ArtifactError
from mmseq.io import write_json

#: Bumped when the layout of the results file changes.
RESULTS_FORMAT = 1
REQUIRED_KEYS: tuple[str, ...] = (
    "format", "protocol", "metrics", "config", "config_hash", "seed", "data_hash", "provenance",
    "extra",
)
#: Written since the data pipeline and metric warnings are recorded; older files lack them.
OPTIONAL_KEYS: tuple[str, ...] = ("data_pipeline", "warnings", "trivial_metrics")
_REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    """Output of ``git args`` in the repository, or None without git / outside a repository."""
    try:
        done = subprocess.run(
            ["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


#: The checkout's state when this process pinned it (:func:`pin_code_state`), else None.
_PINNED: dict[str, Any] | None = None


def _code_state() -> dict[str, Any]:
    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain") if sha else None
    return {"git_sha": sha or None, "git_dirty": None if status is None else bool(status)}


def pin_code_state() -> dict[str, Any]:
    """Record the checkout's commit and dirtiness as this process's code (first call wins).

    A long process (a results table, a study) loads mmseq's modules when it starts; if the
    checkout moves on while it runs, the commit at the moment a result is written is not the
    code that produced it. :func:`run_experiment` pins at its start, and :func:`provenance`
    then reports the pinned state (and says when the checkout changed since).
    """
    global _PINNED
    if _PINNED is None:
        _PINNED = _code_state()
    return dict(_PINNED)


def provenance() -> dict[str, Any]:
    """Where and with what a result was produced.

    Returns:
        ``git_sha`` (None without git), ``git_dirty`` (None when unknown; True when tracked or
        untracked, non-ignored files differ from the commit), ``hostname``, ``cpu``,
        ``cpu_count``, ``torch_threads``, ``cuda_device`` (None without CUDA), ``versions``
        (python, mmseq, torch, torch_geometric, numpy) and ``time_utc`` (ISO 8601). When the
        process pinned its code state (:func:`pin_code_state`), ``git_sha``/``git_dirty`` are the
        pinned ones, and if the checkout changed since, ``checkout_changed_during_run`` is True
        and ``git_sha_now``/``git_dirty_now`` hold the state at this call.
    """
    now = _code_state()
    code = dict(_PINNED) if _PINNED is not None else now
    moved = _PINNED is not None and now != _PINNED
    cuda = None
    if torch.cuda.is_available():
        cuda = torch.cuda.get_device_name(torch.cuda.current_device())
    changed = (
        {"checkout_changed_during_run": True, "git_sha_now": now["git_sha"],
         "git_dirty_now": now["git_dirty"]}
        if moved else {}
    )
    return {
        **code,
        **changed,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_device": cuda,
        "versions": {
            "python": platform.python_version(),
            "mmseq": mmseq.__version__,
            "torch": torch.__version__,
            "torch_geometric": _version("torch_geometric"),
            "numpy": np.__version__,
        },
        "time_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _plain_config(config: Any) -> Any:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return to_dict(config)
    if isinstance(config, Mapping):
        return to_dict(dict(config))
    raise TypeError(
        f"Expected 'config' to be a config dataclass or a mapping (got {type(config).__name__})"
    )


def write_results(
    path: str | Path,
    *,
    metrics: Mapping[str, float],
    config: Any,
    seed: int,
    data_hash: str,
    protocol: str,
    extra: Mapping[str, Any] | None = None,
    data_pipeline: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
) -> Path:
    """Write a results JSON file atomically (via :func:`mmseq.io.write_json`).

    Args:
        path: the file to write (parent folders are created).
        metrics: metric values, e.g. the output of :func:`mmseq.eval.protocol.evaluate`.
        config: the resolved config: a (nested) config dataclass, converted with
            :func:`mmseq.config.to_dict`, or a plain mapping.
        seed: the run's seed.
        data_hash: ``Interactions.content_hash()`` of the data set.
        protocol: the evaluation protocol the metrics were computed under.
        extra: other JSON-able fields (chosen epoch, wall time per stage, data statistics, ...).
        data_pipeline: where the data came from and what each stage kept: ``raw_sha256`` (of
            the raw file; None for generated data) and ``stages`` (rows/users/items kept and
            dropped per stage, :func:`mmseq.data.stats.pipeline_stages`).
        warnings: reasons the metrics may mislead, e.g. trivial cut-offs; ``trivial_metrics``
            is True when there is any.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: if a metric value is not a finite number.
    """
    values: dict[str, float] = {}
    for name, value in metrics.items():
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"Expected metric '{name}' to be finite (got {value!r})")
        values[str(name)] = number
    plain = _plain_config(config)
    payload = {
        "format": RESULTS_FORMAT,
        "protocol": protocol,
        "metrics": values,
        "config": plain,
        "config_hash": settings_hash(plain),
        "seed": int(seed),
        "data_hash": data_hash,
        "provenance": provenance(),
        "extra": to_dict(dict(extra or {})),
        "data_pipeline": to_dict(dict(data_pipeline or {})),
        "warnings": [str(w) for w in warnings],
        "trivial_metrics": bool(warnings),
    }
    return write_json(path, payload)


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a results file written by :func:`write_results`.

    Raises:
        ArtifactError: if the file is missing, is not valid JSON, or lacks a required field.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"Missing results file {path}")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: invalid JSON ({exc}); rerun the evaluation") from None
    if not isinstance(payload, dict):
        raise ArtifactError(f"{path}: expected a JSON object (got {type(payload).__name__})")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise ArtifactError(f"{path}: missing fields {missing}; rerun the evaluation")
    return payload
