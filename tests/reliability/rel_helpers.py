"""Shared helpers of the reliability tests: tiny synthetic configs and CLI subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# A synthetic run that trains for a few seconds on one CPU thread (about 0.2 s per epoch).
TRAIN_YAML = """\
data:
  path: synthetic
  synthetic: {{num_users: 300, num_items: 150, seed: 0, with_text: false}}
split: {{protocol: loo-full}}
model:
  name: {model}
train: {{epochs: {epochs}, batch_size: 64, lr: 0.005, patience: 1000, device: cpu,
         progress: false, threads: 1, max_len: 20}}
seed: 3
output_dir: {out}
artifacts_dir: {out}/artifacts
"""


def write_config(tmp: Path, *, model: str = "sasrec", epochs: int = 30, text: str | None = None,
                 name: str = "cfg.yaml") -> Path:
    """Write an experiment YAML into ``tmp`` (``text`` replaces the default tiny config)."""
    path = tmp / name
    path.write_text(text if text is not None else
                    TRAIN_YAML.format(model=model, epochs=epochs, out=tmp.as_posix()))
    return path


def cli_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def train_cmd(config: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mmseq", "-v", "train", "--config", str(config),
            "--run-dir", str(run_dir), *extra]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m mmseq <args>`` in the repository root, captured."""
    return subprocess.run([sys.executable, "-m", "mmseq", *args], cwd=REPO, env=cli_env(),
                          text=True, capture_output=True, timeout=timeout)


def results_fingerprint(run_dir: Path) -> dict[str, Any]:
    """Everything in results.json that must not depend on timing: metrics, epochs, history."""
    r = json.loads((run_dir / "results.json").read_text())
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in r["extra"]["history"]]
    return {"test": r["metrics"], "valid": r["extra"]["valid"],
            "best_epoch": r["extra"]["best_epoch"], "epochs_run": r["extra"]["epochs_run"],
            "history": history, "data_hash": r["data_hash"], "config_hash": r["config_hash"]}
