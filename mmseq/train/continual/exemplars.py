"""ADER's exemplar replay: a frequency-proportional budget and herding (methods.md section 6).

After period t, ADER keeps N exemplars E_t chosen among the candidates D_t ∪ E_{t-1}:

1. :func:`split_budget`: item ``i`` gets ``m_i ≈ N c_i / C`` exemplars, with ``c_i`` the number of
   candidates whose target is ``i`` and ``C = sum_i c_i``.
2. :func:`herding_select`: per item, herding (Welling 2009; iCaRL) picks, one at a time, the
   candidate whose feature brings the mean of the picked features closest to the item's mean
   feature: :math:`p_k = \\arg\\min_x \\lVert \\mu_i - \\tfrac{1}{k}(\\phi(x) + \\sum_{j<k}
   \\phi(p_j)) \\rVert`.

Features (our choice, model-agnostic): the paper's phi(x) is the backbone's sequence
representation, which the ``Recommender`` contract does not expose; we use the next-item logits
over the items seen so far, which every sequential model gives through ``score_all``. For SASRec
(``logits = E h``) this is herding on ``h`` under the metric ``E^T E``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmseq.models.base import Recommender
from mmseq.train.continual.samples import SequenceTable, predict_logits


def split_budget(counts: Tensor, budget: int) -> Tensor:
    """Apportion ``budget`` exemplars over items in proportion to ``counts`` (largest remainder).

    Rounding rule (Hamilton's method, exact integer arithmetic): every item first gets
    ``floor(budget * c_i / C)``; the ``budget - sum(floors)`` exemplars left go one each to the
    items with the largest remainders ``budget * c_i mod C``, ties broken by the larger count, then
    the smaller item index. The result sums to ``budget`` exactly, and ``m_i <= c_i``. If there are
    no more candidates than the budget (``C <= budget``) every candidate is kept (``m_i = c_i``,
    summing to ``C``).

    Args:
        counts: (num_items,) int64 candidates per item (>= 0).
        budget: N >= 1.

    Returns:
        (num_items,) int64 exemplars per item.
    """
    if budget < 1:
        raise ValueError(f"Expected 'budget' >= 1 (got {budget})")
    counts = counts.long()
    if counts.numel() and int(counts.min()) < 0:
        raise ValueError(f"Expected non-negative counts (got minimum {int(counts.min())})")
    total = int(counts.sum())
    if total <= budget:
        return counts.clone()
    scaled = counts * budget  # exact in int64
    quota = torch.div(scaled, total, rounding_mode="floor")
    remainder = scaled - quota * total
    left = budget - int(quota.sum())
    # Stable sorts from the last key to the first: index ascending, count descending, remainder
    # descending.
    order = torch.arange(counts.numel(), device=counts.device)
    order = order[torch.sort(-counts[order], stable=True).indices]
    order = order[torch.sort(-remainder[order], stable=True).indices]
    quota[order[:left]] += 1
    return quota


def herding_select(features: Tensor, labels: Tensor, quota: Tensor) -> Tensor:
    """Herding per item, vectorised across items (one loop step per pick rank, not per item).

    At step ``k`` every item with ``quota_i >= k`` picks, among its not yet picked candidates,
    the ``x`` minimising ``||mu_i - (S_i + phi(x)) / k||^2`` (``S_i`` the sum of its ``k - 1``
    picked features, ``mu_i`` the mean feature of ALL its candidates); ties go to the lower
    candidate index.

    Args:
        features: (S, F) candidate features.
        labels: (S,) int64 item of each candidate.
        quota: (num_items,) int64 picks per item (<= the item's candidate count).

    Returns:
        (sum(quota),) int64 candidate indices, grouped by item (ascending), in pick order within
        an item.
    """
    if features.dim() != 2 or features.shape[0] != labels.numel():
        raise ValueError(
            f"Expected 'features' of shape (S, F) with S = {labels.numel()} labels "
            f"(got {tuple(features.shape)})"
        )
    num_items = quota.numel()
    counts = torch.bincount(labels, minlength=num_items)
    if bool((quota > counts).any()):
        bad = torch.nonzero(quota > counts).flatten()[:5].tolist()
        raise ValueError(f"Expected quota <= candidates for every item (items {bad} exceed it)")
    num = labels.numel()
    feats = features.double()
    mean = torch.zeros(num_items, feats.shape[1], dtype=torch.float64, device=feats.device)
    mean = mean.index_add_(0, labels, feats) / counts.clamp_min(1)[:, None]
    running = torch.zeros_like(mean)
    taken = torch.zeros(num, dtype=torch.bool, device=feats.device)
    every = torch.arange(num, device=feats.device)
    picked_rows, picked_items = [], []
    for k in range(1, int(quota.max()) + 1 if num_items else 1):  # a loop over pick ranks
        active = quota >= k  # (num_items,)
        rows = every[active[labels] & ~taken]  # (R,)
        lab = labels[rows]
        diff = mean[lab] - (running[lab] + feats[rows]) / k  # (R, F)
        dist = (diff * diff).sum(1)  # (R,)
        best = torch.full((num_items,), float("inf"), dtype=torch.float64, device=feats.device)
        best = best.scatter_reduce(0, lab, dist, reduce="amin")
        winners = dist == best[lab]
        first = torch.full((num_items,), num, dtype=torch.long, device=feats.device)
        first = first.scatter_reduce(0, lab[winners], rows[winners], reduce="amin")
        items = torch.nonzero(active).flatten()
        chosen = first[items]
        taken[chosen] = True
        running[items] += feats[chosen]
        picked_rows.append(chosen)
        picked_items.append(items)
    if not picked_rows:
        return torch.zeros(0, dtype=torch.long, device=labels.device)
    rows_all, items_all = torch.cat(picked_rows), torch.cat(picked_items)
    return rows_all[torch.sort(items_all, stable=True).indices]


def select_exemplars(
    model: Recommender,
    table: SequenceTable,
    candidates: Tensor,
    seen_items: Tensor,
    *,
    budget: int,
    max_len: int,
    batch_size: int,
    projection_dim: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """E_t: ``budget`` exemplars among ``candidates`` (D_t ∪ E_{t-1}) by frequency and herding.

    Args:
        model: the model after training on period t (features come from it, in eval mode).
        table: the interactions.
        candidates: (S,) sample rows.
        seen_items: (num_items,) bool, I_t (feature columns).
        budget: N.
        max_len: context length.
        batch_size: samples per forward pass.
        projection_dim: > 0 projects the logit features with a Gaussian matrix drawn from
            ``generator`` (default: 0 = raw logits).
        generator: required when ``projection_dim > 0``.

    Returns:
        (min(budget, S),) int64 sample rows, grouped by target item.
    """
    labels = table.targets(candidates)
    quota = split_budget(torch.bincount(labels, minlength=table.num_items), budget)
    keep = quota[labels] > 0  # items without exemplars need no features
    candidates, labels = candidates[keep], labels[keep]
    columns = torch.nonzero(seen_items).flatten()
    projection = None
    if projection_dim > 0:
        if generator is None:
            raise ValueError("Expected a 'generator' for the herding projection (got None)")
        projection = torch.randn(columns.numel(), projection_dim, generator=generator,
                                 device=generator.device).to(columns.device)
        projection = projection / projection_dim ** 0.5
    features = predict_logits(model, table, candidates, max_len=max_len, batch_size=batch_size,
                              columns=columns, projection=projection)
    return candidates[herding_select(features, labels, quota)]
