"""Crash safety and determinism through the real CLI, in subprocesses.

A training process is killed with SIGKILL (no handler, no cleanup) after its first checkpoint;
the same command then resumes and must finish with exactly the results of a run that was never
interrupted. Two uninterrupted runs with one config and seed must also agree exactly (CPU).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from rel_helpers import REPO, cli_env, results_fingerprint, train_cmd, write_config

EPOCHS = 20


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An uninterrupted run: (config path, results fingerprint)."""
    tmp = tmp_path_factory.mktemp("reference")
    config = write_config(tmp, epochs=EPOCHS)
    out = subprocess.run(train_cmd(config, tmp / "run"), cwd=REPO, env=cli_env(), text=True,
                         capture_output=True, timeout=180)
    assert out.returncode == 0, out.stderr
    return config, results_fingerprint(tmp / "run")


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"training ended (rc {proc.returncode}) before writing {path}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no checkpoint {path} after {timeout} s")
        time.sleep(0.01)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_results(reference) -> None:
    config, expected = reference
    run_dir = config.parent / "killed"
    ckpt = run_dir / "checkpoints" / "last.pt"
    proc = subprocess.Popen(train_cmd(config, run_dir), cwd=REPO, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(ckpt.with_name("last.pt.sha256"), proc, timeout=120)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Really mid-run: no results yet, and the checkpoint stops short of the last epoch.
    assert not (run_dir / "results.json").exists()
    killed_at = torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"]
    assert 1 <= killed_at < EPOCHS

    out = subprocess.run(train_cmd(config, run_dir), cwd=REPO, env=cli_env(), text=True,
                         capture_output=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert f"at epoch {killed_at}" in out.stderr  # the loop logged that it resumed there
    assert results_fingerprint(run_dir) == expected


@pytest.mark.slow
def test_same_config_and_seed_give_identical_results_twice_through_the_cli(reference) -> None:
    config, expected = reference
    run_dir = config.parent / "again"
    out = subprocess.run(train_cmd(config, run_dir), cwd=REPO, env=cli_env(), text=True,
                         capture_output=True, timeout=180)
    assert out.returncode == 0, out.stderr
    got = results_fingerprint(run_dir)
    assert got == expected
    # And the run learned something, so equality is not two empty results.
    assert got["test"]["hr@10"] > 10 / 150


@pytest.mark.slow
def test_a_different_seed_gives_different_results(reference) -> None:
    """Guards the test above: equal results must come from the seed, not from ignoring it."""
    config, expected = reference
    run_dir = config.parent / "seed4"
    out = subprocess.run(train_cmd(config, run_dir, "--set", "seed=4", "--set", "train.epochs=3"),
                         cwd=REPO, env=cli_env(), text=True, capture_output=True, timeout=180)
    assert out.returncode == 0, out.stderr
    got = results_fingerprint(run_dir)
    assert got["history"][0]["loss"] != expected["history"][0]["loss"]
