"""Full-ranking score products, written into a reused buffer while an evaluation runs.

Scoring a batch of users against every item is one GEMM, ``h @ items.T`` (plus an item bias for
some heads), whose output is large: 1,024 users x 11,924 items is 49 MB. A fresh tensor of that
size is a fresh ``mmap`` on the CPU, so its first writer pays a page fault per 4 KiB page: 13-15 ms
of a 36 ms product on one thread (measured, ``docs/benchmarks.md`` section 1), every batch.
While :func:`score_workspace` is active (the evaluation loops open it), :func:`item_scores`
writes the batch's scores into one buffer kept for the whole pass instead; the values are the
same bits (the same kernel, only the destination differs).

Safety rules, so that no caller ever sees its scores overwritten:
- the buffer is handed out at most once between two :meth:`ScoreWorkspace.release` calls (the
  loop releases it when it is done with a batch); a second product in the same batch, e.g. a
  model that adds two score matrices, gets a fresh tensor;
- never while autograd records (training, or ``requires_grad`` inputs);
- outside the context (recommend, explain, training), every call returns a fresh tensor.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
from torch import Tensor


class ScoreWorkspace:
    """One reusable (rows, columns) output buffer per dtype and device; thin state only."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[torch.dtype, torch.device], Tensor] = {}
        self._taken = False

    def take(self, rows: int, columns: int, like: Tensor) -> Tensor | None:
        """A contiguous (rows, columns) tensor of ``like``'s dtype and device, or None when the
        buffer is already out in this batch."""
        if self._taken:
            return None
        key = (like.dtype, like.device)
        buf = self._buffers.get(key)
        if buf is None or buf.numel() < rows * columns:
            buf = torch.empty(rows * columns, dtype=like.dtype, device=like.device)
            self._buffers[key] = buf
        self._taken = True
        return buf[: rows * columns].view(rows, columns)

    def release(self) -> None:
        """The batch's scores are no longer read: the buffer may be handed out again."""
        self._taken = False


_ACTIVE: contextvars.ContextVar[ScoreWorkspace | None] = contextvars.ContextVar(
    "mmseq_score_workspace", default=None
)


@contextlib.contextmanager
def score_workspace() -> Iterator[ScoreWorkspace]:
    """Reuse one score buffer inside the block; the caller releases it after each batch."""
    workspace = ScoreWorkspace()
    token = _ACTIVE.set(workspace)
    try:
        yield workspace
    finally:
        _ACTIVE.reset(token)


def item_scores(h: Tensor, items: Tensor, bias: Tensor | None = None) -> Tensor:
    """Scores of every item for every row: ``h @ items.T (+ bias)``.

    Shapes: h (B, d), items (N, d), bias (N,) or None -> (B, N). With a bias it is added inside
    the product's pass (``addmm``: the same values as adding it afterwards, one pass less).
    """
    workspace = _ACTIVE.get()
    out = None
    if workspace is not None and not torch.is_grad_enabled() and h.dtype == items.dtype:
        out = workspace.take(h.shape[0], items.shape[0], h)
    if bias is None:
        return h @ items.T if out is None else torch.mm(h, items.T, out=out)
    if out is None:
        return torch.addmm(bias, h, items.T)
    return torch.addmm(bias, h, items.T, out=out)
