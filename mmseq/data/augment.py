"""Sequence augmentations for contrastive learning: mask, crop, reorder (CL4SRec's operators).

Xie et al., "Contrastive Learning for Sequential Recommendation", ICDE 2022, used by S4Rec
(methods.md 5). Every function takes a batch of left-padded rows (item index + 1, 0 = pad, the
most recent item in the last column), is vectorised over the batch, draws all its randomness from
the ``torch.Generator`` passed in (on the generator's device, as in ``mmseq.data.sampling``) and
returns left-padded rows of the same width. Rows without items come back unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mmseq.errors import DataError

OPERATIONS = ("crop", "mask", "reorder")


def _lengths(seq: Tensor) -> Tensor:
    """Items per row, after checking that every row is left-padded (no 0 after an item)."""
    if seq.dim() != 2:
        raise ValueError(f"Expected 'seq' of shape (B, L) (got {tuple(seq.shape)})")
    valid = seq > 0
    n = valid.sum(1)  # (B,)
    width = seq.shape[1]
    expected = torch.arange(width, device=seq.device) >= (width - n)[:, None]  # (B, L)
    bad = torch.nonzero((valid != expected).any(1)).flatten()
    if bad.numel():
        raise DataError(
            f"Expected left-padded rows (padding 0 only before the first item); rows "
            f"{bad[:5].tolist()} (of {bad.numel()}) have padding between items"
        )
    return n


def _uniform(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _ratio(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Expected '{name}' in [0, 1] (got {value})")


def crop(seq: Tensor, keep_ratio: float, generator: torch.Generator) -> Tensor:
    """Keep a random contiguous run of ``max(1, floor(keep_ratio * n))`` of a row's ``n`` items.

    Shapes:
        seq: (B, L) left-padded; returns (B, L), the run right-aligned and left-padded.
    """
    _ratio("keep_ratio", keep_ratio)
    n = _lengths(seq)
    b, width = seq.shape
    keep = torch.minimum(torch.clamp((keep_ratio * n).floor().long(), min=1), n)  # (B,)
    start = (_uniform((b,), generator, seq.device) * (n - keep + 1)).floor().long()
    start = torch.minimum(start, n - keep)
    cols = torch.arange(width, device=seq.device)
    # Output column j >= L - keep takes source column (L - n + start) + (j - (L - keep)).
    src = (keep - n + start)[:, None] + cols  # (B, L)
    inside = cols >= (width - keep)[:, None]  # (B, L)
    out = seq.gather(1, src.clamp(0, width - 1))
    return out.masked_fill(~inside, 0)


def mask_items(seq: Tensor, mask_ratio: float, mask_token: int,
               generator: torch.Generator) -> Tensor:
    """Replace ``floor(mask_ratio * n)`` items of each row, chosen uniformly, by ``mask_token``.

    Shapes:
        seq: (B, L) left-padded; returns (B, L) with the same padding.
    """
    _ratio("mask_ratio", mask_ratio)
    if mask_token <= 0:
        raise ValueError(f"Expected 'mask_token' > 0 (0 is padding) (got {mask_token})")
    n = _lengths(seq)
    count = (mask_ratio * n).floor().long()  # (B,)
    keys = _uniform(tuple(seq.shape), generator, seq.device).masked_fill(seq == 0, 2.0)
    rank = keys.argsort(1).argsort(1)  # (B, L): 0 = the smallest key of the row
    return seq.masked_fill(rank < count[:, None], mask_token)


def reorder(seq: Tensor, reorder_ratio: float, generator: torch.Generator) -> Tensor:
    """Shuffle a random contiguous segment of ``floor(reorder_ratio * n)`` items of each row.

    Shapes:
        seq: (B, L) left-padded; returns (B, L), the same items and padding.
    """
    _ratio("reorder_ratio", reorder_ratio)
    n = _lengths(seq)
    b, width = seq.shape
    size = (reorder_ratio * n).floor().long()  # (B,)
    start = (_uniform((b,), generator, seq.device) * (n - size + 1)).floor().long()
    first = width - n + torch.minimum(start, n - size)  # (B,) first column of the segment
    cols = torch.arange(width, device=seq.device)
    inside = (cols >= first[:, None]) & (cols < (first + size)[:, None])  # (B, L)
    # Sort keys: a column outside the segment keeps its index; inside, a uniform key in
    # [first, first + size) lands strictly between the outside neighbours, so a sort permutes
    # the segment only.
    noise = first[:, None] + _uniform((b, width), generator, seq.device) * size[:, None]
    keys = torch.where(inside, noise, cols.to(noise.dtype).expand(b, width))
    return seq.gather(1, keys.argsort(dim=1, stable=True))


def random_augment(
    seq: Tensor,
    generator: torch.Generator,
    *,
    mask_token: int,
    crop_ratio: float = 0.2,
    mask_ratio: float = 0.7,
    reorder_ratio: float = 0.2,
    operations: Sequence[str] = OPERATIONS,
) -> Tensor:
    """One operation per row, drawn uniformly from ``operations`` (CL4SRec's random augment).

    Args:
        seq: (B, L) left-padded rows.
        generator: the only source of randomness.
        mask_token: id written by ``mask`` (e.g. ``num_items + 1``).
        crop_ratio: share of items ``crop`` keeps (default: 0.2, ICLRec's default).
        mask_ratio: share of items ``mask`` hides (default: 0.7, ICLRec's default).
        reorder_ratio: share of items ``reorder`` shuffles (default: 0.2, ICLRec's default).
        operations: names among ``("crop", "mask", "reorder")`` (default: all three).

    Shapes:
        returns (B, L).
    """
    unknown = [op for op in operations if op not in OPERATIONS]
    if unknown or not operations:
        raise ValueError(f"Expected 'operations' from {list(OPERATIONS)} (got {list(operations)})")
    choice = torch.randint(len(operations), (seq.shape[0],), generator=generator,
                           device=generator.device).to(seq.device)  # (B,)
    out = seq
    # Every operation runs on the whole batch (a fixed sequence of draws) and rows pick theirs.
    for k, op in enumerate(operations):
        if op == "crop":
            view = crop(seq, crop_ratio, generator)
        elif op == "mask":
            view = mask_items(seq, mask_ratio, mask_token, generator)
        else:
            view = reorder(seq, reorder_ratio, generator)
        out = torch.where((choice == k)[:, None], view, out)
    return out
