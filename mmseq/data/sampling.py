"""Training samplers: BPR triples, next-item batches and BERT4Rec cloze masks.

Pure functions over tensors; all randomness comes from the ``torch.Generator`` passed in, and every
random draw is made on that generator's device (build the generator on the data's device).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from mmseq.data.inputs import ModelInputs
from mmseq.errors import DataError


@dataclass(frozen=True, eq=False)
class PositivePairs:
    """The (user, item) pairs of a history, encoded for fast membership tests.

    Attributes:
        num_items: size of the item space (the key base).
        keys: (P,) int64 sorted unique keys ``user * num_items + item``.
        degree: (num_users,) int64 distinct items per user.
        adjusted: (P,) int64 ``user * num_items + item - rank`` where rank is the pair's position
            among the user's sorted items: the k-th item a user has NOT seen is ``k + j`` with ``j``
            the number of adjusted entries ``<= user * num_items + k`` in that user's block.
        starts: (num_users,) int64 offset of each user's block in ``keys``.
    """

    num_items: int
    keys: Tensor
    degree: Tensor
    adjusted: Tensor
    starts: Tensor


def positive_pairs(user: Tensor, item: Tensor, num_users: int, num_items: int) -> PositivePairs:
    """Encode the history pairs (duplicates collapse) as a :class:`PositivePairs`.

    Raises:
        DataError: if some user has interacted with every item (no negative exists for them).
    """
    keys = torch.unique(user.long() * num_items + item.long())  # sorted
    key_user = torch.div(keys, num_items, rounding_mode="floor")
    degree = torch.bincount(key_user, minlength=num_users)
    full = torch.nonzero(degree >= num_items).flatten()
    if full.numel():
        raise DataError(
            f"Expected every user to have at least one item to sample as a negative; users "
            f"{full[:5].tolist()} (of {full.numel()}) have interacted with all {num_items} items"
        )
    starts = torch.cumsum(degree, 0) - degree
    rank = torch.arange(keys.numel(), device=keys.device) - starts[key_user]
    return PositivePairs(num_items, keys, degree, keys - rank, starts)


class PositivePairsCache:
    """The :class:`PositivePairs` of the last ``ModelInputs`` seen, rebuilt when they change.

    Keyed on the identity of ``inputs.user`` (``ModelInputs`` is immutable; moving it to another
    device makes a new tensor and so a new entry). Models hold one to avoid re-encoding every epoch.
    """

    def __init__(self) -> None:
        self._key: Tensor | None = None
        self._pairs: PositivePairs | None = None

    def get(self, inputs: ModelInputs) -> PositivePairs:
        if self._pairs is None or self._key is not inputs.user:
            self._pairs = positive_pairs(inputs.user, inputs.item, inputs.num_users,
                                         inputs.num_items)
            self._key = inputs.user
        return self._pairs


def _contains(sorted_keys: Tensor, query: Tensor) -> Tensor:
    """Membership of ``query`` in ``sorted_keys`` (both int64), elementwise."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(query, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, query).clamp_max(sorted_keys.numel() - 1)
    return sorted_keys[pos] == query


def sample_negatives(
    user: Tensor, pairs: PositivePairs, generator: torch.Generator, *, max_rounds: int = 10
) -> Tensor:
    """One item per row of ``user``, uniform over the items that user never interacted with.

    Rejection sampling: draw uniformly, redraw only the collisions with a positive pair, for at
    most ``max_rounds`` rounds. Rows still colliding afterwards (users who have seen nearly every
    item) get an exact draw: ``k`` uniform in ``[0, num_items - degree)`` mapped to the k-th unseen
    item through ``pairs.adjusted``. Both steps sample the same (uniform) distribution.

    Shapes:
        user: (B,) int64; returns (B,) int64 item indices.
    """
    n = pairs.num_items
    user = user.long()
    neg = torch.randint(n, user.shape, generator=generator, device=generator.device).to(user.device)
    todo = torch.nonzero(_contains(pairs.keys, user * n + neg)).flatten()
    for _ in range(max_rounds):
        if todo.numel() == 0:
            return neg
        redraw = torch.randint(n, todo.shape, generator=generator, device=generator.device)
        neg[todo] = redraw.to(user.device)
        todo = todo[_contains(pairs.keys, user[todo] * n + neg[todo])]
    if todo.numel():
        u = user[todo]
        free = (n - pairs.degree[u]).to(torch.float64)
        unit = torch.rand(todo.shape, generator=generator, device=generator.device,
                          dtype=torch.float64)
        k = (unit.to(user.device) * free).long().clamp_max(n - 1 - pairs.degree[u])  # (R,)
        j = torch.searchsorted(pairs.adjusted, u * n + k, right=True) - pairs.starts[u]
        neg[todo] = k + j
    return neg


def bpr_triples(
    user: Tensor,
    item: Tensor,
    num_items: int,
    generator: torch.Generator,
    *,
    seen: PositivePairs | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Every history row once, shuffled, with one sampled negative: ``(user, pos, neg)``.

    Args:
        user, item: (N,) the history pairs (the positives).
        num_items: size of the item space.
        generator: the only source of randomness (shuffle, then negatives).
        seen: pairs the negatives must avoid (default: the pairs of ``user``/``item``).

    Shapes:
        returns three (N,) int64 tensors.
    """
    if seen is None:
        num_users = int(user.max()) + 1 if user.numel() else 0
        seen = positive_pairs(user, item, num_users, num_items)
    order = torch.randperm(user.numel(), generator=generator, device=generator.device)
    order = order.to(user.device)
    u, i = user[order].long(), item[order].long()
    return u, i, sample_negatives(u, seen, generator)


def bpr_batches(
    user: Tensor,
    item: Tensor,
    num_items: int,
    batch_size: int,
    generator: torch.Generator,
    *,
    seen: PositivePairs | None = None,
) -> Iterator[dict[str, Tensor]]:
    """One epoch of :func:`bpr_triples` cut into batches ``{"user", "pos", "neg"}``."""
    u, i, j = bpr_triples(user, item, num_items, generator, seen=seen)
    for start in range(0, u.numel(), batch_size):
        stop = start + batch_size
        yield {"user": u[start:stop], "pos": i[start:stop], "neg": j[start:stop]}


def next_item_batches(
    seq_items: Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[dict[str, Tensor]]:
    """Shuffled batches of next-item training pairs from left-padded sequences.

    Each user with at least 2 items contributes ``input = seq[:, :-1]`` and
    ``target = seq[:, 1:] - 1`` (item indices; ``-100`` where the input is padding), so position
    ``t`` of the input predicts the item that followed it.

    Shapes:
        seq_items: (num_users, L) item index + 1, 0 = pad. Batches: ``user`` (B,),
        ``input`` (B, L - 1) item index + 1, ``target`` (B, L - 1) item index or -100.
    """
    lengths = (seq_items > 0).sum(1)
    users = torch.nonzero(lengths >= 2).flatten()
    order = torch.randperm(users.numel(), generator=generator, device=generator.device)
    users = users[order.to(users.device)]
    for start in range(0, users.numel(), batch_size):
        u = users[start : start + batch_size]
        seq = seq_items[u]  # (B, L)
        inp = seq[:, :-1]  # (B, L-1)
        # No target where the input is padding (the first item has no context to predict it).
        target = (seq[:, 1:] - 1).masked_fill(inp == 0, -100)  # (B, L-1)
        yield {"user": u, "input": inp, "target": target}


def cloze_mask(
    seq: Tensor,
    mask_prob: float,
    mask_token: int,
    generator: torch.Generator,
    *,
    last_only_prob: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """BERT4Rec's cloze task: hide random items behind ``mask_token`` and predict them.

    Every non-padding position is masked independently with ``mask_prob`` (always replaced by the
    mask token, as BERT4Rec does); a sequence left with no masked item gets one at a random
    non-padding position. With probability ``last_only_prob`` a sequence instead has only its last
    (most recent) item masked, which is the test-time situation (BERT4Rec adds such samples).

    Args:
        seq: (B, L) item index + 1, left-padded with 0.
        mask_prob: masking probability per item.
        mask_token: the [MASK] id (BERT4Rec vocabulary: num_items + 1).
        generator: the only source of randomness.
        last_only_prob: per-sequence probability of masking just the last item (default: 0).

    Returns:
        ``(masked_seq, labels)``: (B, L) with masked positions set to ``mask_token``, and (B, L)
        item indices (0-based) at masked positions, -100 elsewhere. Rows without items stay
        unmasked with all labels -100.
    """
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"Expected 'mask_prob' in [0, 1] (got {mask_prob})")
    valid = seq > 0  # (B, L)
    draw = torch.rand(seq.shape, generator=generator, device=generator.device).to(seq.device)
    masked = valid & (draw < mask_prob)
    # At least one mask per non-empty row: the valid position with the largest (fresh) score.
    score = torch.rand(seq.shape, generator=generator, device=generator.device).to(seq.device)
    pick = score.masked_fill(~valid, -1.0).argmax(1)  # (B,)
    empty = ~masked.any(1) & valid.any(1)
    masked[empty, pick[empty]] = True
    last_only = torch.rand(seq.shape[0], generator=generator, device=generator.device)
    last_only = (last_only.to(seq.device) < last_only_prob) & valid[:, -1]
    masked[last_only] = False
    masked[last_only, -1] = True
    labels = torch.where(masked, seq - 1, torch.full_like(seq, -100))
    return seq.masked_fill(masked, mask_token), labels
