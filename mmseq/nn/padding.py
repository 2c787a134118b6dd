"""Encoding left-padded token rows at their own width (length buckets).

Sequence models here pad histories on the left to a fixed width ``L`` (``max_len``): the last
column is the newest item, positions are right-aligned, and padded keys are hidden from
attention. A row's states at its real positions therefore do not depend on how many padding
columns precede it, so rows can be grouped by length and each group encoded at its own width.
On real data this matters: S3-Rec LastFM's 200-wide training windows are 25% items, Amazon
histories in a 50-wide window fewer still, and attention's cost (with its dropout) grows with the
square of the width.

Bit-identity. Trimming changes no maths, but the CPU attention kernels' sums over keys are
blocked, so a row's state at width ``L'`` can differ from its state at width ``L`` in the last bit
(about 1e-6). Measured on torch 2.13's CPU kernels (2 threads, 1-2 heads, widths 50 and 200), the
states are bit-identical whenever ``L - L'`` is a multiple of :data:`KEY_ALIGN` (32) and
``L'`` is not 2 or 3 (:data:`MIN_KEY_WIDTH`):
:func:`last_states_by_length` with ``multiple=KEY_ALIGN`` trims only that way, so that scores (and
so evaluation metrics) are exactly the padded batch's. ``tests/mmseq/nn/test_padding.py`` checks
it on this machine's kernels. These rules were measured on Intel Xeon; other kernels agree to
float rounding only: GPUs, and CPUs whose GEMM rows depend on the row count (AMD EPYC, measured:
at most 9.8e-7 on last states and scores, per-user metrics unchanged). Trimming stays on there:
it changes rounding only, a run still repeats itself to the bit on one machine, and each stored
result names its CPU. The tests compare to rounding where a probe finds such kernels
(``tests/conftest.py``).

Scoring reads one state per row, the last; ``encode_last`` (e.g.
:meth:`mmseq.nn.transformer.TransformerEncoder.last_state`) computes just that, from a row's own
columns only, at the group's key width: :func:`last_states_by_length` then splits each group by
row length as well, so no row pays for another's padding, and the states stay the group's
(the kernel rules that keeps exact: :data:`EXACT_MIN_ROWS`, :func:`query_layout`).

The loops below run over at most ``log2(L) + 1`` buckets (widths), or with ``encode_last`` over
at most ``L`` (width, length) groups, never over users.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

#: ``encode(tokens (B, L')) -> states (..., B, L', d)``: any encoder of left-padded rows.
Encoder = Callable[[Tensor], Tensor]
#: ``encode_last(tokens (B, T), width) -> (..., B, d)``: ``encode(tokens_w)[..., -1, :]`` where
#: ``tokens_w`` is ``tokens`` after ``width - T`` padding columns (T <= width).
LastEncoder = Callable[[Tensor, int], Tensor]

#: Trimming a multiple of this many leading columns leaves attention's outputs bit-identical.
KEY_ALIGN = 32

#: Key-aligned groups are not this narrow (but 1 is fine): attention over 2 or 3 keys sums them
#: otherwise than over the same keys after 32k hidden ones (measured on torch 2.13's CPU
#: kernels; tests/mmseq/nn/test_transformer_last.py, max_len 34).
MIN_KEY_WIDTH = 4

#: Fewest rows a GEMM needs for its rows to be computed as in any bigger product. torch's CPU
#: GEMMs (``addmm``, nn.Linear) of M rows and inner size K take a small-matrix kernel, whose
#: sums differ in the last bit, for M up to about K / 25 and at most 15 (measured on torch 2.13,
#: 1 thread: K = 64 -> M <= 2, 128 -> 5, 256 -> 10, >= 512 -> 15; attention's query blocks
#: alike, K = head width).
EXACT_MIN_ROWS = 16
#: The same for batched GEMMs (``baddbmm``: the ensemble and peer encoders): M <= 1 differs for
#: K <= 512, M <= 191 for K >= 1024 (measured as above).
BATCHED_MIN_ROWS = 256

#: Queries per block of torch's CPU flash attention below 192 queries (64 up to 767, then 256).
QUERY_BLOCK = 32


def small_gemm_rows(inner: int) -> int:
    """Most rows a CPU GEMM of inner size ``inner`` may compute with another kernel than a big
    product's: ``clamp(inner // 25, 1, 15)`` (measured, see :data:`EXACT_MIN_ROWS`; one row
    is a matrix-vector product whatever the size)."""
    return max(1, min(EXACT_MIN_ROWS - 1, inner // 25))


def query_layout(length: int, width: int, head_dim: int) -> tuple[int, int]:
    """Query counts for the last ``length`` of ``width`` columns under which every query's
    attention is computed as in the ``width``-wide pass: ``(queries, last)``.

    CPU flash attention takes queries in blocks of :data:`QUERY_BLOCK`; a block of at most
    :func:`small_gemm_rows` queries (inner sizes ``head_dim`` and ``width``) is computed with
    other kernels. If the ``width``-wide pass's last block is such a small one, ``queries``
    (>= ``length``) splits into blocks of the same sizes (the extra leading queries are
    padding); otherwise no block of ``queries`` is small. ``last``: the queries the last
    block needs for the last position. From 192 queries on the blocks change size: none trimmed.
    """
    if width >= 6 * QUERY_BLOCK:
        return width, width
    small = small_gemm_rows(max(head_dim, width))
    rest = width % QUERY_BLOCK
    if 0 < rest <= small:  # the reference's last block is a small one: the same blocks here
        queries = length + (width - length) % QUERY_BLOCK
        return queries, min(queries, rest)
    queries = max(length, small + 1)
    if 0 < queries % QUERY_BLOCK <= small:
        queries += small + 1 - queries % QUERY_BLOCK
    queries = min(queries, width)
    return queries, min(queries, small + 1)


def row_lengths(tokens: Tensor) -> Tensor:
    """Each row's width without its leading padding, at least 1: (B, L) -> (B,) int64."""
    width = tokens.shape[1]
    used = tokens != 0  # (B, L)
    first = torch.where(used.any(1), used.to(torch.int8).argmax(1), width - 1)  # (B,)
    return width - first


def aligned_groups(tokens: Tensor, multiple: int) -> list[tuple[Tensor, int]]:
    """Rows grouped by the narrowest width ``w >= length`` with ``L - w`` a multiple of
    ``multiple``: ``[(row indices, w), ...]``, widths ascending, rows ascending within a group.
    Widths 2 and 3 are widened by ``multiple`` where the row allows (:data:`MIN_KEY_WIDTH`).

    Shapes:
        tokens: (B, L), 0 = pad; the index tensors together hold 0..B-1 once each.
    """
    if multiple < 1:
        raise ValueError(f"Expected 'multiple' >= 1 (got {multiple})")
    width = tokens.shape[1]
    need = width - multiple * torch.div(width - row_lengths(tokens), multiple,
                                        rounding_mode="floor")  # (B,)
    narrow = (need > 1) & (need < MIN_KEY_WIDTH) & (need + multiple <= width)
    need = torch.where(narrow, need + multiple, need)
    order = torch.argsort(need, stable=True)
    widths, sizes = torch.unique_consecutive(need[order], return_counts=True)
    return list(zip(torch.split(order, sizes.tolist()), widths.tolist(), strict=True))


def leading_padding(tokens: Tensor) -> int:
    """Number of leading columns that are padding (0) in every row (at most ``L - 1``).

    Shapes:
        tokens: (B, L) int64, 0 = pad.
    """
    if tokens.numel() == 0:
        return 0
    used = (tokens != 0).any(0)  # (L,)
    return int(used.long().argmax()) if bool(used.any()) else tokens.shape[1] - 1


def trim_left_padding(tokens: Tensor) -> Tensor:
    """``tokens`` without its :func:`leading_padding` columns: (B, L) -> (B, L')."""
    return tokens[:, leading_padding(tokens) :]


def length_buckets(tokens: Tensor) -> list[Tensor]:
    """Row indices grouped by non-padding length rounded up to a power of two (1, 2, 4, ...).

    Shapes:
        tokens: (B, L), 0 = pad; returns index tensors that together hold 0..B-1 once each.
    """
    lengths = (tokens != 0).sum(1).clamp_min(1)  # (B,)
    bucket = torch.ceil(torch.log2(lengths.double())).long()  # exact for integer lengths
    order = torch.argsort(bucket, stable=True)
    sizes = torch.bincount(bucket).tolist()
    return [rows for rows in torch.split(order, sizes) if rows.numel()]


def length_split(
    groups: list[tuple[Tensor, int]], tokens: Tensor, min_rows: int = 1
) -> list[tuple[Tensor, int, int]]:
    """Each ``(rows, width)`` group split by row length: ``[(rows, width, T), ...]``, ascending
    (width, T); consecutive lengths are merged until a part has ``min_rows`` rows (or the group
    ends), and ``T`` is the longest row of its part (at most ``width``).

    Shapes:
        tokens: (B, L); the groups' index tensors hold distinct rows, and so do the results'.
    """
    lengths = row_lengths(tokens)
    out = []
    for rows, width in groups:  # a loop over widths (at most L), then over lengths
        length = torch.minimum(lengths[rows], torch.tensor(width))  # (R,)
        order = torch.argsort(length, stable=True)
        values, sizes = torch.unique_consecutive(length[order], return_counts=True)
        start = count = 0
        for stop, (value, size) in enumerate(zip(values.tolist(), sizes.tolist(), strict=True)):
            count += size
            if count >= min_rows or stop == len(sizes) - 1:
                out.append((rows[order[start : start + count]], width, int(value)))
                start, count = start + count, 0
    return out


def last_states_by_length(
    encode: Encoder,
    tokens: Tensor,
    *,
    multiple: int | None = None,
    encode_last: LastEncoder | None = None,
    min_rows: int = EXACT_MIN_ROWS,
) -> Tensor:
    """``encode(tokens)[..., -1, :]`` (each row's state at its last column), bucket by bucket.

    Args:
        encode: the encoder of left-padded rows.
        tokens: left-padded rows.
        multiple: None = buckets of power-of-two lengths, each trimmed to its longest row;
            an integer = :func:`aligned_groups` (only multiples of it trimmed; use
            :data:`KEY_ALIGN` for attention states bit-identical to the padded batch's).
        encode_last: if given, each of those groups (key width ``w``) is split by row length
            (:func:`length_split`) and its rows' last ``T`` columns go to
            ``encode_last(tokens, w)``: the group's states, without the other rows' padding.
            Lengths are merged into parts of at least ``min_rows`` rows where the group has
            them (``encode_last`` repeats the rows of smaller ones: no small-matrix GEMM), so
            key-aligned states are the padded pass's even for groups of a few rows, where
            encoding the group whole is not (its GEMMs are small ones).
        min_rows: with ``encode_last``, :data:`EXACT_MIN_ROWS` for encoders built on
            ``nn.Linear``, :data:`BATCHED_MIN_ROWS` for ``baddbmm`` ones (default: the former).

    Shapes:
        tokens: (B, L) left-padded; returns (..., B, d) in the rows' order.
    """
    if tokens.shape[0] == 0:
        return encode(tokens)[..., -1, :]
    width = tokens.shape[1]
    if multiple is None:
        groups = [(rows, width - leading_padding(tokens[rows])) for rows in length_buckets(tokens)]
    else:
        groups = aligned_groups(tokens, multiple)
    if encode_last is not None:
        split = length_split(groups, tokens, min_rows)
        buckets = [rows for rows, _, _ in split]
        parts = [encode_last(tokens[rows, width - t :], w) for rows, w, t in split]
    else:
        buckets = [rows for rows, _ in groups]
        parts = [encode(tokens[rows, width - w :])[..., -1, :] for rows, w in groups]
    states = torch.cat(parts, dim=-2)  # (..., B, d), rows in bucket order
    slot = torch.empty(tokens.shape[0], dtype=torch.long, device=tokens.device)
    slot[torch.cat(buckets)] = torch.arange(tokens.shape[0], device=tokens.device)
    return states[..., slot, :]


def masked_states_by_length(
    encode: Encoder, tokens: Tensor, labels: Tensor
) -> tuple[Tensor, Tensor]:
    """States and labels of the labelled positions (``labels >= 0``), bucket by bucket.

    Equal to ``h = encode(tokens); h[..., labels >= 0, :], labels[labels >= 0]``: the positions
    come back in row-major order of the whole batch, so anything that depends on sample order
    (a stable sort over samples, say) is unchanged.

    Shapes:
        tokens, labels: (B, L); returns states (..., M, d) and labels (M,), M = #(labels >= 0).
    """
    states, kept, _ = masked_and_last_states_by_length(encode, tokens, labels)
    return states, kept


def masked_and_last_states_by_length(
    encode: Encoder, tokens: Tensor, labels: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`masked_states_by_length` plus every row's state at its last column, from ONE
    encoding of each bucket (a training batch that needs both encodes once).

    Shapes:
        tokens, labels: (B, L); returns states (..., M, d), labels (M,) and last states
        (..., B, d) in the rows' order.
    """
    if tokens.shape[0] == 0:
        h = encode(tokens)
        return h.flatten(-3, -2)[..., :0, :], labels[labels >= 0], h[..., -1, :]
    width = tokens.shape[1]
    states, keys, lasts, buckets = [], [], [], length_buckets(tokens)
    for rows in buckets:
        first = leading_padding(tokens[rows])
        masked = labels[rows, first:] >= 0  # (b, w)
        h = encode(tokens[rows, first:])  # (..., b, w, d)
        states.append(h.flatten(-3, -2)[..., masked.flatten(), :])  # (..., m_b, d)
        lasts.append(h[..., -1, :])  # (..., b, d)
        row, col = masked.nonzero(as_tuple=True)  # row-major within the bucket
        keys.append(rows[row] * width + first + col)  # flat position in (B, L)
    order = torch.argsort(torch.cat(keys))
    slot = torch.empty(tokens.shape[0], dtype=torch.long, device=tokens.device)
    slot[torch.cat(buckets)] = torch.arange(tokens.shape[0], device=tokens.device)
    last = torch.cat(lasts, dim=-2)[..., slot, :]  # (..., B, d)
    return torch.cat(states, dim=-2)[..., order, :], labels[labels >= 0], last


__all__ = [
    "BATCHED_MIN_ROWS",
    "EXACT_MIN_ROWS",
    "KEY_ALIGN",
    "MIN_KEY_WIDTH",
    "Encoder",
    "LastEncoder",
    "aligned_groups",
    "last_states_by_length",
    "masked_and_last_states_by_length",
    "leading_padding",
    "length_buckets",
    "length_split",
    "masked_states_by_length",
    "QUERY_BLOCK",
    "query_layout",
    "small_gemm_rows",
    "row_lengths",
    "trim_left_padding",
]
