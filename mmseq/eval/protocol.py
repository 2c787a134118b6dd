"""The evaluation protocols, implemented once and shared by every model (shared/docs/protocols.md).

:func:`make_eval_task` turns a :class:`~mmseq.data.split.Split` and a stage into an
:class:`EvalTask` (users, targets, history to exclude, fixed sampled candidates);
:func:`evaluate` scores a model on it in user batches on the model's device:

* full ranking (``ratio-80-20``, ``loo-full``): ``score_all`` gives (B, num_items) scores; the
  stage's history items are set to ``-inf`` (one ``index_put`` of the batch's (row, item) pairs);
  each target's pessimistic rank is ``#(score >= target score) - 1`` (:mod:`mmseq.eval.metrics`).
  A target that is also in the history (repeat consumption in non-deduplicated data) is masked
  like any history item and so counts as a miss; :attr:`EvalTask.meta` counts such targets
  (under ``loo-sampled99`` nothing is masked and such a target is ranked as usual).
* ``loo-sampled99``: ``score_candidates`` on (B, 100) candidates, the target in column 0 and 99
  negatives drawn once, by seed, uniformly without replacement from the items the user never
  interacted with anywhere in the data (fit, valid or test).

Every user counts equally in the averages.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from mmseq.data.split import Split, check_stage
from mmseq.errors import DataError
from mmseq.eval.metrics import check_scores, per_user_metrics, pessimistic_rank
from mmseq.nn.scores import ScoreWorkspace, score_workspace

logger = logging.getLogger(__name__)

DEFAULT_KS: Mapping[str, tuple[int, ...]] = {
    "ratio-80-20": (10, 20),
    "loo-full": (5, 10, 20),
    "loo-sampled99": (1, 5, 10),
}
#: Negatives per user under ``loo-sampled99``; with the target that makes 100 candidates.
NUM_NEGATIVES = 99
#: Part of a stored result's code hash (mmseq.results_store): bump it in the change that alters
#: any metric at an unchanged config (split, candidate sampling, masking, metric definitions).
EVAL_VERSION = "1"
_STAGE_STREAM = {"valid": 0, "test": 1}  # valid and test candidates come from distinct RNG streams
_SAMPLER_BLOCK = 1 << 22  # draws per rejection-sampling block (memory bound, not a result knob)


class RankingModel(Protocol):
    """What :func:`evaluate` needs of a model (``mmseq.models.base.Recommender`` satisfies it).

    Optional: a true ``eval_by_length`` attribute asks for batches of users of similar
    ``inputs.seq_lengths`` (sequence models: less padding per batch; results unchanged).
    """

    training: bool

    def train(self, mode: bool = True) -> Any: ...

    def begin_eval(self, inputs: Any) -> None: ...

    def end_eval(self) -> None: ...

    def score_all(self, users: Tensor, inputs: Any) -> Tensor: ...

    def score_candidates(self, users: Tensor, items: Tensor, inputs: Any) -> Tensor: ...


def metric_names(protocol: str, ks: Sequence[int]) -> tuple[str, ...]:
    """The metric keys reported under ``protocol`` for cut-offs ``ks``.

    ``ratio-80-20``: hr, ndcg, recall at every K. ``loo-full``: hr, ndcg at every K, then mrr.
    ``loo-sampled99``: hr at every K, ndcg at every K > 1 (NDCG@1 equals HR@1 with one target, so
    the default ks (1, 5, 10) give protocols.md's HR@{1,5,10}, NDCG@{5,10}), then mrr.
    """
    if protocol == "ratio-80-20":
        return tuple(f"{m}@{k}" for k in ks for m in ("hr", "ndcg", "recall"))
    if protocol == "loo-full":
        return tuple(f"{m}@{k}" for k in ks for m in ("hr", "ndcg")) + ("mrr",)
    return (
        tuple(f"hr@{k}" for k in ks) + tuple(f"ndcg@{k}" for k in ks if k > 1) + ("mrr",)
    )


@dataclass(frozen=True, eq=False)
class EvalTask:
    """One stage of one protocol: who is scored, against what, excluding what.

    Row ``j`` of every per-user field belongs to ``users[j]``. CSR pairs (``*_indptr``,
    ``*_indices``) list item indices per row. All tensors are on the CPU; :func:`evaluate` moves
    them to the model's device.

    Attributes:
        protocol: ``"ratio-80-20"``, ``"loo-full"`` or ``"loo-sampled99"``.
        stage: ``"valid"`` or ``"test"``.
        users: (U,) int64 evaluated users, ascending.
        target_indptr, target_indices: (U + 1,), (T,) int64 the targets (distinct per user).
        history_indptr, history_indices: (U + 1,), (H,) int64 items excluded from full ranking:
            the stage's history (fit for valid, fit + valid for test).
        candidates: (U, 100) int64 for ``loo-sampled99`` (target in column 0), else None.
        ks: metric cut-offs.
        metrics: metric keys :func:`evaluate` returns, in order.
        num_items: size of the item id space.
        meta: counts (users, targets, merged duplicate targets, targets also in the history,
            sampling seed).
    """

    protocol: str
    stage: str
    users: Tensor
    target_indptr: Tensor
    target_indices: Tensor
    history_indptr: Tensor
    history_indices: Tensor
    candidates: Tensor | None
    ks: tuple[int, ...]
    metrics: tuple[str, ...]
    num_items: int
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_users(self) -> int:
        return int(self.users.numel())


def _check_ks(protocol: str, ks: Sequence[int] | None) -> tuple[int, ...]:
    if ks is None or len(ks) == 0:
        return DEFAULT_KS[protocol]
    out = tuple(sorted(set(ks)))
    bad = [k for k in out if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1]
    if bad:
        raise ValueError(f"Expected 'ks' to hold positive integers (got {list(ks)})")
    if protocol == "loo-sampled99" and out[-1] > NUM_NEGATIVES + 1:
        raise ValueError(
            f"Expected 'ks' <= {NUM_NEGATIVES + 1} (the number of candidates) for protocol "
            f"'loo-sampled99' (got {out[-1]})"
        )
    return tuple(int(k) for k in out)


def _pair_keys(user: np.ndarray, item: np.ndarray, num_items: int) -> np.ndarray:
    """Distinct ``user * num_items + item`` keys, sorted (so grouped by user)."""
    return np.unique(user.astype(np.int64) * num_items + item.astype(np.int64))


def _indptr(rows: np.ndarray, num_rows: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=num_rows))]).astype(np.int64)


def sample_negatives(
    users: np.ndarray,
    interacted: np.ndarray,
    num_items: int,
    num_negatives: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Distinct items each user never interacted with, uniformly, by vectorised rejection sampling.

    Each round draws a block of item indices per pending user, rejects interacted items and repeats
    within the row, and keeps the first ``num_negatives`` survivors in draw order (a uniform sample
    without replacement). Users with too few survivors are redrawn with twice as many draws.

    Args:
        users: (U,) int64 users.
        interacted: sorted distinct ``user * num_items + item`` keys of every interaction.
        num_items: size of the item id space.
        num_negatives: negatives per user.
        rng: the only source of randomness.

    Returns:
        (U, num_negatives) int64 item indices.

    Raises:
        DataError: if some user has interacted with all but fewer than ``num_negatives`` items.
    """
    users = users.astype(np.int64)
    seen = np.searchsorted(interacted, (users + 1) * num_items) - np.searchsorted(
        interacted, users * num_items
    )
    available = num_items - seen  # (U,)
    short = np.flatnonzero(available < num_negatives)
    if short.size:
        shown = ", ".join(str(u) for u in users[short[:10]].tolist())
        raise DataError(
            f"Expected >= {num_negatives} items each user never interacted with, to sample "
            f"negatives (got fewer for {short.size} users, e.g. {shown}; {num_items} items in all)"
        )
    out = np.empty((len(users), num_negatives), dtype=np.int64)
    pending = np.arange(len(users))
    attempt = 0
    while pending.size:  # rounds of rejection sampling; each round is vectorised over users
        share = available[pending].min() / num_items
        draws = math.ceil((1.25 * num_negatives + 16) / share) * 2**attempt
        block_rows = max(1, _SAMPLER_BLOCK // draws)
        still = []
        for start in range(0, pending.size, block_rows):
            rows = pending[start:start + block_rows]
            cand = rng.integers(0, num_items, size=(rows.size, draws), dtype=np.int64)  # (R, M)
            keys = users[rows, None] * num_items + cand
            pos = np.minimum(np.searchsorted(interacted, keys), max(0, interacted.size - 1))
            is_seen = interacted[pos] == keys if interacted.size else np.zeros_like(keys, bool)
            order = np.argsort(cand, axis=1, kind="stable")
            ordered = np.take_along_axis(cand, order, axis=1)
            repeat_sorted = np.zeros_like(ordered, dtype=bool)
            repeat_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]  # later copies of an item
            repeat = np.empty_like(repeat_sorted)
            np.put_along_axis(repeat, order, repeat_sorted, axis=1)
            ok = ~is_seen & ~repeat
            kept = np.cumsum(ok, axis=1)
            done = kept[:, -1] >= num_negatives
            take = ok & (kept <= num_negatives)
            out[rows[done]] = cand[done][take[done]].reshape(-1, num_negatives)
            still.append(rows[~done])
        pending = np.concatenate(still)
        attempt += 1
    return out


def make_eval_task(
    split: Split, stage: str, *, ks: Sequence[int] | None = None, seed: int = 0
) -> EvalTask:
    """Build the :class:`EvalTask` of ``stage`` under ``split.protocol``.

    Args:
        split: the split (its ``protocol`` decides everything else).
        stage: ``"valid"`` (targets = valid, history = fit) or ``"test"`` (targets = test,
            history = fit + valid).
        ks: metric cut-offs; None or empty = the protocol's defaults (:data:`DEFAULT_KS`).
        seed: seed of the ``loo-sampled99`` negatives (default: 0); the valid and test stages use
            distinct, fixed streams of it. Ignored by the full-ranking protocols.

    Returns:
        The task; identical for every model given the same split, stage, ks and seed.
    """
    check_stage(stage)
    protocol = split.protocol
    ks = _check_ks(protocol, ks)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Expected 'seed' to be a non-negative integer (got {seed!r})")
    num_users, num_items = split.num_users, split.num_items
    target_table = split.valid if stage == "valid" else split.test
    history = split.history(stage)

    target_keys = _pair_keys(target_table.user, target_table.item, num_items)
    target_user, target_item = np.divmod(target_keys, num_items)
    users = np.unique(target_user)
    row_of_user = np.full(num_users, -1, dtype=np.int64)
    row_of_user[users] = np.arange(len(users))

    history_keys = _pair_keys(history.user, history.item, num_items)
    history_keys = history_keys[row_of_user[history_keys // num_items] >= 0]
    history_user, history_item = np.divmod(history_keys, num_items)
    in_history = int(np.isin(target_keys, history_keys, assume_unique=True).sum())
    if in_history and protocol != "loo-sampled99":
        logger.warning(
            "%s/%s: %d targets are also in the user's history; they are masked and count as "
            "misses (deduplicate the data to avoid this)", protocol, stage, in_history,
        )

    candidates = None
    if protocol == "loo-sampled99":
        every = split.all_interactions()
        rng = np.random.default_rng([int(seed), _STAGE_STREAM[stage]])
        negatives = sample_negatives(
            users, _pair_keys(every.user, every.item, num_items), num_items, NUM_NEGATIVES, rng
        )
        candidates = torch.from_numpy(np.concatenate([target_item[:, None], negatives], axis=1))

    meta = {
        "users": int(len(users)),
        "targets": int(len(target_keys)),
        "duplicate_targets_merged": int(len(target_table) - len(target_keys)),
        "targets_in_history": in_history,
        "seed": int(seed) if protocol == "loo-sampled99" else None,
    }
    return EvalTask(
        protocol=protocol,
        stage=stage,
        users=torch.from_numpy(users.astype(np.int64)),
        target_indptr=torch.from_numpy(_indptr(row_of_user[target_user], len(users))),
        target_indices=torch.from_numpy(target_item.astype(np.int64)),
        history_indptr=torch.from_numpy(_indptr(row_of_user[history_user], len(users))),
        history_indices=torch.from_numpy(history_item.astype(np.int64)),
        candidates=candidates,
        ks=ks,
        metrics=metric_names(protocol, ks),
        num_items=num_items,
        meta=meta,
    )


def _csr_rows(indptr: Tensor, indices: Tensor, start: int, stop: int) -> tuple[Tensor, Tensor]:
    """(row, col) pairs of CSR rows ``[start, stop)``; rows are relative to ``start``.

    ``indptr`` is on the CPU, ``indices`` on the device; the pairs come back on the device.
    """
    lo, hi = int(indptr[start]), int(indptr[stop])
    lengths = (indptr[start + 1:stop + 1] - indptr[start:stop]).to(indices.device)
    rows = torch.repeat_interleave(
        torch.arange(stop - start, device=indices.device), lengths, output_size=hi - lo
    )
    return rows, indices[lo:hi]


def mask_rows(
    scores: Tensor, indptr: Tensor, indices: Tensor, start: int, stop: int
) -> Tensor:
    """``scores`` with the items of CSR rows ``[start, stop)`` set to ``-inf`` (out of place).

    The one masking step of full ranking: row ``j`` of ``scores`` belongs to CSR row
    ``start + j``; one ``index_put`` over the batch's (row, item) pairs.

    Shapes:
        scores: (stop - start, num_items) on ``indices.device``; ``indptr`` (R + 1,) on the CPU;
        ``indices`` (nnz,). Returns the same shape as ``scores``.
    """
    rows, cols = _csr_rows(indptr, indices, start, stop)
    minus_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    return scores.index_put((rows, cols), minus_inf)


def _permute_csr(indptr: Tensor, indices: Tensor, order: Tensor) -> tuple[Tensor, Tensor]:
    """CSR rows taken in ``order``: row ``r`` of the result is row ``order[r]`` of the input.

    Shapes:
        indptr: (U + 1,), indices: (N,), order: (U,) a permutation; returns (U + 1,), (N,).
    """
    lengths = (indptr[1:] - indptr[:-1])[order]  # (U,)
    new_indptr = torch.zeros_like(indptr)
    torch.cumsum(lengths, 0, out=new_indptr[1:])
    row = torch.repeat_interleave(torch.arange(order.numel()), lengths)  # (N,)
    source = indptr[:-1][order][row] + torch.arange(row.numel()) - new_indptr[:-1][row]
    return new_indptr, indices[source.to(indices.device)]


def _length_order(model: RankingModel, inputs: Any, task: EvalTask) -> Tensor | None:
    """Users by ascending sequence length (stable) for models that encode sequences
    (``eval_by_length``), so that each batch is trimmed to about its rows' own length; else None.
    """
    lengths = getattr(inputs, "seq_lengths", None)
    if not getattr(model, "eval_by_length", False) or lengths is None:
        return None
    return torch.argsort(lengths.cpu()[task.users], stable=True)


def _mask_history(scores: Tensor, rows: Tensor, cols: Tensor) -> tuple[Tensor, Tensor | None]:
    """``scores`` with ``(rows, cols)`` set to ``-inf``, and the overwritten values (or None).

    In place when ``scores`` is contiguous (it may be a model's own tensor: the caller writes
    the returned values back), else on a copy.
    """
    minus_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    if not scores.is_contiguous() or scores.requires_grad:
        return scores.index_put((rows, cols), minus_inf), None
    saved = scores[rows, cols]
    return scores.index_put_((rows, cols), minus_inf), saved


@contextlib.contextmanager
def _scoring(model: RankingModel, inputs: Any) -> Iterator[ScoreWorkspace]:
    """Eval mode and ``torch.no_grad()`` between ``begin_eval(inputs)`` and ``end_eval()``;
    the model's previous train/eval mode comes back afterwards, also on errors. Yields the
    score workspace (:mod:`mmseq.nn.scores`): the loop releases it after each batch."""
    was_training = model.training
    model.train(False)
    try:
        with torch.no_grad(), score_workspace() as workspace:
            model.begin_eval(inputs)
            try:
                yield workspace
            finally:
                model.end_eval()
    finally:
        model.train(was_training)


def evaluate_per_user(
    model: RankingModel, inputs: Any, task: EvalTask, *, batch_size: int = 1024
) -> dict[str, Tensor]:
    """Per-user metric values: ``{name: (U,) float64 CPU tensor}``, rows aligned with ``users``.

    Same arguments as :func:`evaluate`, which averages these. Models with ``eval_by_length``
    are scored in batches of users of similar sequence length (each user's values are the same;
    only the batching changes). Without MRR among the metrics, ranks are computed capped at the
    largest cut-off (:func:`~mmseq.eval.metrics.capped_pessimistic_rank`): HR, NDCG and Recall
    read nothing else.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected 'batch_size' to be a positive integer (got {batch_size!r})")
    device = inputs.device
    order = _length_order(model, inputs, task)
    users, candidates = task.users, task.candidates
    target_indptr, target_indices = task.target_indptr, task.target_indices
    history_indptr, history_indices = task.history_indptr, task.history_indices
    if order is not None:
        users = users[order]
        candidates = None if candidates is None else candidates[order]
        target_indptr, target_indices = _permute_csr(target_indptr, target_indices, order)
        history_indptr, history_indices = _permute_csr(history_indptr, history_indices, order)
    users = users.to(device)
    target_indices = target_indices.to(device)
    history_indices = history_indices.to(device)
    candidates = None if candidates is None else candidates.to(device)
    num_targets = target_indptr[1:] - target_indptr[:-1]  # (U,) on the CPU
    one_each = bool((num_targets == 1).all())  # leave-one-out: target t belongs to row t
    cap = None if "mrr" in task.metrics else max(task.ks)
    where = f"scores of {type(model).__name__} ({task.protocol}/{task.stage})"
    chunks = []
    with _scoring(model, inputs) as workspace:
        for start in range(0, task.num_users, batch_size):  # a loop over user batches
            stop = min(start + batch_size, task.num_users)
            batch_users = users[start:stop]
            if candidates is not None:
                batch_items = candidates[start:stop]  # (B, 100)
                scores = model.score_candidates(batch_users, batch_items, inputs)
                expected: tuple[int, ...] = tuple(batch_items.shape)
            else:
                scores = model.score_all(batch_users, inputs)
                expected = (stop - start, task.num_items)
            if tuple(scores.shape) != expected:
                raise ValueError(f"Expected {where} of shape {expected} "
                                 f"(got {tuple(scores.shape)})")
            if candidates is not None:
                check_scores(scores, batch_users, where=where)
                ranks = pessimistic_rank(scores, None, torch.zeros_like(batch_users))
                segment = torch.arange(stop - start, device=device)
            else:
                rows, cols = _csr_rows(history_indptr, history_indices, start, stop)
                # One target per row, exact ranks, in-place masking: the NaN check's
                # row sums come from the rank's own pass over the scores (the masked
                # values are checked apart); otherwise its own pass, first.
                fused = one_each and cap is None and scores.is_contiguous() and (
                    not scores.requires_grad)
                if not fused:
                    check_scores(scores, batch_users, where=where)
                scores, saved = _mask_history(scores, rows, cols)
                segment, target_cols = _csr_rows(
                    target_indptr, target_indices, start, stop
                )
                sums = scores.new_empty(stop - start) if fused else None
                ranks = pessimistic_rank(
                    scores, None if one_each else segment, target_cols, cap=cap,
                    row_sums=sums,
                )
                if saved is not None:
                    scores.index_put_((rows, cols), saved)  # the model's values back
                if sums is not None and saved is not None and bool(
                    torch.isnan(sums).any() or torch.isnan(saved).any()
                ):
                    check_scores(scores, batch_users, where=where)  # raises if NaN
            counts = num_targets[start:stop].to(device)
            chunks.append(per_user_metrics(task.metrics, ranks, segment, counts).cpu())
            workspace.release()  # this batch's scores are no longer read
    values = torch.cat(chunks) if chunks else torch.zeros(0, len(task.metrics), dtype=torch.float64)
    if order is not None:
        values = torch.empty_like(values).index_copy_(0, order, values)  # back to task order
    return {name: values[:, j] for j, name in enumerate(task.metrics)}


def evaluate(
    model: RankingModel, inputs: Any, task: EvalTask, *, batch_size: int = 1024
) -> dict[str, float]:
    """Score ``model`` on ``task`` and average every metric over users.

    Calls ``model.begin_eval(inputs)``, then per batch of users (tensors on ``inputs.device``)
    ``model.score_all(users, inputs)`` or, for ``loo-sampled99``,
    ``model.score_candidates(users, items, inputs)``, then ``model.end_eval()``; all under
    ``torch.no_grad()`` with the model in eval mode (its previous mode is restored afterwards).
    No users x items matrix is ever built on the host.

    Args:
        model: a :class:`~mmseq.models.base.Recommender` (anything with the same methods).
        inputs: the model's inputs (``ModelInputs``); only ``inputs.device`` is read here.
        task: from :func:`make_eval_task`.
        batch_size: users per scoring batch (default: 1024); results do not depend on it.

    Returns:
        ``{metric: value}`` with the keys of ``task.metrics`` (e.g. ``"hr@10"``, ``"mrr"``).

    Raises:
        DataError: if the model returns NaN scores (the message names the users).
        ValueError: if the scores have the wrong shape.
    """
    if task.num_users == 0:
        raise DataError(f"Expected at least one user to evaluate ({task.protocol}/{task.stage})")
    per_user = evaluate_per_user(model, inputs, task, batch_size=batch_size)
    return {name: float(values.mean()) for name, values in per_user.items()}


def target_ranks(
    model: RankingModel, inputs: Any, task: EvalTask, *, batch_size: int = 512
) -> Tensor:
    """0-based pessimistic rank of every target of a full-ranking task, for per-target analyses.

    The same ranks :func:`evaluate_per_user` reads (history masked to ``-inf``, ties counted
    against the target), one per entry of ``task.target_indices``; a diagnostic path (plain
    masking, no fused checks), not the evaluator's.

    Shapes:
        returns (T,) int64 on the CPU, aligned with ``task.target_indices``.

    Raises:
        ValueError: for a sampled-candidates task (``loo-sampled99``): its ranks are within
            100 candidates, not over the catalogue.
    """
    if task.candidates is not None:
        raise ValueError(
            f"Expected a full-ranking task for per-target ranks (got {task.protocol}/{task.stage})"
        )
    device = inputs.device
    history = task.history_indices.to(device)
    targets = task.target_indices.to(device)  # moved once, not per batch
    chunks = []
    with _scoring(model, inputs) as workspace:
        for start in range(0, task.num_users, batch_size):  # a loop over user batches
            stop = min(start + batch_size, task.num_users)
            scores = model.score_all(task.users[start:stop].to(device), inputs)
            check_scores(scores, task.users[start:stop], where="target_ranks")
            scores = mask_rows(scores, task.history_indptr, history, start, stop)
            rows, cols = _csr_rows(task.target_indptr, targets, start, stop)
            chunks.append(pessimistic_rank(scores, rows, cols).cpu())
            workspace.release()  # this batch's scores are no longer read
    return torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.int64)
