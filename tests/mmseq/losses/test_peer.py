"""PeerRec's losses on hand-made 3-item distributions (values worked out by hand in comments)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmseq.losses.peer import (
    deliberate_practice_loss,
    focal_negative_loss,
    focal_positive_loss,
    log_one_minus_softmax,
    mutual_distillation_kl,
    mutual_distillation_loss,
    noise_filter_mask,
    pseudo_peer_index,
    weighted_log_one_minus_softmax,
)

P0 = [0.7, 0.2, 0.1]  # peer 0 on sample A
P1 = [0.2, 0.5, 0.3]  # peer 1 on sample A


def logits_of(*rows_per_peer: list[list[float]]) -> torch.Tensor:
    """(T, M, C) logits whose softmax is exactly the given probabilities (log p)."""
    return torch.tensor(rows_per_peer, dtype=torch.float64).log()


def test_kl_direction_teacher_first_student_second() -> None:
    logits = logits_of([P0], [P1])  # (2, 1, 3)
    kl = mutual_distillation_kl(F.log_softmax(logits, -1))
    # peer 0 learns KL(p1 || p0) = .2 ln(.2/.7) + .5 ln(.5/.2) + .3 ln(.3/.1) = 0.5371765
    # peer 1 learns KL(p0 || p1) = .7 ln(.7/.2) + .2 ln(.2/.5) + .1 ln(.1/.3) = 0.5838147
    torch.testing.assert_close(kl, torch.tensor([0.5371765, 0.5838147], dtype=torch.float64),
                               rtol=0, atol=1e-6)


def test_kl_teacher_is_detached_and_student_gradient_is_p_student_minus_p_teacher() -> None:
    logits = logits_of([P0], [P1]).requires_grad_(True)
    kl = mutual_distillation_kl(F.log_softmax(logits, -1))
    kl[0].backward()  # peer 0's term only
    # d KL(p1 || p0) / d z0 = p0 - p1; nothing reaches peer 1 (its p is the detached teacher)
    expected = torch.tensor([[[0.5, -0.3, -0.2]], [[0.0, 0.0, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(logits.grad, expected, rtol=0, atol=1e-9)


def test_kl_averages_over_the_other_peers() -> None:
    p = [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.4, 0.4, 0.2]]
    logits = logits_of([p[0]], [p[1]], [p[2]])
    kl = mutual_distillation_kl(F.log_softmax(logits, -1))

    def kl_ref(a: list[float], b: list[float]) -> float:
        return sum(x * math.log(x / y) for x, y in zip(a, b))

    expected = [(kl_ref(p[1], p[0]) + kl_ref(p[2], p[0])) / 2,
                (kl_ref(p[0], p[1]) + kl_ref(p[2], p[1])) / 2,
                (kl_ref(p[0], p[2]) + kl_ref(p[1], p[2])) / 2]
    torch.testing.assert_close(kl, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-9)


def test_stage1_total_is_ce_plus_kl_and_one_peer_is_plain_cross_entropy() -> None:
    logits = logits_of([P0, P1], [P1, P0])
    targets = torch.tensor([0, 1])
    out = mutual_distillation_loss(logits, targets)
    # CE: peer 0 = -(ln .7 + ln .5)/2 = 0.5249; peer 1 = -(ln .2 + ln .2)/2 = 1.6094
    torch.testing.assert_close(out.terms["ce"], torch.tensor([0.5249110, 1.6094379],
                                                             dtype=torch.float64), atol=1e-6,
                               rtol=0)
    # both samples swap the two distributions, so each peer's KL is the mean of the two directions
    torch.testing.assert_close(out.terms["kl"], torch.full((2,), (0.5371765 + 0.5838147) / 2,
                                                           dtype=torch.float64), atol=1e-6,
                               rtol=0)
    torch.testing.assert_close(out.total, out.terms["ce"] + out.terms["kl"])
    single = torch.randn(1, 5, 7)
    t = torch.tensor([0, 6, 3, 3, 1])
    one = mutual_distillation_loss(single, t)
    torch.testing.assert_close(one.total, F.cross_entropy(single[0], t).view(1))
    assert one.terms["kl"].item() == 0.0


def test_pseudo_peer_is_the_other_peer_least_confident_on_the_truth() -> None:
    p_true = torch.tensor([[0.5, 0.1], [0.2, 0.6], [0.3, 0.05]])  # (T=3, M=2)
    # sample 0: peer 0 -> min(p1=.2, p2=.3) = 1; peer 1 -> min(p0=.5, p2=.3) = 2;
    #           peer 2 -> min(p0=.5, p1=.2) = 1
    # sample 1: peer 0 -> min(.6, .05) = 2; peer 1 -> min(.1, .05) = 2; peer 2 -> min(.1, .6) = 0
    assert pseudo_peer_index(p_true).tolist() == [[1, 2], [2, 2], [1, 0]]
    assert pseudo_peer_index(torch.rand(2, 6)).tolist() == [[1] * 6, [0] * 6]
    with pytest.raises(ValueError, match="at least 2 peers"):
        pseudo_peer_index(torch.rand(1, 3))


def test_noise_filter_takes_floor_beta_batch_samples_that_every_peer_fails() -> None:
    p_true = torch.tensor([[0.9, 0.01, 0.5, 0.02], [0.1, 0.02, 0.6, 0.9]])
    log_p = p_true.log()
    # best peer per sample: .9, .02, .6, .9 -> sample 1 first, then sample 2. Sample 3 is failed
    # by peer 0 only, so it is not noise.
    assert noise_filter_mask(log_p, 0.25).tolist() == [False, True, False, False]
    assert noise_filter_mask(log_p, 0.5).tolist() == [False, True, True, False]
    assert not noise_filter_mask(log_p, 0.0).any()
    for m, beta, count in ((100, 0.01, 1), (49, 0.02, 0), (50, 0.02, 1), (7, 0.3, 2),
                           (256, 0.02, 5)):
        assert int(noise_filter_mask(torch.rand(2, m).log(), beta).sum()) == count
    with pytest.raises(ValueError, match="beta"):
        noise_filter_mask(log_p, 1.5)


def test_focal_weights() -> None:
    log_p = torch.tensor([[math.log(0.5), math.log(0.25)]])  # (T=1, M=2)
    pseudo = torch.tensor([[0.25, 0.5]])
    # gamma 2: weights (1-.25)^2 = .5625 and (1-.5)^2 = .25; loss = (.5625 ln2 + .25 ln4)/2
    expected = (0.5625 * math.log(2) + 0.25 * math.log(4)) / 2
    torch.testing.assert_close(focal_positive_loss(log_p, pseudo, 2.0),
                               torch.tensor([expected]))
    # the second sample filtered: it still counts in the mean, with weight 0
    keep = torch.tensor([True, False])
    torch.testing.assert_close(focal_positive_loss(log_p, pseudo, 2.0, keep),
                               torch.tensor([0.5625 * math.log(2) / 2]))
    # negatives: pseudo p~ = [.6, .3, .1], target 0 -> weights .3^2, .1^2 on log(1 - p_k)
    logits = torch.tensor([[[0.5, 0.4, 0.1]]]).log()  # softmax = [.5, .4, .1]
    pseudo_full = torch.tensor([[[0.6, 0.3, 0.1]]])
    neg = focal_negative_loss(logits, pseudo_full, torch.tensor([0]), 2.0)
    torch.testing.assert_close(neg, torch.tensor([-(0.09 * math.log(0.6) + 0.01 * math.log(0.9))]))


def test_positive_gradient_is_scaled_cross_entropy_gradient_eq11() -> None:
    z = logits_of([P0]).requires_grad_(True)  # (1, 1, 3)
    log_p = F.log_softmax(z, -1)[..., 0]  # true item 0
    focal_positive_loss(log_p, torch.tensor([[0.2]], dtype=torch.float64), 1.0).sum().backward()
    # dL/dz_* = (1 - p~_*)^gamma (p_* - 1) = 0.8 * (0.7 - 1) = -0.24
    assert z.grad[0, 0, 0].item() == pytest.approx(-0.24, abs=1e-9)


def test_log_one_minus_softmax_is_exact_and_finite_at_the_extremes() -> None:
    z = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(log_one_minus_softmax(z), torch.log1p(-z.softmax(-1)))
    extreme = torch.tensor([[100.0, 0.0, 0.0]], requires_grad=True)
    out = log_one_minus_softmax(extreme)
    # log(1 - p_top) = log(2 e^0) - logsumexp = ln 2 - 100 (p_top rounds to 1 in float32)
    assert out[0, 0].item() == pytest.approx(math.log(2) - 100, abs=1e-4)
    out.sum().backward()
    assert torch.isfinite(extreme.grad).all()


def test_weighted_log_one_minus_softmax_equals_autograd_through_the_reference() -> None:
    g = torch.Generator().manual_seed(0)
    z = (torch.randn(2, 5, 7, generator=g, dtype=torch.float64) * 3)
    z[0, 0] = torch.tensor([40.0, 0, 0, 0, 0, 0, -3], dtype=torch.float64)  # p_top ~ 1
    z[1, 1, 2] = z[1, 1, 5]  # tied maxima
    w = torch.rand(2, 5, 7, generator=g, dtype=torch.float64)
    fused_z = z.clone().requires_grad_(True)
    ref_z = z.clone().requires_grad_(True)
    fused = weighted_log_one_minus_softmax(fused_z, w)
    ref = -(w * log_one_minus_softmax(ref_z)).sum(-1)
    torch.testing.assert_close(fused, ref, rtol=1e-12, atol=1e-12)
    upstream = torch.rand(2, 5, generator=g, dtype=torch.float64)
    (fused * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(fused_z.grad, ref_z.grad, rtol=1e-9, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: weighted_log_one_minus_softmax(x, w[:, 1:]),
                                    (z[:, 1:].clone().requires_grad_(True),))
    # float32 at p_top -> 1 (logits [100, 0, 0]): finite value and gradient
    extreme = torch.tensor([[100.0, 0.0, 0.0]], requires_grad=True)
    out = weighted_log_one_minus_softmax(extreme, torch.ones(1, 3))
    assert out.item() == pytest.approx(-(math.log(2) - 100), abs=1e-3)
    out.backward()
    ref = extreme.detach().double().requires_grad_(True)  # float64 reference: exact there
    (-log_one_minus_softmax(ref).sum()).backward()
    torch.testing.assert_close(extreme.grad.double(), ref.grad, rtol=0, atol=1e-6)
    # a lead of 120 (sum of the others' e^(z - z_top) is 0 in float32): still exact
    far = torch.tensor([[120.0, 0.0, -1.0]], requires_grad=True)
    weighted_log_one_minus_softmax(far, torch.ones(1, 3)).backward()
    ref = far.detach().double().requires_grad_(True)
    (-log_one_minus_softmax(ref).sum()).backward()
    torch.testing.assert_close(far.grad.double(), ref.grad, rtol=0, atol=1e-6)


def test_stage2_loss_by_hand_on_three_items() -> None:
    # Sample A (true item 0): p0 = [.7 .2 .1], p1 = [.2 .5 .3]. Sample B (true item 2): both peers
    # fail it: p0 = [.6 .3 .1], p1 = [.5 .4 .1], so with beta = .5 (1 of 2 samples) it is filtered.
    logits = logits_of([P0, [0.6, 0.3, 0.1]], [P1, [0.5, 0.4, 0.1]])
    targets = torch.tensor([0, 2])
    out = deliberate_practice_loss(logits, targets, alpha=0.5, beta=0.5, gamma=1.0)
    assert out.filtered == 1
    # peer 0, pseudo-peer = peer 1. On A: pos = (1 - .2) (-ln .7) = 0.2853399,
    #   neg = -(.5 ln .8 + .3 ln .9) = 0.1431800; CE = (-ln .7 - ln .1)/2 = 1.3296300.
    # peer 1, pseudo-peer = peer 0. On A: pos = (1 - .7) (-ln .2) = 0.4828314,
    #   neg = -(.2 ln .5 + .1 ln .7) = 0.1742969; CE = (-ln .2 - ln .1)/2 = 1.9560115.
    # B is filtered: it adds 0 to pos/neg but counts in their mean (halves them).
    d = torch.float64
    torch.testing.assert_close(out.terms["ce"], torch.tensor([1.3296300, 1.9560115], dtype=d),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(out.terms["pos"], torch.tensor([0.1426700, 0.2414157], dtype=d),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(out.terms["neg"], torch.tensor([0.0715900, 0.0871485], dtype=d),
                               rtol=0, atol=1e-6)
    # total = .5 CE + .5 (pos + neg)
    torch.testing.assert_close(out.total, torch.tensor([0.7719450, 1.1422879], dtype=d),
                               rtol=0, atol=1e-6)
    # without the filter B adds, for peer 0: pos (1 - .1)(-ln .1) = 2.0723266,
    # neg -(.5 ln .4 + .4 ln .7) = 0.6008153
    unfiltered = deliberate_practice_loss(logits, targets, alpha=0.5, beta=0.0, gamma=1.0)
    assert unfiltered.filtered == 0
    assert unfiltered.terms["pos"][0].item() == pytest.approx((0.2853399 + 2.0723266) / 2,
                                                              abs=1e-6)
    assert unfiltered.terms["neg"][0].item() == pytest.approx((0.1431800 + 0.6008153) / 2,
                                                              abs=1e-6)


def test_stage2_gradients_stay_within_each_peer_and_filter_holds_for_gamma_zero() -> None:
    logits = logits_of([P0, [0.6, 0.3, 0.1]], [P1, [0.5, 0.4, 0.1]]).requires_grad_(True)
    targets = torch.tensor([0, 2])
    out = deliberate_practice_loss(logits, targets, alpha=0.5, beta=0.5, gamma=1.0)
    out.total[0].backward()
    assert logits.grad[1].abs().max().item() == 0.0  # the pseudo-peer is a constant
    assert logits.grad[0].abs().max().item() > 0.0
    # gamma = 0: torch's 0**0 = 1 would undo "p~ = y"; the filtered sample must still weigh 0
    g0 = deliberate_practice_loss(logits.detach(), targets, alpha=0.0, beta=0.5, gamma=0.0)
    # peer 0 on A: pos = -ln .7; neg = -(ln .8 + ln .9); halved by the mean over 2 samples
    assert g0.total[0].item() == pytest.approx(
        (-math.log(0.7) - math.log(0.8) - math.log(0.9)) / 2, abs=1e-6)


def test_bad_shapes_and_hyper_parameters_are_named() -> None:
    with pytest.raises(ValueError, match=r"\(T, M, C\)"):
        mutual_distillation_loss(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        mutual_distillation_loss(torch.zeros(2, 4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="alpha"):
        deliberate_practice_loss(torch.zeros(2, 4, 3), torch.zeros(4, dtype=torch.long),
                                 alpha=1.5, beta=0.0, gamma=1.0)
