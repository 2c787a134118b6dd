"""The batched ensemble encoder computes exactly what N separate TransformerEncoders compute."""

from __future__ import annotations

import pytest
import torch

from mmseq.nn.ensemble_transformer import EnsembleTransformerEncoder
from mmseq.nn.transformer import TransformerEncoder


@pytest.mark.parametrize("causal,norm_first", [(False, False), (True, True)])
def test_members_equal_independent_encoders(causal: bool, norm_first: bool) -> None:
    torch.manual_seed(0)
    kwargs = dict(d_model=8, num_layers=2, num_heads=2, ffn_dim=16, dropout=0.3, causal=causal,
                  norm_first=norm_first)
    singles = [TransformerEncoder(**kwargs) for _ in range(3)]
    ensemble = EnsembleTransformerEncoder(num_members=3, **kwargs)
    ensemble.load_members(singles)
    x = torch.randn(3, 4, 5, 8)
    pad = torch.tensor([[True, True, False, False, False]] * 2 + [[False] * 5] * 2)  # (B, T)
    ensemble.eval()
    expected = torch.stack([enc.eval()(x[n], pad) for n, enc in enumerate(singles)])
    torch.testing.assert_close(ensemble(x, pad), expected, rtol=1e-5, atol=1e-5)
    # A per-member padding mask (N, B, T) is honoured member by member.
    pads = torch.stack([pad, ~pad & False, pad])
    expected = torch.stack([enc(x[n], pads[n]) for n, enc in enumerate(singles)])
    torch.testing.assert_close(ensemble(x, pads), expected, rtol=1e-5, atol=1e-5)


def test_members_do_not_share_parameters_and_gradients_stay_separate() -> None:
    torch.manual_seed(1)
    ensemble = EnsembleTransformerEncoder(num_members=2, d_model=8, num_layers=1, num_heads=2)
    x = torch.randn(2, 3, 4, 8)
    ensemble(x)[0].sum().backward()  # only member 0's output
    for name, p in ensemble.named_parameters():
        assert p.grad[0].abs().sum() > 0, name
        assert torch.equal(p.grad[1], torch.zeros_like(p.grad[1])), name


def test_wrong_member_count_is_an_error() -> None:
    ensemble = EnsembleTransformerEncoder(num_members=2, d_model=8, num_layers=1, num_heads=2)
    with pytest.raises(ValueError, match="num_members"):
        ensemble(torch.randn(3, 1, 2, 8))
    with pytest.raises(ValueError, match="num_members"):
        EnsembleTransformerEncoder(num_members=0, d_model=8, num_layers=1, num_heads=2)
