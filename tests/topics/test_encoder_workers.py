"""topics/batching.py and the worker path of topics/encoder.py: batches, reassembly, processes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from mmseq.errors import ConfigError
from topics.batching import TokenBatches, WorkerPool, batch_bounds, run_batches
from topics.config import TopicConfig
from topics.encoder import MiniLMEncoder

# Token ids of four sentences; by length (stable, longest first): rows 1, 3, 0, 2.
TOKEN_IDS = [[1, 2], [3, 4, 5, 6], [7], [8, 9, 10, 11]]


def test_batch_bounds_by_hand() -> None:
    lengths = np.array([10, 8, 8, 5, 3, 3, 2])
    # start 0: 20 // 10 = 2 rows; start 2: 20 // 8 = 2; start 4: 20 // 3 = 6, capped at 3.
    got = batch_bounds(lengths, batch_tokens=20, max_batch_size=3)
    np.testing.assert_array_equal(got, [0, 2, 4, 7])
    # A sentence longer than the budget still gets a batch of its own.
    np.testing.assert_array_equal(
        batch_bounds(np.array([50, 4]), batch_tokens=20, max_batch_size=8), [0, 1, 2]
    )
    np.testing.assert_array_equal(
        batch_bounds(np.array([], dtype=np.int64), batch_tokens=8, max_batch_size=2), [0]
    )


def test_token_batches_by_hand() -> None:
    tb = TokenBatches.from_token_ids(TOKEN_IDS, batch_tokens=8, max_batch_size=4, pad_id=0)
    np.testing.assert_array_equal(tb.order, [1, 3, 0, 2])
    np.testing.assert_array_equal(tb.lengths, [4, 4, 2, 1])
    # start 0: 8 // 4 = 2 rows; start 2: 8 // 2 = 4 rows, capped by the 2 left.
    np.testing.assert_array_equal(tb.bounds, [0, 2, 4])
    assert tb.num_batches == 2
    ids, mask = tb.padded(0)
    np.testing.assert_array_equal(ids, [[3, 4, 5, 6], [8, 9, 10, 11]])
    assert mask.all() and mask.dtype == bool
    ids, mask = tb.padded(1)
    np.testing.assert_array_equal(ids, [[1, 2], [7, 0]])
    np.testing.assert_array_equal(mask, [[True, True], [True, False]])
    np.testing.assert_array_equal(tb.rows(1), [0, 2])


def _sum_len_pid(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(B, 4): token-id sum, token count, the computing process id, autocast on (1) or off (0)."""
    out = np.empty((len(ids), 4), dtype=np.float32)
    out[:, 0] = (ids * mask).sum(axis=1)
    out[:, 1] = mask.sum(axis=1)
    out[:, 2] = os.getpid()
    out[:, 3] = torch.is_autocast_enabled("cpu")
    return out


def _bf16_autocast() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


# One sentence per batch (budget 4 tokens, each sentence 3 or 4 long): 6 batches for 2 workers.
SIX = [[1, 1, 1], [2, 2, 2, 2], [3, 3, 3], [4, 4, 4, 4], [5, 5, 5], [6, 6, 6, 6]]
EXPECTED_SUM_LEN = [[3, 3], [8, 4], [9, 3], [16, 4], [15, 3], [24, 4]]


@pytest.mark.parametrize("workers", [1, 2])
def test_run_batches_reassembles_rows_in_input_order(workers: int) -> None:
    tb = TokenBatches.from_token_ids(SIX, batch_tokens=4, max_batch_size=4, pad_id=0)
    assert tb.num_batches == 6
    pool = WorkerPool(_sum_len_pid, workers, context=_bf16_autocast) if workers > 1 else None
    worker_pids: set[int] = set()
    for _ in range(2):  # the second call reuses the same processes
        done: list[int] = []
        out = run_batches(
            _sum_len_pid,
            tb,
            np.zeros((6, 4), dtype=np.float32),
            pool=pool,
            context=_bf16_autocast,
            on_batch=done.append,
        )
        np.testing.assert_array_equal(out[:, :2], EXPECTED_SUM_LEN)
        assert sorted(done) == [1] * 6
        np.testing.assert_array_equal(out[:, 3], 1)  # the context was active in every process
        pids = set(out[:, 2].astype(int).tolist())
        if pool is None:
            assert pids == {os.getpid()}
        else:
            assert os.getpid() not in pids and 1 <= len(pids) <= 2
            worker_pids |= pids
            assert len(worker_pids) <= 2  # no new processes on the second call
    assert not torch.is_autocast_enabled("cpu")  # this process left the context
    if pool is not None:
        pool.close()
        pool.close()  # idempotent
        assert pool.closed
        with pytest.raises(RuntimeError, match="closed"):
            pool.map_batches(tb, out)


def _fail_on_long(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if mask.shape[1] == 4:
        raise ValueError("boom in a worker")
    return _sum_len_pid(ids, mask)


def _die(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    os._exit(3)


def test_worker_errors_reach_the_caller() -> None:
    tb = TokenBatches.from_token_ids(SIX, batch_tokens=4, max_batch_size=4, pad_id=0)
    out = np.zeros((6, 4), dtype=np.float32)
    pool = WorkerPool(_fail_on_long, 2)
    with pytest.raises(ValueError, match="boom in a worker"):
        pool.map_batches(tb, out)
    pool.close()
    pool = WorkerPool(_die, 2)
    with pytest.raises(RuntimeError, match="worker process died.*workers: 1"):
        pool.map_batches(tb, out)
    assert pool.closed


def test_resolve_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    cores = len(os.sched_getaffinity(0))
    assert MiniLMEncoder(threads=3).resolve_workers(10) == 3  # auto: one per thread of budget
    assert MiniLMEncoder(threads=3).resolve_workers(2) == 2  # never more than the batches
    assert MiniLMEncoder().resolve_workers(100) == min(cores, 100)
    assert MiniLMEncoder(workers=0).resolve_workers(10) == 1
    assert MiniLMEncoder(workers=4, threads=1).resolve_workers(10) == 4  # explicit wins
    assert MiniLMEncoder(device="cuda:0").resolve_workers(10) == 1
    monkeypatch.setattr("topics.encoder.fork_available", lambda: False)
    assert MiniLMEncoder(workers=4).resolve_workers(10) == 1


def test_workers_validated_and_kept_out_of_cache_keys() -> None:
    with pytest.raises(ConfigError, match="workers' >= -1"):
        MiniLMEncoder(workers=-2)
    with pytest.raises(ConfigError, match="CPU encoding"):
        MiniLMEncoder(workers=2, device="cuda")
    with pytest.raises(ConfigError, match="TopicConfig.workers >= -1"):
        TopicConfig(workers=-3)
    with pytest.raises(ConfigError, match="CPU encoding"):
        TopicConfig(workers=2, device="cuda:1")
    a, b = TopicConfig(workers=1), TopicConfig(workers=3)
    assert a.encoder_settings() == b.encoder_settings()
    assert a.clustering_settings() == b.clustering_settings()
    assert "workers" not in a.clustering_settings()
    assert MiniLMEncoder.from_config(b).workers == 3
    assert MiniLMEncoder(workers=1).encoder_id == MiniLMEncoder(workers=2).encoder_id


def test_real_minilm_workers_match_in_process(minilm: MiniLMEncoder) -> None:
    """Two forked workers give the in-process embeddings up to float noise, in the right rows."""
    sentences = [
        f"Review {i}: the {w} " + "sounds really good and stays in tune " * (i % 4)
        for i, w in enumerate(["strings", "cable", "tuner", "pedal", "capo", "strap"] * 4)
    ]
    kwargs = {"batch_tokens": 96, "max_batch_size": 8}  # several batches of mixed lengths
    one = MiniLMEncoder(workers=1, **kwargs)
    two = MiniLMEncoder(workers=2, **kwargs)
    one._model = two._model = minilm.model  # share the loaded weights
    threads = torch.get_num_threads()
    a, b = one.encode(sentences), two.encode(sentences)
    assert torch.get_num_threads() == threads  # restored
    assert b.shape == (24, 384) and b.dtype == np.float32
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.9999, cosine
    # Right rows: each row is nearest to its own sentence's in-process embedding.
    np.testing.assert_array_equal((b @ a.T).argmax(axis=1), np.arange(24))
    pool = two._pool
    assert pool is not None and pool.workers == 2
    np.testing.assert_array_equal(two.encode(sentences), b)  # same processes, same batches
    assert two._pool is pool
    two.close()
    assert pool.closed and two._pool is None
    stock = minilm.model.encode(sentences)
    cos_stock = (b * stock).sum(1) / np.linalg.norm(b, axis=1) / np.linalg.norm(stock, axis=1)
    assert cos_stock.min() > 0.999, cos_stock


def test_attention_kernel_is_part_of_the_encoder(minilm: MiniLMEncoder) -> None:
    assert minilm.attn_implementation == "eager"
    assert minilm.model[0].auto_model.config._attn_implementation == "eager"
    assert minilm.encoder_id.endswith("|attn=eager")
    assert MiniLMEncoder(attn_implementation="sdpa").encoder_id.endswith("|attn=sdpa")
    assert MiniLMEncoder(attn_implementation="").encoder_id.endswith("|attn=default")


def _freeze_count(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import gc

    return np.full((len(ids), 1), gc.get_freeze_count(), dtype=np.float32)


def test_workers_fork_with_the_parents_objects_frozen_and_the_parent_unfrozen() -> None:
    """The parent's objects are out of the workers' GC (no copy-on-write of the whole heap by
    their collections); the parent's own GC is back to normal once the pool exists."""
    import gc

    keep = [{"i": i} for i in range(1000)]  # tracked objects the parent holds at the fork
    pool = WorkerPool(_freeze_count, 2)
    try:
        assert gc.get_freeze_count() == 0
        tb = TokenBatches.from_token_ids(SIX, batch_tokens=4, max_batch_size=4, pad_id=0)
        out = pool.map_batches(tb, np.zeros((6, 1), dtype=np.float32))
        assert (out >= len(keep)).all()  # every worker saw at least these objects frozen
    finally:
        pool.close()
