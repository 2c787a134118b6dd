import pytest
import torch

from mmseq.nn.dropout import UniformDropout, uniform_dropout


def test_keeps_each_element_with_probability_one_minus_p_and_rescales_it():
    torch.manual_seed(0)
    x = torch.full((400, 500), 2.0)
    y = uniform_dropout(x, 0.3)
    kept = y != 0
    # 200,000 Bernoulli(0.7) draws: the kept share's standard error is about 0.001.
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    assert torch.equal(y[kept], torch.full_like(y[kept], 2.0 / 0.7))


def test_mean_is_preserved_as_nn_dropout_preserves_it():
    torch.manual_seed(1)
    x = torch.randn(200, 1000)
    ours = torch.stack([uniform_dropout(x, 0.5) for _ in range(20)]).mean(0)
    theirs = torch.stack([torch.nn.functional.dropout(x, 0.5) for _ in range(20)]).mean(0)
    # Both are unbiased: their per-element averages differ from x by the same noise level.
    ours_noise, theirs_noise = (ours - x).abs().mean().item(), (theirs - x).abs().mean().item()
    assert ours_noise == pytest.approx(theirs_noise, rel=0.05)


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(2)
    x = torch.randn(50, 40, requires_grad=True)
    y = uniform_dropout(x, 0.25)
    y.sum().backward()
    expected = (y != 0).float() / 0.75
    assert torch.equal(x.grad, expected)


def test_identity_when_not_training_or_p_zero():
    x = torch.randn(8, 3)
    module = UniformDropout(0.4).eval()
    assert module(x) is x
    assert uniform_dropout(x, 0.0) is x


def test_same_generator_state_gives_the_same_mask():
    x = torch.randn(64, 64)
    torch.manual_seed(7)
    a = uniform_dropout(x, 0.2)
    torch.manual_seed(7)
    b = uniform_dropout(x, 0.2)
    assert torch.equal(a, b)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_rejects_probabilities_outside_zero_one(p):
    with pytest.raises(ValueError, match="dropout probability"):
        UniformDropout(p)
    with pytest.raises(ValueError, match="dropout probability"):
        uniform_dropout(torch.ones(2), p)
