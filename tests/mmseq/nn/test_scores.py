"""Score products into the evaluation's reused buffer: same bits, never an overwritten result."""

from __future__ import annotations

import pytest
import torch

from mmseq.nn.scores import item_scores, score_workspace


def _operands(rows: int = 8, items: int = 300, d: int = 16):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(rows, d, generator=g), torch.randn(items, d, generator=g),
            torch.randn(items, generator=g))


@pytest.mark.parametrize("with_bias", [False, True])
def test_scores_are_the_plain_products_bit_for_bit(with_bias: bool) -> None:
    h, items, bias = _operands()
    bias = bias if with_bias else None
    reference = h @ items.T if bias is None else h @ items.T + bias
    outside = item_scores(h, items, bias)
    with torch.no_grad(), score_workspace():
        inside = item_scores(h, items, bias)
    assert torch.equal(outside, torch.addmm(bias, h, items.T) if with_bias else h @ items.T)
    assert torch.equal(inside, outside)
    torch.testing.assert_close(inside, reference)


def test_the_buffer_is_reused_across_batches_and_never_twice_in_one() -> None:
    h, items, bias = _operands()
    with torch.no_grad(), score_workspace() as workspace:
        first = item_scores(h, items, bias)
        second = item_scores(h[:3], items)  # same batch: a fresh tensor, first stays intact
        assert second.data_ptr() != first.data_ptr()
        assert torch.equal(first, torch.addmm(bias, h, items.T))
        workspace.release()
        third = item_scores(h[:5], items)  # next batch, fewer rows: the same storage
        assert third.data_ptr() == first.data_ptr()
        assert third.shape == (5, 300) and third.is_contiguous()
        assert torch.equal(third, h[:5] @ items.T)


def test_no_buffer_outside_the_block_or_while_autograd_records() -> None:
    h, items, _ = _operands()
    a, b = item_scores(h, items), item_scores(h, items)
    assert a.data_ptr() != b.data_ptr()
    w = items.clone().requires_grad_(True)
    with score_workspace():  # grad enabled: training-time products keep their own tensors
        s = item_scores(h, w)
        assert s.requires_grad
        s.sum().backward()
    torch.testing.assert_close(w.grad, h.sum(0).expand_as(w))
    with torch.no_grad(), score_workspace():
        pass
    c, d = item_scores(h, items), item_scores(h, items)  # the block is closed again
    assert c.data_ptr() != d.data_ptr()
