"""PeerRec's peer losses (pure): mutual distillation and deliberate practice.

Hu et al., "A Sequential Recommendation Method Enhanced by Peer Knowledge" (PeerRec), Acta
Automatica Sinica 49(7), 2023; restated in shared/docs/methods.md section 3. Every function takes
the logits (or log-probabilities) of all ``T`` peers stacked on a leading peer dimension and works
on all peers at once (no loop over peers). A "sample" is one masked (cloze) position of the batch:
the seed's set ``I`` in eqs. (5)-(10), of size ``M``.

Stage 1 (eq. 5), loss of peer j:
    ``CE(y, p^(j)) + 1/(T-1) sum_{l != j} KL(p^(l) || p^(j))``, the teachers ``p^(l)`` detached.
Stage 2 (eqs. 6-10), loss of peer j:
    ``alpha CE + (1 - alpha) (L_pos + L_neg)`` with the pseudo-peer ``p~`` of eq. (6)/(7),
    ``L_pos = -mean_i (1 - p~_{i*})^gamma log p_{i*}`` and
    ``L_neg = -mean_i sum_{k != *} (p~_{ik})^gamma log(1 - p_{ik})``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "PeerLosses",
    "deliberate_practice_loss",
    "focal_negative_loss",
    "focal_positive_loss",
    "log_one_minus_softmax",
    "mutual_distillation_kl",
    "mutual_distillation_loss",
    "noise_filter_mask",
    "peer_cross_entropy",
    "pseudo_peer_index",
    "true_class_log_probs",
    "weighted_log_one_minus_softmax",
]


@dataclass
class PeerLosses:
    """Per-peer losses: ``total`` (T,) is what each peer minimises; ``terms`` its parts, each (T,).

    ``filtered`` counts the samples the noise filter removed from stage 2 (0 in stage 1).
    """

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    filtered: int = 0


def _check_peer_logits(logits: Tensor, targets: Tensor) -> None:
    if logits.dim() != 3:
        raise ValueError(
            f"Expected peer logits of shape (T, M, C) (got {tuple(logits.shape)})"
        )
    if targets.shape != logits.shape[1:2]:
        raise ValueError(
            f"Expected 'targets' of shape ({logits.shape[1]},) to match the peer logits "
            f"{tuple(logits.shape)} (got {tuple(targets.shape)})"
        )


def true_class_log_probs(log_probs: Tensor, targets: Tensor) -> Tensor:
    """``log p_{i*}^(j)``: each peer's log-probability of the true item.

    Shapes:
        log_probs: (T, M, C); targets: (M,) item indices; returns (T, M).
    """
    index = targets.view(1, -1, 1).expand(log_probs.shape[0], -1, 1)  # (T, M, 1)
    return log_probs.gather(-1, index).squeeze(-1)


def peer_cross_entropy(log_probs: Tensor, targets: Tensor) -> Tensor:
    """Cloze cross-entropy of every peer, averaged over the samples.

    Shapes:
        log_probs: (T, M, C); targets: (M,); returns (T,).
    """
    return -true_class_log_probs(log_probs, targets).mean(-1)


def mutual_distillation_kl(log_probs: Tensor) -> Tensor:
    r"""Eq. (5)'s distillation term, per peer: :math:`\frac{1}{T-1}\sum_{l\neq j}
    \mathrm{KL}(p^{(l)} \| p^{(j)})`, averaged over the samples.

    The teacher side ``p^(l)`` is detached, so peer j's gradient comes only from its own
    log-probabilities (deep mutual learning). With one peer there is nobody to learn from and the
    term is 0.

    Shapes:
        log_probs: (T, M, C) log-softmax of each peer; returns (T,).
    """
    t = log_probs.shape[0]
    if t == 1:
        return log_probs.new_zeros(1)
    teacher_log = log_probs.detach()
    teacher = teacher_log.exp()  # (T, M, C)
    neg_entropy = (teacher * teacher_log).sum(-1)  # (T, M): sum_c p_l log p_l
    cross = torch.einsum("lmc,jmc->ljm", teacher, log_probs)  # (T, T, M): sum_c p_l log p_j
    kl = neg_entropy.unsqueeze(1) - cross  # (T, T, M): kl[l, j] = KL(p_l || p_j)
    others = ~torch.eye(t, dtype=torch.bool, device=log_probs.device)  # l != j
    per_student = (kl * others.unsqueeze(-1)).sum(0) / (t - 1)  # (T, M)
    return per_student.mean(-1)


def mutual_distillation_loss(logits: Tensor, targets: Tensor) -> PeerLosses:
    """Stage 1 (eq. 5): ``CE + 1/(T-1) sum_{l != j} KL(p^(l) || p^(j))`` for every peer j.

    Args:
        logits: (T, M, C) each peer's scores of every item at the M masked positions.
        targets: (M,) the true item of each masked position.

    Returns:
        :class:`PeerLosses` with ``total`` (T,) and terms ``ce``, ``kl`` (each (T,)).
    """
    _check_peer_logits(logits, targets)
    log_probs = F.log_softmax(logits, dim=-1)
    ce = peer_cross_entropy(log_probs, targets)
    kl = mutual_distillation_kl(log_probs)
    return PeerLosses(ce + kl, {"ce": ce, "kl": kl})


def pseudo_peer_index(true_probs: Tensor) -> Tensor:
    """Eq. (6): for peer j and sample i, ``g = argmin_{k != j} p_{i*}^(k)``.

    The pseudo-peer of j on sample i is the OTHER peer least confident on the true item. Ties go
    to the lowest peer index.

    Shapes:
        true_probs: (T, M) each peer's probability (or log-probability) of the true item, T >= 2;
        returns (T, M) int64 peer indices, never equal to the row index.
    """
    t = true_probs.shape[0]
    if t < 2:
        raise ValueError(f"Expected at least 2 peers to choose a pseudo-peer from (got {t})")
    scores = true_probs.detach().unsqueeze(0).expand(t, -1, -1)  # (T_j, T_k, M)
    self_peer = torch.eye(t, dtype=torch.bool, device=true_probs.device).unsqueeze(-1)
    scores = scores.masked_fill(self_peer, float("inf"))
    return scores.argmin(1)  # (T, M)


def noise_filter_mask(true_log_probs: Tensor, beta: float) -> Tensor:
    """Eq. (7)'s noise filter: the ``floor(beta * M)`` samples that every peer fails.

    The seed ranks samples by cross-entropy "for any peer" (``p_{i*}^(forall j)``). We read this
    as: a sample is noise when even its BEST peer has a high loss, so the noise score is
    ``min_k CE_i^(k) = -max_k log p_{i*}^(k)``; the ``floor(beta * M)`` samples with the highest
    score are filtered (stable sort: ties go to the earlier sample). This picks exactly
    ``floor(beta * M)`` samples, as the seed's rank threshold does (shared/docs/methods.md 3).

    Shapes:
        true_log_probs: (T, M); returns (M,) bool, True where the sample is filtered.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"Expected 'beta' in [0, 1] (got {beta})")
    m = true_log_probs.shape[-1]
    count = int(beta * m)  # floor for beta >= 0
    mask = torch.zeros(m, dtype=torch.bool, device=true_log_probs.device)
    if count == 0:
        return mask
    noise = -true_log_probs.detach().max(0).values  # (M,) the best peer's cross-entropy
    order = torch.sort(noise, descending=True, stable=True).indices
    mask[order[:count]] = True
    return mask


def log_one_minus_softmax(logits: Tensor) -> Tensor:
    """``log(1 - softmax(logits))`` over the last dimension, finite for any finite logits.

    ``log1p(-p)`` is accurate for ``p <= 1/2``, which holds for every entry but (perhaps) a row's
    largest; that one is computed exactly as ``logsumexp(other logits) - logsumexp(logits)``,
    which stays finite (and has finite gradients) even when ``p`` rounds to 1.

    Shapes:
        logits: (..., C) with C >= 2; returns (..., C).
    """
    lse = torch.logsumexp(logits, dim=-1, keepdim=True)
    top = logits.argmax(-1, keepdim=True)  # (..., 1)
    p = (logits - lse).exp().scatter(-1, top, 0.0)  # top zeroed: no inf in log1p or its grad
    others = logits.scatter(-1, top, float("-inf"))
    top_value = torch.logsumexp(others, dim=-1, keepdim=True) - lse  # (..., 1)
    return torch.log1p(-p).scatter(-1, top, top_value)


def focal_positive_loss(true_log_probs: Tensor, pseudo_true_probs: Tensor, gamma: float,
                        keep: Tensor | None = None) -> Tensor:
    """Eq. (8): ``L_pos = -mean_i (1 - p~_{i*})^gamma log p_{i*}``, per peer.

    The weight ``(1 - p~_{i*})^gamma`` comes from the pseudo-peer and is treated as a constant.

    Args:
        true_log_probs: (T, M) each peer's ``log p_{i*}``.
        pseudo_true_probs: (T, M) the pseudo-peer's ``p~_{i*}``.
        gamma: deliberate-practice strength (>= 0).
        keep: (M,) bool, False for samples removed by the noise filter (weight 0); None = all.

    Returns:
        (T,); the mean runs over all M samples (filtered ones count as 0), as in eq. (8).
    """
    weight = (1.0 - pseudo_true_probs.detach()).clamp_min(0.0).pow(gamma)  # (T, M)
    if keep is not None:
        weight = weight * keep
    return -(weight * true_log_probs).mean(-1)


class _WeightedLogOneMinusSoftmax(torch.autograd.Function):
    """``-sum_k w_k log(1 - softmax(z)_k)`` with a closed-form backward (see the function below)."""

    @staticmethod
    def forward(ctx, logits: Tensor, weight: Tensor) -> Tensor:  # type: ignore[override]
        top = logits.argmax(-1, keepdim=True)  # (..., 1)
        e = (logits - logits.gather(-1, top)).exp_()  # (..., C): e_top = 1
        total = e.sum(-1, keepdim=True)  # (..., 1), >= 1
        others = e.scatter_(-1, top, 0.0).sum(-1, keepdim=True)  # sum over k != top
        p = e.div_(total)  # (..., C) softmax with the top entry zeroed (<= 1/2 each)
        q = p * (total / others.clamp_min(torch.finfo(p.dtype).tiny))  # softmax over k != top
        log_others = others.log()
        # Rows whose top logit leads by so much that sum_{k != top} e^(z_k - z_top) is subnormal
        # or 0: redo their log(1 - p_top) and q exactly from the logits without the top.
        extreme = (others < _EXTREME_SUM).squeeze(-1)  # (...,)
        if bool(extreme.any()):
            rows = logits[extreme].scatter(-1, top[extreme], float("-inf"))  # (R, C)
            log_others[extreme] = (torch.logsumexp(rows, -1, keepdim=True)
                                   - logits[extreme].gather(-1, top[extreme]))
            q[extreme] = torch.softmax(rows, -1)
        log1m = torch.log1p(-p).scatter_(-1, top, log_others - total.log())  # exact top
        ctx.save_for_backward(p, q, weight, top, total)
        return -(weight * log1m).sum(-1)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        p, q, weight, top, total = ctx.saved_tensors
        # dL/dz_j = r_j - p_j sum_k r_k with r_k = w_k p_k / (1 - p_k). The top entry's r can be
        # huge (p_top -> 1) but only enters as p_j r_top = w_top p_top q_j (q = softmax over
        # k != top) and as r_top (1 - p_top) = w_top p_top: both finite.
        p_top = total.reciprocal()  # (..., 1)
        w_top = weight.gather(-1, top)
        r = weight * p / (1.0 - p)  # (..., C), 0 at top
        r_sum = r.sum(-1, keepdim=True)
        grad = r - p * r_sum - (w_top * p_top) * q
        grad.scatter_(-1, top, w_top * p_top - p_top * r_sum)
        return grad * grad_out.unsqueeze(-1), None


_EXTREME_SUM = 1e-30  # above float32's smallest normal (1.2e-38) with room for a sum's rounding


def weighted_log_one_minus_softmax(logits: Tensor, weight: Tensor) -> Tensor:
    """``-sum_k weight_k log(1 - softmax(logits)_k)`` over the last dimension.

    The value of ``-(weight * log_one_minus_softmax(logits)).sum(-1)`` (row maxima exact, finite
    for any finite logits) in about a third of its time and memory traffic: one exp pass, and a
    closed-form gradient instead of autograd through two logsumexps and three scatters.
    ``weight`` is a constant (no gradient flows into it).

    Shapes:
        logits, weight: (..., C) with C >= 2; returns (...,).
    """
    return _WeightedLogOneMinusSoftmax.apply(logits, weight.detach())


def focal_negative_loss(logits: Tensor, pseudo_probs: Tensor, targets: Tensor,
                        gamma: float, keep: Tensor | None = None) -> Tensor:
    """Eq. (9): ``L_neg = -mean_i sum_{k != *} (p~_{ik})^gamma log(1 - p_{ik})``, per peer.

    Sums over every item except the true one; memory is a few (T, M, C) tensors, the size of
    the logits themselves.

    Args:
        logits: (T, M, C) each peer's scores (``p = softmax(logits)``).
        pseudo_probs: (T, M, C) the pseudo-peer's distribution ``p~`` (treated as a constant).
        targets: (M,) true items (excluded from the sum).
        gamma: deliberate-practice strength (>= 0; ``0**0`` counts as 1, as in torch.pow).
        keep: (M,) bool, False for samples removed by the noise filter; None = all.

    Returns:
        (T,).
    """
    weight = pseudo_probs.detach()
    if gamma != 1.0:
        weight = weight.pow(gamma)  # (T, M, C)
    index = targets.view(1, -1, 1).expand(weight.shape[0], -1, 1)
    weight = weight.scatter(-1, index, 0.0)  # k != *
    per_sample = weighted_log_one_minus_softmax(logits, weight)  # (T, M)
    if keep is not None:
        per_sample = per_sample * keep
    return per_sample.mean(-1)


def deliberate_practice_loss(logits: Tensor, targets: Tensor, *, alpha: float, beta: float,
                             gamma: float) -> PeerLosses:
    """Stage 2 (eqs. 6-10): ``alpha CE + (1 - alpha) (L_pos + L_neg)`` for every peer.

    Pseudo-peer (eq. 6): peer j learns from the other peer least confident on the true item.
    Noise filter (eq. 7): the :func:`noise_filter_mask` samples get ``p~ = y``, which gives them
    zero weight in ``L_pos`` and ``L_neg`` (for gamma > 0; we apply the zero weight for any gamma,
    which is what the filter is for). The CE term keeps every sample.

    Args:
        logits: (T, M, C), T >= 2 peers.
        targets: (M,) true items.
        alpha: weight of the plain cross-entropy, in [0, 1].
        beta: share of samples filtered as noise, in [0, 1].
        gamma: deliberate-practice strength, >= 0.

    Returns:
        :class:`PeerLosses`: ``total`` (T,) and terms ``ce``, ``pos``, ``neg`` (each (T,)).
    """
    _check_peer_logits(logits, targets)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Expected 'alpha' in [0, 1] (got {alpha})")
    if gamma < 0:
        raise ValueError(f"Expected 'gamma' >= 0 (got {gamma})")
    log_probs = F.log_softmax(logits, dim=-1)  # (T, M, C)
    true_log = true_class_log_probs(log_probs, targets)  # (T, M)
    ce = -true_log.mean(-1)
    g = pseudo_peer_index(true_log)  # (T, M)
    samples = torch.arange(targets.numel(), device=logits.device)
    pseudo = log_probs.detach().exp()[g, samples.unsqueeze(0)]  # (T, M, C) = p^(g[j, i])_i
    keep = ~noise_filter_mask(true_log, beta)  # (M,)
    pseudo_true = pseudo.gather(-1, targets.view(1, -1, 1).expand(pseudo.shape[0], -1, 1))
    pos = focal_positive_loss(true_log, pseudo_true.squeeze(-1), gamma, keep)
    neg = focal_negative_loss(logits, pseudo, targets, gamma, keep)
    total = alpha * ce + (1.0 - alpha) * (pos + neg)
    return PeerLosses(total, {"ce": ce, "pos": pos, "neg": neg},
                      filtered=int(keep.numel() - int(keep.sum())))
