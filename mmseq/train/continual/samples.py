"""Next-item samples as row indices into one time-sorted interaction table.

A *sample* is one interaction (its item is the target) together with its context: the last
``max_len`` interactions of the same user BEFORE it, whatever their period (at serving time a
model reads the whole past). A period's training set D_t is the set of rows of period t that have
a non-empty context (a user's very first interaction has nothing to predict it from and is never a
target, as in ``mmseq.data.sampling.next_item_batches``); an exemplar of ADER is such a row too.
Sets of samples are therefore plain int64 tensors of row indices, and contexts are gathered only
for the batch at hand.

To reach ANY sequential model through the ``Recommender`` contract, a batch of samples becomes a
:class:`~mmseq.data.inputs.ModelInputs` with one pseudo-user per sample (row ``j`` of
``seq_items`` is sample ``j``'s context, most recent item last): ``model.score_all(arange(S),
inputs)`` then gives the next-item logits of every sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mmseq.data.inputs import ModelInputs
from mmseq.data.schema import Interactions
from mmseq.errors import DataError
from mmseq.models.base import Recommender


@dataclass(frozen=True, eq=False)
class SequenceTable:
    """Interactions sorted by (user, time), ties in file order, as tensors on one device.

    Attributes:
        num_items: size of the item id space.
        user, item, timestamp: (N,) int64.
        rating: (N,) float32.
        start: (N,) int64 row index of the first row of the row's user.
        period: (N,) int64 period of each row (0-based).
    """

    num_items: int
    user: Tensor
    item: Tensor
    timestamp: Tensor
    rating: Tensor
    start: Tensor
    period: Tensor

    @classmethod
    def build(cls, data: Interactions, period_index: np.ndarray) -> SequenceTable:
        """Sort ``data`` chronologically per user; ``period_index`` (N,) follows its rows."""
        period_index = np.asarray(period_index)
        if period_index.shape != (len(data),):
            raise DataError(
                f"Expected 'period_index' of shape ({len(data)},) like the interactions "
                f"(got {period_index.shape})"
            )
        order = data.chronological_order()
        user = data.user[order].astype(np.int64)
        counts = np.bincount(user, minlength=data.num_users)
        first_row = np.cumsum(counts) - counts  # (num_users,)
        return cls(
            num_items=data.num_items,
            user=torch.from_numpy(user),
            item=torch.from_numpy(data.item[order].astype(np.int64)),
            timestamp=torch.from_numpy(data.timestamp[order].astype(np.int64)),
            rating=torch.from_numpy(data.rating[order].astype(np.float32)),
            start=torch.from_numpy(first_row[user].astype(np.int64)),
            period=torch.from_numpy(period_index[order].astype(np.int64)),
        )

    def __len__(self) -> int:
        return int(self.user.numel())

    @property
    def device(self) -> torch.device:
        return self.user.device

    def to(self, device: torch.device | str) -> SequenceTable:
        return SequenceTable(self.num_items, *(t.to(device) for t in (
            self.user, self.item, self.timestamp, self.rating, self.start, self.period)))

    def sample_rows(self, periods: list[int] | tuple[int, ...] | range) -> Tensor:
        """(S,) ascending rows of the given periods that have a non-empty context."""
        wanted = torch.isin(self.period, torch.as_tensor(list(periods), dtype=torch.long,
                                                         device=self.device))
        rows = torch.arange(len(self), device=self.device)
        return torch.nonzero(wanted & (rows > self.start)).flatten()

    def targets(self, rows: Tensor) -> Tensor:
        """(S,) the target item of each sample."""
        return self.item[rows]

    def contexts(self, rows: Tensor, max_len: int) -> tuple[Tensor, Tensor, Tensor]:
        """The left-padded contexts of ``rows``: items (+1, 0 = pad), times and ratings.

        Shapes:
            rows: (S,); returns three (S, max_len) tensors (int64, int64, float32).
        """
        offsets = torch.arange(-max_len, 0, device=rows.device)  # (L,)
        index = rows[:, None] + offsets[None, :]  # (S, L) rows before each sample, oldest first
        valid = index >= self.start[rows][:, None]  # (S, L) same user, earlier row
        index = index.clamp_min(0)
        items = torch.where(valid, self.item[index] + 1, torch.zeros((), dtype=torch.long,
                                                                     device=rows.device))
        times = torch.where(valid, self.timestamp[index], torch.zeros_like(index))
        ratings = torch.where(valid, self.rating[index], torch.zeros((), device=rows.device))
        return items, times, ratings

    def model_inputs(self, rows: Tensor, max_len: int) -> ModelInputs:
        """A :class:`ModelInputs` with one pseudo-user per sample (row ``j`` = sample ``j``).

        The history table (``user``/``item``/...) lists each pseudo-user's context in time
        order, so the inputs are exactly what ``build_model_inputs`` makes of that table.
        """
        items, times, ratings = self.contexts(rows, max_len)
        valid = items > 0  # (S, L)
        pseudo_user = torch.arange(rows.numel(), device=rows.device)[:, None].expand_as(items)
        return ModelInputs(
            num_users=int(rows.numel()),
            num_items=self.num_items,
            user=pseudo_user[valid],
            item=items[valid] - 1,
            rating=ratings[valid],
            timestamp=times[valid],
            seq_items=items,
            seq_ratings=ratings,
            seq_times=times,
            seq_lengths=valid.sum(1),
        )


def predict_logits(
    model: Recommender,
    table: SequenceTable,
    rows: Tensor,
    *,
    max_len: int,
    batch_size: int,
    columns: Tensor | None = None,
    projection: Tensor | None = None,
) -> Tensor:
    """Next-item logits of the samples ``rows`` in eval mode, without gradients.

    Calls ``model.begin_eval`` / ``model.end_eval`` around the batches, as evaluation does, and
    restores the model's train/eval mode afterwards.

    Args:
        model: a sequential recommender (its ``score_all`` reads ``inputs.seq_items``).
        table: the interactions.
        rows: (S,) samples.
        max_len: context length.
        batch_size: samples per forward pass.
        columns: (C,) item indices to keep (default: all items).
        projection: (C, k) applied to the kept logits batch by batch (default: none).

    Returns:
        (S, C) logits, or (S, k) with a projection.
    """
    was_training = model.training
    model.train(False)
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, rows.numel(), batch_size):  # a loop over sample batches
                batch = rows[start : start + batch_size]
                inputs = table.model_inputs(batch, max_len)
                model.begin_eval(inputs)
                try:
                    logits = model.score_all(torch.arange(batch.numel(), device=batch.device),
                                             inputs)  # (B, num_items)
                finally:
                    model.end_eval()
                if columns is not None:
                    logits = logits.index_select(1, columns)  # (B, C)
                if projection is not None:
                    logits = logits @ projection  # (B, k)
                chunks.append(logits)
    finally:
        model.train(was_training)
    if not chunks:
        width = (projection.shape[1] if projection is not None
                 else columns.numel() if columns is not None else table.num_items)
        return torch.zeros(0, width, device=rows.device)
    return torch.cat(chunks)
