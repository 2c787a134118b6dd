"""Concurrent writers on one artifacts folder: the lock serialises them, nothing is corrupted."""

from __future__ import annotations

import logging
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rel_helpers import REPO, cli_env

from graphs.compose import build_all
from mmseq.data.graph_bundle import GraphBundle
from mmseq.data.synthetic import SyntheticConfig, generate_synthetic
from mmseq.errors import ArtifactError
from mmseq.io import verify_checksum
from mmseq.lock import LockTimeoutError, file_lock
from topics.cache import TopicCache

SPECS = [{"builder": "interaction_graph"}, {"builder": "rating_graph"}]
FORK = mp.get_context("fork")


def _train():
    return generate_synthetic(SyntheticConfig(num_users=60, num_items=40, with_text=False))


def _build(cache_dir: str, barrier, queue) -> None:
    barrier.wait()
    bundle = build_all(SPECS, _train(), cache_dir=cache_dir)
    queue.put((dict(bundle.meta["cache"]),
               {n: bundle[n].edge_weight.numpy().tobytes() for n in bundle.names()}))


def _hold(directory: str, seconds: float, ready) -> None:
    with file_lock(directory):
        ready.set()
        time.sleep(seconds)


def test_lock_waits_for_the_holder_then_proceeds(tmp_path: Path) -> None:
    ready = FORK.Event()
    holder = FORK.Process(target=_hold, args=(str(tmp_path), 1.0, ready))
    holder.start()
    assert ready.wait(20)
    start = time.monotonic()
    with file_lock(tmp_path, timeout=20):
        waited = time.monotonic() - start
    holder.join(20)
    assert 0.3 < waited < 20  # it really waited for the other process


def test_lock_timeout_is_a_clear_error_naming_the_folder(tmp_path: Path) -> None:
    ready = FORK.Event()
    holder = FORK.Process(target=_hold, args=(str(tmp_path), 3.0, ready))
    holder.start()
    try:
        assert ready.wait(20)
        with pytest.raises(LockTimeoutError, match=rf"Could not lock {tmp_path} within 0.2 s"):
            with file_lock(tmp_path, timeout=0.2):
                pass
        assert issubclass(LockTimeoutError, ArtifactError)  # the CLI prints it in one line
    finally:
        holder.terminate()
        holder.join(20)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    ready = FORK.Event()
    holder = FORK.Process(target=_hold, args=(str(tmp_path), 60.0, ready))
    holder.start()
    assert ready.wait(20)
    holder.kill()  # SIGKILL: no cleanup code runs
    holder.join(20)
    with file_lock(tmp_path, timeout=5):
        pass
    assert [p.name for p in tmp_path.iterdir()] == []  # and no lock file litters the cache


def test_lock_rejects_negative_timeout(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timeout >= 0"):
        with file_lock(tmp_path, timeout=-1):
            pass


def test_concurrent_build_all_calls_share_one_valid_cache(tmp_path: Path) -> None:
    cache = tmp_path / "graphs"
    n = 4
    barrier, queue = FORK.Barrier(n), FORK.Queue()
    procs = [FORK.Process(target=_build, args=(str(cache), barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    statuses = sorted(tuple(sorted(s.items())) for s, _ in results)
    # Exactly one process built each part; the others waited and read its cache entry.
    assert statuses == [(("interaction_graph", "built"), ("rating_graph", "built"))] + \
        [(("interaction_graph", "hit"), ("rating_graph", "hit"))] * (n - 1)
    assert all(weights == results[0][1] for _, weights in results)
    files = sorted(cache.glob("*.pt"))
    assert [f.name.split("-")[0] for f in files] == ["interaction_graph", "rating_graph"]
    for f in files:
        verify_checksum(f)
        GraphBundle.load(f)
    assert not list(cache.glob(".*.tmp"))  # no temporary file left behind
    # A fresh call now hits the cache for every part.
    again = build_all(SPECS, _train(), cache_dir=cache)
    assert again.meta["cache"] == {"interaction_graph": "hit", "rating_graph": "hit"}


def _save_embeddings(root: str, value: float, barrier, rounds: int) -> None:
    cache = TopicCache(root)
    barrier.wait()
    for _ in range(rounds):
        cache.save_embeddings("k", np.full((50, 8), value, dtype=np.float32))


def test_concurrent_topic_cache_writers_never_leave_a_mismatched_checksum(tmp_path: Path,
                                                                         caplog) -> None:
    """Two writers with DIFFERENT contents race on one key; every state a reader sees is valid."""
    barrier = FORK.Barrier(2)
    writers = [FORK.Process(target=_save_embeddings, args=(str(tmp_path), v, barrier, 60))
               for v in (1.0, 2.0)]
    for w in writers:
        w.start()
    cache, reads = TopicCache(tmp_path), 0
    with caplog.at_level(logging.WARNING, logger="topics.cache"):
        while any(w.is_alive() for w in writers):
            emb = cache.load_embeddings("k")  # None: missing yet, or failed its checksum (warned)
            if emb is not None:
                assert np.unique(emb).size == 1
                reads += 1
    # Without the lock a reader meets a file beside the other writer's checksum (a warning here).
    assert [r.getMessage() for r in caplog.records if "cannot be used" in r.getMessage()] == []
    assert reads > 0
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    final = cache.load_embeddings("k")
    assert final is not None and float(final[0, 0]) in (1.0, 2.0)
    verify_checksum(cache.embeddings_path("k"))


@pytest.mark.slow
def test_two_build_graphs_processes_on_one_artifacts_dir(tmp_path: Path) -> None:
    config = tmp_path / "g.yaml"
    config.write_text(
        "data: {path: synthetic, synthetic: {num_users: 200, num_items: 120, with_text: false}}\n"
        f"artifacts_dir: {tmp_path / 'artifacts'}\n"
        "graphs: [{builder: interaction_graph}, {builder: rating_graph}]\n"
    )
    cmd = [sys.executable, "scripts/build_graphs.py", "--config", str(config), "--no-progress"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=cli_env(), text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr
    files = sorted((tmp_path / "artifacts" / "graphs").glob("*.pt"))
    assert len(files) == 3  # two cached parts + the bundle training reads
    for f in files:
        verify_checksum(f)
        GraphBundle.load(f)
    bundle = GraphBundle.load(next(f for f in files if f.name.startswith("bundle-")))
    assert bundle.names() == ["interaction_graph", "rating_graph"]
