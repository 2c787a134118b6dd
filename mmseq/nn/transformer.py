"""A compact transformer encoder for item sequences (SASRec, BERT4Rec, and the distillation models).

Blocks follow "Attention Is All You Need" (Vaswani et al., 2017): multi-head self-attention and a
GELU feed-forward network, each wrapped in dropout + residual + LayerNorm, either after the
residual (``norm_first=False``, BERT/BERT4Rec) or before the sub-layer (``norm_first=True``,
SASRec-style, with a final LayerNorm). Attention runs through
``torch.nn.functional.scaled_dot_product_attention``.

:meth:`TransformerEncoder.last_state` computes only what scoring reads, the last position's
output, bit-identically on CPU (:data:`EXACT_MIN_ROWS`; tests/mmseq/nn/test_transformer_last.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmseq.nn.padding import EXACT_MIN_ROWS, query_layout


def left_padded_attend(padding_mask: Tensor, width: int, queries: int, *,
                       causal: bool) -> Tensor:
    """``TransformerEncoder.attention_mask`` at ``width`` columns, rows of the last ``queries``.

    ``padding_mask`` covers a row's last ``T`` columns; the ``width - T`` before them are
    padding (hidden keys); every query still sees itself (so padding queries stay finite).

    Shapes:
        padding_mask: (B, T) bool, True at padding; returns (B, 1, queries, width) bool.
    """
    b, t = padding_mask.shape
    if not t <= width or not 1 <= queries <= width:
        raise ValueError(f"Expected T <= width and 1 <= queries <= width (got T = {t}, "
                         f"width = {width}, queries = {queries})")
    keys = F.pad(padding_mask, (width - t, 0), value=True)  # (B, width)
    ones = torch.ones(width, width, dtype=torch.bool, device=padding_mask.device)
    rows = (ones.tril() if causal else ones)[width - queries :]  # (queries, width)
    eye = torch.eye(width, dtype=torch.bool, device=padding_mask.device)[width - queries :]
    return (~keys[:, None, None, :] & rows) | eye  # (B, 1, queries, width)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with a boolean "may attend" mask.

    Args:
        d_model: model width (divisible by ``num_heads``).
        num_heads: attention heads.
        dropout: dropout on the attention weights and on the output (default: 0.0).

    Shapes:
        x: (B, T, d); attend: (B, 1, T, T) bool, True where query t may attend key s.
        With ``key_pad`` P and ``queries`` Q: attend (B, 1, Q, P + T), output (B, Q, d).
    """

    def __init__(self, *, d_model: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(
                f"Expected 'd_model' ({d_model}) to be divisible by 'num_heads' ({num_heads})"
            )
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.out_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, attend: Tensor, *, key_pad: int = 0,
                queries: int | None = None, keep: int | None = None) -> Tensor:
        """Self-attention of ``x`` (B, T, d) -> (B, keep, d) (default: all T).

        ``key_pad`` hidden zero keys/values go before ``x``'s; the last ``queries`` positions
        query (default: T; up to P + T, the padding ones zero, e.g. so that the query blocks
        are a wider pass's); the last ``keep`` outputs come back.
        """
        b, t, d = x.shape
        h = self.num_heads
        qkv = self.qkv(x)  # (B, T, 3d)
        q, kv = qkv[..., :d], qkv[..., d:]
        zero = qkv.new_zeros(())
        if key_pad:  # hidden zero keys and values before the kept columns
            kv = torch.cat([zero.expand(b, key_pad, 2 * d), kv], 1)  # (B, P + T, 2d)
        if queries is not None and queries > t:  # zero queries before (padding)
            q = torch.cat([zero.expand(b, queries - t, d), q], 1)
        elif queries is not None:
            q = q[:, t - queries :]  # (B, Q, d)
        k, v = kv.split(d, dim=-1)  # 2 x (B, P + T, d)
        q, k, v = (z.reshape(b, z.shape[1], h, d // h).transpose(1, 2)
                   for z in (q, k, v))  # (B, h, Q or P + T, d/h)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attend, dropout_p=self.dropout if self.training else 0.0
        )  # (B, h, Q, d/h)
        y = y.transpose(1, 2).reshape(b, q.shape[2], d)  # (B, Q, d)
        if keep is not None:
            y = y[:, y.shape[1] - keep :]  # (B, keep, d)
        return self.out_dropout(self.out(y))


class TransformerBlock(nn.Module):
    """Self-attention + GELU FFN, each with dropout, residual and LayerNorm.

    Args:
        d_model: model width.
        num_heads: attention heads.
        ffn_dim: hidden width of the feed-forward network.
        dropout: dropout rate inside the block (default: 0.1).
        norm_first: pre-LN (True) or post-LN (False) (default: True).
    """

    def __init__(self, *, d_model: int, num_heads: int, ffn_dim: int, dropout: float = 0.1,
                 norm_first: bool = True) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.attention = MultiHeadSelfAttention(d_model=d_model, num_heads=num_heads,
                                                dropout=dropout)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ffn_dim), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(ffn_dim, d_model), nn.Dropout(dropout),
        )
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, attend: Tensor, *, key_pad: int = 0,
                queries: int | None = None, keep: int | None = None) -> Tensor:
        """(B, T, d) -> (B, keep, d) (default: all T); ``key_pad``, ``queries`` as in
        :meth:`MultiHeadSelfAttention.forward` (keys and values always from all T)."""
        kept = x if keep is None else x[:, x.shape[1] - keep :]  # (B, keep, d)
        if self.norm_first:
            y = self.attention(self.norm1(x), attend, key_pad=key_pad, queries=queries, keep=keep)
            x = kept + y
            return x + self.ffn(self.norm2(x))
        x = self.norm1(kept + self.attention(x, attend, key_pad=key_pad, queries=queries,
                                             keep=keep))
        return self.norm2(x + self.ffn(x))


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerBlock` over a (B, T, d) sequence with a padding mask.

    Every query may always attend to itself, so padded queries (which have no valid keys under
    a causal mask with left padding) give finite, ignorable outputs instead of NaN.

    Args:
        d_model: model width.
        num_layers: number of blocks.
        num_heads: attention heads per block.
        ffn_dim: feed-forward hidden width (default: ``4 * d_model``).
        dropout: dropout rate (default: 0.1).
        causal: position t attends only to positions <= t (SASRec) instead of all (BERT4Rec)
            (default: False).
        norm_first: pre-LN blocks plus a final LayerNorm (True) or post-LN blocks (False)
            (default: True).

    Shapes:
        x: (B, T, d); padding_mask: (B, T) bool, True at padding; returns (B, T, d).
    """

    def __init__(self, *, d_model: int, num_layers: int, num_heads: int,
                 ffn_dim: int | None = None, dropout: float = 0.1, causal: bool = False,
                 norm_first: bool = True) -> None:
        super().__init__()
        self.causal = causal
        self.head_dim = d_model // num_heads
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model=d_model, num_heads=num_heads, ffn_dim=ffn_dim or 4 * d_model,
                             dropout=dropout, norm_first=norm_first)
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()

    def attention_mask(self, padding_mask: Tensor | None, b: int, t: int,
                       device: torch.device) -> Tensor:
        """(B, 1, T, T) bool: True where query t may attend key s."""
        attend = torch.ones(b, 1, t, t, dtype=torch.bool, device=device)
        if padding_mask is not None:
            attend = attend & ~padding_mask[:, None, None, :]  # mask padded keys
        if self.causal:
            attend = attend & torch.ones(t, t, dtype=torch.bool, device=device).tril()
        return attend | torch.eye(t, dtype=torch.bool, device=device)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        b, t, _ = x.shape
        attend = self.attention_mask(padding_mask, b, t, x.device)
        for block in self.blocks:
            x = block(x, attend)  # (B, T, d)
        return self.final_norm(x)

    def last_state(self, x: Tensor, padding_mask: Tensor, *, width: int | None = None,
                   min_rows: int = EXACT_MIN_ROWS) -> Tensor:
        """``forward(x_w, mask_w)[:, -1]`` for ``x_w``: ``x`` after ``width - T`` padding columns,
        computing only what that state reads; bit-identical on CPU.

        The linear maps (q/k/v, output, FFN) and norms run on the T kept columns only, and in
        the last block on the last position only: padding columns' outputs are never read.
        What keeps the sums the reference's (measured on torch 2.13's CPU kernels): attention
        still spans ``width`` keys (the dropped ones as hidden zeros: its sums over keys are
        blocked by the key count), queries are padded so that they split into the reference's
        query blocks (:func:`~mmseq.nn.padding.query_layout`), and rows are repeated up to
        ``min_rows`` (:data:`~mmseq.nn.padding.EXACT_MIN_ROWS`) so that no GEMM is a
        small-matrix one.

        Shapes:
            x: (B, T, d); padding_mask: (B, T) bool, True at padding; returns (B, d).
        """
        b, t, _ = x.shape
        width = t if width is None else width
        if 0 < b < min_rows:  # repeated rows: no GEMM of fewer than min_rows rows
            pick = torch.arange(min_rows, device=x.device) % b
            x, padding_mask = x[pick], padding_mask[pick]
        queries, last = query_layout(t, width, self.head_dim)
        attend = left_padded_attend(padding_mask, width, queries, causal=self.causal)
        pad = width - t
        for block in self.blocks[:-1]:
            x = block(x, attend, key_pad=pad, queries=queries, keep=t)  # (B, T, d)
        if len(self.blocks):
            x = self.blocks[-1](x, attend[:, :, queries - last :], key_pad=pad, queries=last,
                                keep=1)  # (B, 1, d)
        return self.final_norm(x[:b, -1])  # (B, d)
