"""Token-length batches and the worker processes of mmseq's sentence encoder (topics/encoder.py).

:class:`TokenBatches` holds tokenised sentences sorted by token count, longest first, cut into
batches under a padded-token budget, so a batch carries almost no padding.
:func:`run_batches` embeds every batch, in this process or in a :class:`WorkerPool` of forked
processes that pull batches from a shared queue (longest first, so the workers finish together).
Each batch lands in the rows of its own sentences, so the result does not depend on which worker
ran which batch.

Workers are forked, never spawned: they inherit the loaded model without a copy or a pickle, and
start in milliseconds. Each runs ONE torch thread: GNU OpenMP, which torch's CPU
build uses, hangs in a forked child that starts a multi-threaded region after the parent used one
(measured here: a forked child with 2 threads hung on its first matmul; with 1 it ran).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import multiprocessing as mp
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# (ids, mask) -> embeddings.  Shapes: ids (B, L) int64, mask (B, L) bool -> (B, d) float32.
BatchFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
ContextFactory = Callable[[], AbstractContextManager[Any]]


def batch_bounds(lengths: np.ndarray, *, batch_tokens: int, max_batch_size: int) -> np.ndarray:
    """Cut sentences sorted by token count (longest first) into batches.

    A batch starting at sorted position ``i`` takes ``max(1, min(max_batch_size,
    batch_tokens // lengths[i]))`` sentences: its padded size (rows x its longest row) stays
    within ``batch_tokens`` unless one sentence alone is longer.

    Shapes:
        lengths: (S,) non-increasing token counts. Returns (B + 1,) int64 boundaries, 0 ... S.
    """
    bounds = [0]
    while bounds[-1] < len(lengths):
        start = bounds[-1]
        size = max(1, min(max_batch_size, batch_tokens // max(1, int(lengths[start]))))
        bounds.append(min(start + size, len(lengths)))
    return np.asarray(bounds, dtype=np.int64)


@dataclass(frozen=True)
class TokenBatches:
    """Tokenised sentences, sorted longest first, in batches under a padded-token budget.

    Attributes:
        order: (S,) input position of each sorted sentence.
        lengths: (S,) token counts in sorted order (non-increasing).
        flat: (T,) token ids of all sentences in sorted order, concatenated.
        offsets: (S + 1,) start of each sorted sentence in ``flat``.
        bounds: (B + 1,) batch boundaries in sorted positions (see :func:`batch_bounds`).
        pad_id: the id that fills padded positions.
    """

    order: np.ndarray
    lengths: np.ndarray
    flat: np.ndarray
    offsets: np.ndarray
    bounds: np.ndarray
    pad_id: int

    @classmethod
    def from_token_ids(
        cls,
        token_ids: Sequence[Sequence[int]],
        *,
        batch_tokens: int,
        max_batch_size: int,
        pad_id: int,
    ) -> TokenBatches:
        """Sort ``token_ids`` (one list per sentence) by length, longest first, and batch them.

        The sort is stable, so equal lengths keep input order and the batches are a pure
        function of the input.
        """
        lengths = np.fromiter(map(len, token_ids), dtype=np.int64, count=len(token_ids))
        order = np.argsort(-lengths, kind="stable")
        sorted_len = lengths[order]
        flat = np.fromiter(
            itertools.chain.from_iterable(token_ids[i] for i in order),
            dtype=np.int64,
            count=int(lengths.sum()),
        )
        offsets = np.concatenate([[0], np.cumsum(sorted_len)]).astype(np.int64)
        bounds = batch_bounds(sorted_len, batch_tokens=batch_tokens, max_batch_size=max_batch_size)
        return cls(order, sorted_len, flat, offsets, bounds, int(pad_id))

    @property
    def num_batches(self) -> int:
        return len(self.bounds) - 1

    def rows(self, b: int) -> np.ndarray:
        """Input positions of the sentences of batch ``b`` (in batch row order)."""
        return self.order[self.bounds[b] : self.bounds[b + 1]]

    def padded(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``b`` as right-padded ids and its attention mask.

        Shapes:
            returns ids (n_b, L_b) int64 and mask (n_b, L_b) bool, L_b = longest row of b.
        """
        start, stop = int(self.bounds[b]), int(self.bounds[b + 1])
        lens = self.lengths[start:stop]
        mask = np.arange(int(lens[0]))[None, :] < lens[:, None]  # (n_b, L_b)
        ids = np.full(mask.shape, self.pad_id, dtype=np.int64)
        ids[mask] = self.flat[self.offsets[start] : self.offsets[stop]]  # row-major = row order
        return ids, mask


def fork_available() -> bool:
    """Whether this process may fork worker processes (Linux and similar; not in a daemon)."""
    return "fork" in mp.get_all_start_methods() and not mp.current_process().daemon


# Worker-process state, set once by _init_worker (each worker is its own process).
_WORKER: dict[str, Any] = {}


def _init_worker(fn: BatchFn, context: ContextFactory) -> None:
    import torch

    torch.set_num_threads(1)  # see the module docstring: >1 thread hangs in a forked child
    stack = contextlib.ExitStack()
    stack.enter_context(context())  # held for the worker's life: autocast casts weights once
    _WORKER.update(fn=fn, stack=stack)


def _run_in_worker(b: int, ids: np.ndarray, mask: np.ndarray) -> tuple[int, np.ndarray]:
    return b, _WORKER["fn"](ids, mask)


def _fork_frozen(executor: ProcessPoolExecutor) -> None:
    """Fork ``executor``'s workers now, with this process's objects moved out of the GC's reach.

    A forked child shares the parent's memory pages until one is written; CPython's cyclic GC
    writes into every tracked object it scans, so each worker's first collections would copy
    the parent's whole object heap page by page. ``gc.freeze()`` before the fork puts those
    objects in the permanent generation, which the children's collections skip.
    """
    gc.collect()
    gc.freeze()
    try:
        executor.submit(int).result()  # a fork-start pool launches every worker at its first task
    finally:
        gc.unfreeze()


class WorkerPool:
    """``workers`` forked processes, one torch thread each, that run ``fn`` on padded batches.

    The processes inherit ``fn`` (and the model inside it) at the fork, with no copy and no
    pickle; each call then sends only padded batches and gets embeddings back. The pool lives
    until :meth:`close` (also run when it is garbage-collected and at interpreter exit), so
    repeated calls skip the fork and each worker's first-batch warm-up (about 0.1-0.2 s).

    Args:
        fn: embeds one padded batch (see :data:`BatchFn`).
        workers: process count, >= 2.
        context: builds the context ``fn`` runs under (e.g. inference mode + autocast); each
            worker enters it once for its whole life.

    Raises:
        RuntimeError: this process cannot fork (see :func:`fork_available`).
    """

    def __init__(
        self, fn: BatchFn, workers: int, *, context: ContextFactory = contextlib.nullcontext
    ) -> None:
        if not fork_available():
            raise RuntimeError(f"Expected a process that can fork {workers} encoder workers")
        self.fn, self.workers = fn, workers
        self._executor: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("fork"),
            initializer=_init_worker,
            initargs=(fn, context),  # inherited by fork: no pickle, no copy
        )
        self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=True)
        _fork_frozen(self._executor)

    @property
    def closed(self) -> bool:
        return self._executor is None

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        if self._executor is not None:
            self._finalizer()
            self._executor = None

    def map_batches(
        self,
        batches: TokenBatches,
        out: np.ndarray,
        *,
        on_batch: Callable[[int], None] = lambda n: None,
    ) -> np.ndarray:
        """Embed every batch into ``out`` at rows ``batches.rows(b)``; workers pull batches in
        order (longest first), so they finish together.

        Raises:
            RuntimeError: a worker process died (for example killed for memory); the pool is
                closed then.

        Shapes:
            out: (S, d) float32; returned.
        """
        if self._executor is None:
            raise RuntimeError("Expected an open WorkerPool (this one was closed)")
        futures: list[Future[tuple[int, np.ndarray]]] = []
        try:
            futures = [
                self._executor.submit(_run_in_worker, b, *batches.padded(b))
                for b in range(batches.num_batches)
            ]
            for future in as_completed(futures):
                b, emb = future.result()
                rows = batches.rows(b)
                out[rows] = emb
                on_batch(len(rows))
        except BrokenProcessPool as exc:
            self.close()
            raise RuntimeError(
                f"An encoder worker process died ({exc}); it may have run out of memory. "
                "Set TopicConfig.workers: 1 to encode in this process"
            ) from None
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return out


def run_batches(
    fn: BatchFn,
    batches: TokenBatches,
    out: np.ndarray,
    *,
    pool: WorkerPool | None = None,
    context: ContextFactory = contextlib.nullcontext,
    on_batch: Callable[[int], None] = lambda n: None,
) -> np.ndarray:
    """Embed every batch into ``out`` (rows in input order): in ``pool`` when given (its own
    ``fn`` and context), else in this process with ``fn`` under one ``context()``.

    Args:
        fn: embeds one padded batch (in-process path).
        batches: the batches.
        out: receives batch ``b``'s embeddings at rows ``batches.rows(b)``.
        pool: worker processes, or None for this process (its torch threads as they are).
        context: builds the context ``fn`` runs under in this process.
        on_batch: called with each finished batch's sentence count (a progress bar).

    Shapes:
        out: (S, d) float32; returned.
    """
    if pool is not None:
        return pool.map_batches(batches, out, on_batch=on_batch)
    with context():
        for b in range(batches.num_batches):
            rows = batches.rows(b)
            out[rows] = fn(*batches.padded(b))
            on_batch(len(rows))
    return out
