"""N independent transformer encoders run as ONE batched forward (EMKD's parallel networks).

Member ``n`` computes exactly what a :class:`~mmseq.nn.transformer.TransformerEncoder` with its
weights computes (:meth:`EnsembleTransformerEncoder.load_members` copies such encoders in, and a
test checks the outputs agree); the members' weights are stacked along a leading dimension and
every linear layer is one ``baddbmm``, every attention one ``scaled_dot_product_attention`` over
members x batch. This avoids a Python loop over networks and ``torch.func.vmap`` (which has no
batching rule for CPU attention and measured 25% slower than a loop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmseq.nn.dropout import UniformDropout
from mmseq.nn.padding import BATCHED_MIN_ROWS, query_layout
from mmseq.nn.transformer import TransformerEncoder, left_padded_attend


class EnsembleLinear(nn.Module):
    """``y[n] = x[n] W[n] + b[n]`` for N members at once (init as ``nn.Linear``).

    Shapes:
        x: (N, ..., in_features); returns (N, ..., out_features).
    """

    def __init__(self, *, num_members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num_members, out_features))
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default distribution
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        n, fan_in = x.shape[0], x.shape[-1]
        y = torch.baddbmm(self.bias[:, None, :], x.reshape(n, -1, fan_in), self.weight)
        return y.view(*x.shape[:-1], self.weight.shape[-1])


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dimension with a per-member affine transform.

    Shapes:
        x: (N, ..., d); returns the same shape.
    """

    def __init__(self, *, num_members: int, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_members, d_model))
        self.bias = nn.Parameter(torch.zeros(num_members, d_model))

    def forward(self, x: Tensor) -> Tensor:
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        y = F.layer_norm(x, x.shape[-1:], eps=self.eps)
        return torch.addcmul(self.bias.view(shape), y, self.weight.view(shape))


class EnsembleTransformerBlock(nn.Module):
    """:class:`~mmseq.nn.transformer.TransformerBlock` for N members (same arguments + N)."""

    def __init__(self, *, num_members: int, d_model: int, num_heads: int, ffn_dim: int,
                 dropout: float = 0.1, norm_first: bool = True) -> None:
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(
                f"Expected 'd_model' ({d_model}) to be divisible by 'num_heads' ({num_heads})"
            )
        n = num_members
        self.num_heads, self.dropout, self.norm_first = num_heads, dropout, norm_first
        self.qkv = EnsembleLinear(num_members=n, in_features=d_model, out_features=3 * d_model)
        self.out = EnsembleLinear(num_members=n, in_features=d_model, out_features=d_model)
        self.ffn_in = EnsembleLinear(num_members=n, in_features=d_model, out_features=ffn_dim)
        self.ffn_out = EnsembleLinear(num_members=n, in_features=ffn_dim, out_features=d_model)
        self.norm1 = EnsembleLayerNorm(num_members=n, d_model=d_model)
        self.norm2 = EnsembleLayerNorm(num_members=n, d_model=d_model)
        self.drop = UniformDropout(dropout)  # nn.Dropout's distribution, cheaper mask

    def attention(self, x: Tensor, attend: Tensor, *, key_pad: int = 0,
                  queries: int | None = None, keep: int | None = None) -> Tensor:
        """(N, B, T, d) -> (N, B, keep, d); ``key_pad``, ``queries``, ``keep`` as in
        :meth:`mmseq.nn.transformer.MultiHeadSelfAttention.forward`."""
        n, b, t, d = x.shape
        h = self.num_heads
        qkv = self.qkv(x)  # (N, B, T, 3d)
        if not key_pad and queries is None:  # training: split's backward concatenates, no fill
            q, k, v = qkv.split(d, dim=-1)  # 3 x (N, B, T, d)
        else:
            q, kv = qkv[..., :d], qkv[..., d:]
            zero = qkv.new_zeros(())
            if key_pad:  # hidden zero keys and values before the kept columns
                kv = torch.cat([zero.expand(n, b, key_pad, 2 * d), kv], 2)  # (N, B, P + T, 2d)
            if queries is not None and queries > t:  # zero queries before (padding)
                q = torch.cat([zero.expand(n, b, queries - t, d), q], 2)
            elif queries is not None:
                q = q[:, :, t - queries :]  # (N, B, Q, d)
            k, v = kv.split(d, dim=-1)  # 2 x (N, B, P + T, d)
        q, k, v = (z.reshape(n * b, z.shape[2], h, d // h).transpose(1, 2)
                   for z in (q, k, v))  # (N*B, h, Q or P + T, d/h)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attend, dropout_p=self.dropout if self.training else 0.0
        )  # (N*B, h, Q, d/h)
        y = y.transpose(1, 2).reshape(n, b, q.shape[2], d)  # (N, B, Q, d)
        if keep is not None:
            y = y[:, :, y.shape[2] - keep :]
        return self.drop(self.out(y))

    def ffn(self, x: Tensor) -> Tensor:
        return self.drop(self.ffn_out(self.drop(F.gelu(self.ffn_in(x)))))

    def forward(self, x: Tensor, attend: Tensor, *, key_pad: int = 0,
                queries: int | None = None, keep: int | None = None) -> Tensor:
        kept = x if keep is None else x[:, :, x.shape[2] - keep :]  # (N, B, keep, d)
        if self.norm_first:
            y = self.attention(self.norm1(x), attend, key_pad=key_pad, queries=queries, keep=keep)
            x = kept + y
            return x + self.ffn(self.norm2(x))
        x = self.norm1(kept + self.attention(x, attend, key_pad=key_pad, queries=queries,
                                             keep=keep))
        return self.norm2(x + self.ffn(x))


class EnsembleTransformerEncoder(nn.Module):
    """N independent :class:`~mmseq.nn.transformer.TransformerEncoder` stacks in one forward.

    Args:
        num_members: N, the number of independent encoders.
        d_model, num_layers, num_heads, ffn_dim, dropout, causal, norm_first: as
            :class:`~mmseq.nn.transformer.TransformerEncoder` (defaults: ffn ``4 * d_model``,
            dropout 0.1, non-causal, pre-LN).

    Shapes:
        x: (N, B, T, d); padding_mask: (B, T) (shared) or (N, B, T) bool, True at padding;
        returns (N, B, T, d).
    """

    def __init__(self, *, num_members: int, d_model: int, num_layers: int, num_heads: int,
                 ffn_dim: int | None = None, dropout: float = 0.1, causal: bool = False,
                 norm_first: bool = True) -> None:
        super().__init__()
        if num_members < 1:
            raise ValueError(f"Expected 'num_members' >= 1 (got {num_members})")
        self.num_members, self.causal = num_members, causal
        self.head_dim = d_model // num_heads
        self.blocks = nn.ModuleList(
            EnsembleTransformerBlock(num_members=num_members, d_model=d_model,
                                     num_heads=num_heads, ffn_dim=ffn_dim or 4 * d_model,
                                     dropout=dropout, norm_first=norm_first)
            for _ in range(num_layers)
        )
        self.final_norm = (EnsembleLayerNorm(num_members=num_members, d_model=d_model)
                           if norm_first else None)

    def attention_mask(self, padding_mask: Tensor | None, n: int, b: int, t: int,
                       device: torch.device) -> Tensor:
        """(N*B, 1, T, T) bool: True where query t may attend key s (self always allowed)."""
        attend = torch.ones(n, b, t, t, dtype=torch.bool, device=device)
        if padding_mask is not None:
            attend = attend & ~padding_mask.expand(n, b, t)[:, :, None, :]
        if self.causal:
            attend = attend & torch.ones(t, t, dtype=torch.bool, device=device).tril()
        attend = attend | torch.eye(t, dtype=torch.bool, device=device)
        return attend.view(n * b, 1, t, t)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        n, b, t, _ = x.shape
        if n != self.num_members:
            raise ValueError(f"Expected x.shape[0] == num_members ({self.num_members}) (got {n})")
        attend = self.attention_mask(padding_mask, n, b, t, x.device)
        for block in self.blocks:
            x = block(x, attend)  # (N, B, T, d)
        return self.final_norm(x) if self.final_norm is not None else x

    def last_state(self, x: Tensor, padding_mask: Tensor, *, width: int | None = None,
                   min_rows: int = BATCHED_MIN_ROWS) -> Tensor:
        """Each member's ``forward(x_w, mask_w)[:, :, -1]`` for ``x_w``: ``x`` after
        ``width - T`` padding columns, computing only what that state reads (bit-identical on
        CPU, as :meth:`mmseq.nn.transformer.TransformerEncoder.last_state`).

        Shapes:
            x: (N, B, T, d); padding_mask: (B, T) bool, True at padding; returns (N, B, d).
        """
        n, b, t, _ = x.shape
        width = t if width is None else width
        if 0 < b < min_rows:  # repeated rows: no GEMM of fewer than min_rows rows
            pick = torch.arange(min_rows, device=x.device) % b
            x, padding_mask = x[:, pick], padding_mask[pick]
        queries, last = query_layout(t, width, self.head_dim)
        attend = left_padded_attend(padding_mask, width, queries, causal=self.causal)
        attend = attend.expand(n, *attend.shape).flatten(0, 1)  # (N*B, 1, Q, width)
        pad = width - t
        for block in self.blocks[:-1]:
            x = block(x, attend, key_pad=pad, queries=queries, keep=t)  # (N, B, T, d)
        if len(self.blocks):
            x = self.blocks[-1](x, attend[:, :, queries - last :], key_pad=pad, queries=last,
                                keep=1)  # (N, B, 1, d)
        x = x[:, :b, -1]  # (N, B, d)
        return self.final_norm(x) if self.final_norm is not None else x

    @torch.no_grad()
    def load_members(self, encoders: Sequence[TransformerEncoder]) -> None:
        """Copy the weights of N single encoders (same sizes) into the members, in order."""
        if len(encoders) != self.num_members:
            raise ValueError(f"Expected {self.num_members} encoders (got {len(encoders)})")
        for n, enc in enumerate(encoders):
            single: Any = enc  # submodules reached by name (typed as Module | Tensor)
            for mine, theirs in zip(self.blocks, single.blocks, strict=True):
                pairs: list[tuple[Any, Any]] = [
                    (mine.qkv, theirs.attention.qkv), (mine.out, theirs.attention.out),
                    (mine.ffn_in, theirs.ffn[0]), (mine.ffn_out, theirs.ffn[3]),
                    (mine.norm1, theirs.norm1), (mine.norm2, theirs.norm2),
                ]
                for dst, src in pairs:
                    weight = src.weight.T if isinstance(dst, EnsembleLinear) else src.weight
                    dst.weight[n].copy_(weight)
                    dst.bias[n].copy_(src.bias)
            if self.final_norm is not None:
                self.final_norm.weight[n].copy_(single.final_norm.weight)
                self.final_norm.bias[n].copy_(single.final_norm.bias)
