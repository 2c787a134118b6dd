"""A compact transformer encoder for item sequences (SASRec, BERT4Rec, and the distillation models).

Blocks follow "Attention Is All You Need" (Vaswani et al., 2017): multi-head self-attention and a
GELU feed-forward network, each wrapped in dropout + residual + LayerNorm, either after the
residual (``norm_first=False``, BERT/BERT4Rec) or before the sub-layer (``norm_first=True``,
SASRec-style, with a final LayerNorm). Attention runs through
``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with a boolean "may attend" mask.

    Args:
        d_model: model width (divisible by ``num_heads``).
        num_heads: attention heads.
        dropout: dropout on the attention weights and on the output (default: 0.0).

    Shapes:
        x: (B, T, d); attend: (B, 1, T, T) bool, True where query t may attend key s.
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

    def forward(self, x: Tensor, attend: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)  # 3 x (B, T, d)
        q, k, v = (z.view(b, t, self.num_heads, d // self.num_heads).transpose(1, 2)
                   for z in (q, k, v))  # (B, h, T, d/h)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attend, dropout_p=self.dropout if self.training else 0.0
        )  # (B, h, T, d/h)
        y = y.transpose(1, 2).reshape(b, t, d)  # (B, T, d)
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

    def forward(self, x: Tensor, attend: Tensor) -> Tensor:
        if self.norm_first:
            x = x + self.attention(self.norm1(x), attend)
            return x + self.ffn(self.norm2(x))
        x = self.norm1(x + self.attention(x, attend))
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
