"""S4Rec's losses (pure): Sinkhorn-Knopp cluster targets, clustering cross-entropy, sequence
contrastive learning with prototype negatives, cluster-aware self-distillation.

Wei et al., "Leave No One Behind: Online Self-Supervised Self-Distillation for Sequential
Recommendation", WWW 2024 (methods.md 5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from mmseq.losses.contrastive import info_nce, kl_divergence


@torch.no_grad()
def sinkhorn_knopp(scores: Tensor, *, epsilon: float = 0.05, num_iterations: int = 3) -> Tensor:
    r"""Equal-partition soft assignments of a batch to prototypes (SwAV's Sinkhorn-Knopp).

    Solves :math:`Q^* = \mathrm{diag}(m)\exp(S/\epsilon)\mathrm{diag}(v)` on the transportation
    polytope :math:`\{Q \ge 0 : Q 1_K = \frac{1}{B} 1_B,\; Q^\top 1_B = \frac{1}{K} 1_K\}` by
    alternately rescaling columns and rows, in the log domain (no overflow for small
    ``epsilon``). The last step rescales rows, so row sums are exact and column sums converge
    with ``num_iterations``. Gradients do not flow (targets).

    Args:
        scores: user-prototype similarities ``z mu^T``.
        epsilon: entropic regularisation; smaller is closer to a hard assignment (default: 0.05).
        num_iterations: column/row rescaling rounds (>= 1) (default: 3, as SwAV).

    Shapes:
        scores: (B, K); returns (B, K) with rows summing to 1/B (multiply by B for targets).
    """
    if scores.dim() != 2:
        raise ValueError(f"Expected 'scores' of shape (B, K) (got {tuple(scores.shape)})")
    if epsilon <= 0:
        raise ValueError(f"Expected 'epsilon' > 0 (got {epsilon})")
    if num_iterations < 1:
        raise ValueError(f"Expected 'num_iterations' >= 1 (got {num_iterations})")
    b, k = scores.shape
    log_kernel = scores.float() / epsilon  # (B, K)
    log_row, log_col = -math.log(b), -math.log(k)
    u = torch.zeros(b, device=scores.device)
    v = torch.zeros(k, device=scores.device)
    for _ in range(num_iterations):
        v = log_col - torch.logsumexp(log_kernel + u[:, None], dim=0)  # columns sum to 1/K
        u = log_row - torch.logsumexp(log_kernel + v[None, :], dim=1)  # rows sum to 1/B
    return torch.exp(log_kernel + u[:, None] + v[None, :]).to(scores.dtype)


def clustering_cross_entropy(targets: Tensor, logits: Tensor) -> Tensor:
    r""":math:`\mathcal{L}_{Clust} = -\mathrm{mean}_u \sum_k q_u^k \log \mathrm{softmax}(\ell_u)^k`.

    Args:
        targets: cluster targets ``q`` (rows sum to 1; not differentiated).
        logits: ``z_u mu^T / tau_1``.

    Shapes:
        targets, logits: (B, K); returns a scalar.
    """
    if targets.shape != logits.shape:
        raise ValueError(
            f"Expected 'targets' and 'logits' of one shape (got {tuple(targets.shape)} and "
            f"{tuple(logits.shape)})"
        )
    return -(targets.detach() * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def other_prototypes(prototypes: Tensor, assignment: Tensor) -> Tensor:
    """For each row, the prototypes of every cluster except its own (``k' != h(u)``).

    Shapes:
        prototypes: (K, d); assignment: (B,) int64 in [0, K); returns (B, K - 1, d).
    """
    k = prototypes.shape[0]
    idx = torch.arange(k - 1, device=prototypes.device)[None, :]  # (1, K-1)
    idx = idx + (idx >= assignment[:, None]).long()  # (B, K-1): skips the own cluster
    return prototypes[idx]


def sequence_contrastive_loss(view1: Tensor, view2: Tensor, prototypes: Tensor,
                              assignment: Tensor, *, tau: float = 1.0) -> Tensor:
    r"""S4Rec's :math:`\mathcal{L}_{SCL}(z^1, z^2) + \mathcal{L}_{SCL}(z^2, z^1)`.

    Each direction is :func:`~mmseq.losses.contrastive.info_nce`: the other view of the same
    sequence is the positive; the other sequences' second views in the batch and the prototypes
    of the clusters the sequence is NOT assigned to are the negatives (cosine similarities).
    The seed's denominator leaves out the positive; the standard form keeps it (ours).

    Shapes:
        view1, view2: (B, d); prototypes: (K, d); assignment: (B,); returns a scalar.
    """
    negatives = other_prototypes(prototypes, assignment)  # (B, K-1, d)
    return (info_nce(view1, view2, tau=tau, extra_negatives=negatives)
            + info_nce(view2, view1, tau=tau, extra_negatives=negatives))


def cluster_distillation_loss(prototypes: Tensor, assignment: Tensor, z: Tensor, *,
                              tau: float = 1.0) -> Tensor:
    r"""Cluster-aware self-distillation :math:`\mathrm{KL}(\mathrm{softmax}(\mu_{h(u)}/\tau_3)
    \,\|\, \mathrm{softmax}(z_u/\tau_3))`, softmax over the d dimensions, teacher detached.

    Shapes:
        prototypes: (K, d); assignment: (B,); z: (B, d); returns a scalar (mean over users).
    """
    return kl_divergence(prototypes[assignment], z, tau=tau, detach_teacher=True)
