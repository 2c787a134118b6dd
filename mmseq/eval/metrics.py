"""Ranking metrics as pure tensor functions (shared/docs/protocols.md).

Targets are given flat: ``ranks`` (T,) holds each target's 0-based rank among its user's
candidates and ``segment`` (T,) the user row (in ``[0, S)``) it belongs to, so users with several
targets (``ratio-80-20``) and users with one (leave-one-out) share one code path. Every function
returns one value per user row, shape (S,), float64; averaging over users is the caller's job.

Ties are pessimistic (protocols.md): a target's rank is the number of candidates scoring strictly
higher plus the number of OTHER candidates scoring exactly the same, i.e.
``#(score >= target) - 1``.
Note what that implies for a model that scores everything equal: every target gets rank
``C - 1`` (``C`` candidates), so HR@K is 0 for every ``K < C``. It is never 1; the ``≈ K/C`` that
protocols.md mentions is what a model with random, untied scores gets (the tests check both).

With several targets per user, each target is ranked among all non-history candidates INCLUDING
the user's other targets. Without ties this is exactly "take the top-K list and count the targets
in it"; with ties it is the pessimistic version of the same count.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from mmseq.errors import DataError

METRIC_KINDS: tuple[str, ...] = ("hr", "ndcg", "recall", "mrr")
_NAME = re.compile(r"^(hr|ndcg|recall)@([1-9][0-9]*)$")


def parse_metric(name: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; ``"mrr"`` -> ``("mrr", 0)``."""
    if name == "mrr":
        return "mrr", 0
    match = _NAME.match(name)
    if match is None:
        raise ValueError(
            f"Expected a metric name like 'hr@10', 'ndcg@10', 'recall@10' or 'mrr' (got {name!r})"
        )
    return match.group(1), int(match.group(2))


def check_scores(scores: Tensor, users: Tensor, *, where: str = "scores") -> None:
    """Raise :class:`DataError` naming the users whose scores contain NaN.

    Args:
        scores: (B, C) scores of one user batch.
        users: (B,) the users of the rows, used in the message.
        where: what produced the scores, for the message.
    """
    # A row sum is NaN whenever the row holds a NaN (or both +inf and -inf): one cheap pass first,
    # the exact elementwise test only for the rows it flags.
    suspect = torch.isnan(scores.sum(dim=1))
    if not bool(suspect.any()):
        return
    bad = torch.zeros_like(suspect)
    bad[suspect] = torch.isnan(scores[suspect]).any(dim=1)
    if bool(bad.any()):
        bad_users = users[bad].tolist()
        shown = ", ".join(str(u) for u in bad_users[:10])
        more = f" and {len(bad_users) - 10} more" if len(bad_users) > 10 else ""
        raise DataError(
            f"Expected finite {where} (got NaN for {len(bad_users)} users: {shown}{more}); "
            f"NaN scores are an error, not a rank"
        )


def pessimistic_rank(
    scores: Tensor,
    rows: Tensor | None,
    cols: Tensor,
    *,
    max_elements: int = 1 << 17,
    cap: int | None = None,
    row_sums: Tensor | None = None,
) -> Tensor:
    """0-based pessimistic rank of ``scores[rows[t], cols[t]]`` within row ``rows[t]``.

    .. math:: r_t = \\#\\{j : s_{\\text{row}_t, j} \\ge s_{\\text{row}_t, \\text{col}_t}\\} - 1

    Exact. Without ``cap`` it is sort-free: targets are compared with their row in blocks of at
    most ``max_elements`` compared scores, so many targets per user never materialise a (T, C)
    matrix at once. With ``cap`` it returns ``min(r_t, cap)`` from one ``topk(cap)`` per row
    (:func:`capped_pessimistic_rank`): all that HR, NDCG and Recall at cut-offs ``<= cap`` read,
    and as cheap as a plain top-k however many targets a row has.

    Args:
        scores: (B, C) scores; ``-inf`` marks excluded candidates (they never outrank a target
            with a finite score). Must not contain NaN.
        rows: (T,) int64 row of each target, or None for one target per row (``T = B``,
            ``rows = arange(B)``; avoids copying rows).
        cols: (T,) int64 column of each target.
        max_elements: block size in compared elements (default: 2**17, so that a block's
            scores and comparisons stay in cache: about twice as fast as one big block).
        cap: None for exact ranks, else ranks above ``cap`` are returned as ``cap``
            (default: None).
        row_sums: optional (B,) float tensor, only with ``rows`` None and exact ranks: receives
            each row's sum, taken while its block is in cache (NaN iff the row holds NaN or both
            infinities: :func:`check_scores`' first pass, for free).

    Returns:
        (T,) int64 ranks in ``[0, C)`` (``[0, cap]`` with ``cap``).
    """
    if scores.dim() != 2:
        raise ValueError(f"Expected 'scores' of shape (B, C) (got {tuple(scores.shape)})")
    expected = (scores.size(0),) if rows is None else tuple(rows.shape)
    if tuple(cols.shape) != expected or cols.dim() != 1:
        raise ValueError(
            f"Expected 'rows' and 'cols' of one shape (T,), T = B when rows is None "
            f"(got cols {tuple(cols.shape)}, expected {expected})"
        )
    num_targets, num_candidates = cols.numel(), scores.size(1)
    if row_sums is not None and (rows is not None or tuple(row_sums.shape) != expected):
        raise ValueError(f"Expected 'row_sums' of shape {expected} and rows None "
                         f"(got {tuple(row_sums.shape)})")
    if cap is not None and row_sums is None:
        if cap < 1:
            raise ValueError(f"Expected 'cap' >= 1 (got {cap})")
        if cap < num_candidates and num_targets:
            return capped_pessimistic_rank(scores, rows, cols, cap)
    out = torch.empty(num_targets, dtype=torch.long, device=scores.device)
    block = max(1, max_elements // max(1, num_candidates))
    for start in range(0, num_targets, block):  # a loop over blocks of targets, not over users
        stop = min(start + block, num_targets)
        if rows is None:
            block_scores = scores[start:stop]  # (t, C) view
            if row_sums is not None:
                torch.sum(block_scores, dim=1, out=row_sums[start:stop])
        else:
            block_scores = scores.index_select(0, rows[start:stop])  # (t, C)
        target = block_scores.gather(1, cols[start:stop].unsqueeze(1))  # (t, 1)
        # int32 accumulation is about twice as fast as the default int64 here, and exact.
        out[start:stop] = (block_scores >= target).sum(dim=1, dtype=torch.int32) - 1
    return out if cap is None else out.clamp_max(cap)


def capped_pessimistic_rank(scores: Tensor, rows: Tensor | None, cols: Tensor, cap: int) -> Tensor:
    """``min(r_t, cap)`` for the pessimistic ranks ``r_t`` of :func:`pessimistic_rank`, exact.

    With ``v`` the row's ``cap``-th largest score (``topk``) and ``x`` the target's score: if
    ``x > v`` every score ``>= x`` is among the top ``cap``, so ``r = #(top >= x) - 1``; if
    ``x == v`` the scores ``>= x`` are the top ones ``> x`` plus every score of the row equal to
    ``x`` (counted over the whole row, for the rows where this happens only); if ``x < v`` all
    ``cap`` top scores beat it, so ``r >= cap``. Only the targets with ``x >= v`` (about ``cap``
    per row, however many targets a row has) are compared with anything.

    Shapes:
        scores: (B, C) with ``cap < C``; rows: (T,) or None (one target per row); cols: (T,);
        returns (T,) int64 in ``[0, cap]``.
    """
    top = scores.topk(cap, dim=1, sorted=False).values  # (B, cap)
    last = top.min(dim=1).values  # (B,) the cap-th largest score
    if rows is None:
        rows = torch.arange(scores.size(0), device=scores.device)
    flat = rows * scores.size(1) + cols  # (T,) index_select is much faster than scores[rows, cols]
    target = scores.reshape(-1).index_select(0, flat)  # (T,)
    ranks = torch.full_like(cols, cap)
    # Only targets at or above their row's cut can rank below ``cap``: few of them.
    near = torch.nonzero(target >= last.index_select(0, rows)).flatten()  # (t,)
    if near.numel():
        near_rows, near_target = rows[near], target[near]
        near_top = top.index_select(0, near_rows)  # (t, cap)
        count = (near_top >= near_target[:, None]).sum(dim=1)  # (t,) #(top >= x)
        tied = near_target == last[near_rows]  # (t,) tied with the cut
        if bool(tied.any()):
            tie_rows, tie_inverse = torch.unique(near_rows[tied], return_inverse=True)
            equal = (scores.index_select(0, tie_rows) == last[tie_rows, None]).sum(dim=1)  # (R,)
            above = (near_top[tied] > near_target[tied, None]).sum(dim=1)
            count[tied] = above + equal[tie_inverse]
        ranks[near] = (count - 1).clamp_max(cap)
    return ranks


def _check(ranks: Tensor, segment: Tensor, k: int | None = None) -> None:
    if ranks.shape != segment.shape or ranks.dim() != 1:
        raise ValueError(
            f"Expected 'ranks' and 'segment' of one shape (T,) (got {tuple(ranks.shape)} and "
            f"{tuple(segment.shape)})"
        )
    if ranks.numel() and int(ranks.min()) < 0:
        raise ValueError(f"Expected ranks >= 0 (got {int(ranks.min())})")
    if k is not None and k < 1:
        raise ValueError(f"Expected the cut-off 'k' to be >= 1 (got {k})")


def _check_counts(num_targets: Tensor) -> None:
    if num_targets.numel() and int(num_targets.min()) < 1:
        raise ValueError(
            f"Expected every user row to have >= 1 target (got {int(num_targets.min())})"
        )


def _segment_sum(values: Tensor, segment: Tensor, num_segments: int) -> Tensor:
    out = torch.zeros(num_segments, dtype=torch.float64, device=values.device)
    return out.index_add_(0, segment, values.to(torch.float64))


def hits_at_k(ranks: Tensor, segment: Tensor, num_segments: int, k: int) -> Tensor:
    """(S,) number of targets of each user row ranked in the top ``k`` (as float64)."""
    _check(ranks, segment, k)
    return _segment_sum((ranks < k).to(torch.float64), segment, num_segments)


def hit_at_k(ranks: Tensor, segment: Tensor, num_segments: int, k: int) -> Tensor:
    """HR@K: (S,) 1.0 where at least one of the row's targets is in the top ``k``, else 0.0."""
    return (hits_at_k(ranks, segment, num_segments, k) > 0).to(torch.float64)


def recall_at_k(ranks: Tensor, segment: Tensor, num_targets: Tensor, k: int) -> Tensor:
    """Recall@K = hits / min(K, |targets|), (S,) (protocols.md, ``ratio-80-20``).

    Args:
        ranks: (T,) 0-based ranks.
        segment: (T,) user row of each target.
        num_targets: (S,) number of targets of each row (>= 1).
        k: the cut-off.
    """
    return _recall(ranks, segment, num_targets, num_targets.clamp(max=k), k)


def _recall(
    ranks: Tensor, segment: Tensor, num_targets: Tensor, denominator: Tensor, k: int
) -> Tensor:
    """(S,) float64 hits in the top ``k`` per row over ``denominator`` (S,)."""
    _check_counts(num_targets)
    hits = hits_at_k(ranks, segment, num_targets.numel(), k)
    return hits / denominator.to(torch.float64)


def _discounts(n: int, device: torch.device) -> Tensor:
    """(n,) ``1 / log2(j + 2)`` for 0-based positions ``j``."""
    return 1.0 / torch.log2(torch.arange(n, dtype=torch.float64, device=device) + 2.0)


def ndcg_at_k(ranks: Tensor, segment: Tensor, num_targets: Tensor, k: int) -> Tensor:
    """NDCG@K with binary relevance, (S,).

    .. math:: \\mathrm{DCG@K} = \\sum_{t:\\,r_t < K} \\frac{1}{\\log_2(r_t + 2)}, \\quad
              \\mathrm{IDCG@K} = \\sum_{j=0}^{\\min(K, n)-1} \\frac{1}{\\log_2(j + 2)}

    with ``r_t`` the 0-based rank and ``n`` the row's number of targets.
    """
    _check(ranks, segment, k)
    _check_counts(num_targets)
    device = ranks.device
    discount = 1.0 / torch.log2(ranks.to(torch.float64) + 2.0)  # (T,)
    gains = torch.where(ranks < k, discount, torch.zeros((), dtype=torch.float64, device=device))
    dcg = _segment_sum(gains, segment, num_targets.numel())
    ideal = torch.cumsum(_discounts(k, device), dim=0)  # (k,) IDCG for 1..k targets
    idcg = ideal[num_targets.clamp(max=k) - 1]
    return dcg / idcg


def reciprocal_rank(ranks: Tensor, segment: Tensor, num_segments: int) -> Tensor:
    """MRR term: (S,) ``1 / (1 + r)`` with ``r`` the best (lowest) rank among the row's targets.

    For one target per user this is the usual reciprocal rank; with several targets it is the
    reciprocal rank of the FIRST relevant item in the ranking (our choice; protocols.md only asks
    for MRR under the single-target protocols).
    """
    _check(ranks, segment)
    big = torch.iinfo(torch.long).max
    best = torch.full((num_segments,), big, dtype=torch.long, device=ranks.device)
    best = best.scatter_reduce(0, segment, ranks, reduce="amin", include_self=True)
    if num_segments and int(best.max()) == big:
        raise ValueError("Expected every user row to have >= 1 target (got a row with none)")
    return 1.0 / (best.to(torch.float64) + 1.0)


def per_user_metrics(
    names: tuple[str, ...] | list[str], ranks: Tensor, segment: Tensor, num_targets: Tensor
) -> Tensor:
    """Every metric in ``names`` for every user row: (S, len(names)) float64.

    Args:
        names: metric names such as ``"hr@10"``, ``"ndcg@10"``, ``"recall@20"``, ``"mrr"``.
        ranks: (T,) 0-based pessimistic ranks of the targets.
        segment: (T,) user row of each target, in ``[0, S)``.
        num_targets: (S,) int64 number of targets of each row.
    """
    num_segments = num_targets.numel()
    columns = []
    for name in names:  # a loop over metric names, not users
        kind, k = parse_metric(name)
        if kind == "hr":
            columns.append(hit_at_k(ranks, segment, num_segments, k))
        elif kind == "ndcg":
            columns.append(ndcg_at_k(ranks, segment, num_targets, k))
        elif kind == "recall":
            columns.append(recall_at_k(ranks, segment, num_targets, k))
        else:
            columns.append(reciprocal_rank(ranks, segment, num_segments))
    if not columns:
        return torch.zeros(num_segments, 0, dtype=torch.float64, device=ranks.device)
    return torch.stack(columns, dim=1)


# --------------------------------------------------------------------------- RecBole's definitions
# Two metrics under the definitions of RecBole 1.2 (``recbole/evaluator/metrics.py``), kept apart
# from mmseq's own so that a side-by-side comparison reads the same numbers on both sides:
# RecBole's ``Recall@K`` divides by ALL of a user's targets (mmseq's ``recall@K`` by
# ``min(K, |targets|)``), and its ``MRR@K`` is 0 when no target is in the top K (mmseq's ``mrr``
# has no cut-off). HR@K and NDCG@K already agree. Only used by scripts/bench_vs_recbole.py.
_PEER_NAME = re.compile(r"^(recall_rb|mrr)@([1-9][0-9]*)$")


def recall_all_at_k(ranks: Tensor, segment: Tensor, num_targets: Tensor, k: int) -> Tensor:
    """RecBole's Recall@K = hits / |targets|, (S,) float64.

    Args:
        ranks: (T,) 0-based ranks.
        segment: (T,) user row of each target.
        num_targets: (S,) number of targets of each row (>= 1).
        k: the cut-off.
    """
    return _recall(ranks, segment, num_targets, num_targets, k)


def mrr_at_k(ranks: Tensor, segment: Tensor, num_segments: int, k: int) -> Tensor:
    """RecBole's MRR@K: (S,) ``1 / (1 + r)`` for the best-ranked target if ``r < k``, else 0."""
    _check(ranks, segment, k)
    rr = reciprocal_rank(ranks, segment, num_segments)  # (S,) 1 / (1 + best rank)
    return torch.where(rr > 1.0 / (k + 0.5), rr, torch.zeros_like(rr))


def peer_per_user_metrics(
    names: tuple[str, ...] | list[str], ranks: Tensor, segment: Tensor, num_targets: Tensor
) -> Tensor:
    """Metrics named ``recall_rb@K`` / ``mrr@K`` (RecBole's definitions) or any name
    :func:`per_user_metrics` takes, for every user row: (S, len(names)) float64.

    Args:
        names: e.g. ``("hr@10", "ndcg@10", "recall_rb@10", "mrr@10")``.
        ranks: (T,) 0-based ranks of the targets.
        segment: (T,) user row of each target, in ``[0, S)``.
        num_targets: (S,) int64 number of targets of each row.
    """
    num_segments = num_targets.numel()
    columns = []
    for name in names:  # a loop over metric names, not users
        match = _PEER_NAME.match(name)
        if match is None:
            columns.append(per_user_metrics((name,), ranks, segment, num_targets)[:, 0])
        elif match.group(1) == "recall_rb":
            columns.append(recall_all_at_k(ranks, segment, num_targets, int(match.group(2))))
        else:
            columns.append(mrr_at_k(ranks, segment, num_segments, int(match.group(2))))
    if not columns:
        return torch.zeros(num_segments, 0, dtype=torch.float64, device=ranks.device)
    return torch.stack(columns, dim=1)
