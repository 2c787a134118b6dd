"""Sequence augmentations keep rows left-padded and valid, and depend only on the generator."""

from __future__ import annotations

import pytest
import torch

from mmseq.data.augment import crop, mask_items, random_augment, reorder
from mmseq.errors import DataError

MASK = 99


def rows(seed: int = 0, b: int = 64, width: int = 10) -> torch.Tensor:
    """Left-padded rows of distinct items (so positions can be traced), lengths 0..width."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, width + 1, (b,), generator=gen)
    items = torch.randperm(50, generator=gen)[:width].add(1).expand(b, width)  # distinct ids
    cols = torch.arange(width)
    return torch.where(cols >= width - lengths[:, None], items, 0)


def items_of(row: torch.Tensor) -> list[int]:
    return row[row > 0].tolist()


def assert_left_padded(out: torch.Tensor) -> None:
    n = (out > 0).sum(1)
    cols = torch.arange(out.shape[1])
    assert torch.equal(out > 0, cols >= out.shape[1] - n[:, None])


def test_crop_keeps_a_contiguous_run_of_the_right_length() -> None:
    seq = rows()
    out = crop(seq, 0.5, torch.Generator().manual_seed(1))
    assert_left_padded(out)
    for before, after in zip(seq, out):
        orig, kept = items_of(before), items_of(after)
        n = len(orig)
        assert len(kept) == (max(1, n // 2) if n else 0)
        starts = [s for s in range(n - len(kept) + 1) if orig[s : s + len(kept)] == kept]
        assert starts, (orig, kept)


def test_crop_hand_cases() -> None:
    seq = torch.tensor([[0, 0, 5, 6, 7, 8]])
    assert torch.equal(crop(seq, 1.0, torch.Generator().manual_seed(0)), seq)
    one = crop(seq, 0.0, torch.Generator().manual_seed(0))  # keeps max(1, 0) = 1 item
    assert one[0, :-1].eq(0).all() and one[0, -1].item() in (5, 6, 7, 8)


def test_mask_hides_exactly_floor_ratio_items_and_nothing_else() -> None:
    seq = rows(2)
    out = mask_items(seq, 0.3, MASK, torch.Generator().manual_seed(3))
    assert_left_padded(out)
    n = (seq > 0).sum(1)
    assert torch.equal((out == MASK).sum(1), (0.3 * n).floor().long())
    keep = out != MASK
    assert torch.equal(out[keep], seq[keep])


def test_reorder_permutes_one_contiguous_segment_only() -> None:
    seq = rows(4)
    out = reorder(seq, 0.5, torch.Generator().manual_seed(5))
    assert_left_padded(out)
    assert torch.equal(out.sort(1).values, seq.sort(1).values)  # same multiset per row
    for before, after in zip(seq, out):
        changed = torch.nonzero(before != after).flatten()
        if changed.numel():
            n = int((before > 0).sum())
            assert int(changed.max() - changed.min()) + 1 <= n // 2


def test_reorder_full_ratio_is_a_permutation_and_changes_some_rows() -> None:
    seq = rows(6)
    out = reorder(seq, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(out.sort(1).values, seq.sort(1).values)
    assert (out != seq).any()


@pytest.mark.parametrize("op", ["crop", "mask", "reorder", "random"])
def test_same_generator_same_views_other_seed_other_views(op: str) -> None:
    seq = rows(8, b=128)

    def run(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        if op == "crop":
            return crop(seq, 0.5, gen)
        if op == "mask":
            return mask_items(seq, 0.5, MASK, gen)
        if op == "reorder":
            return reorder(seq, 0.5, gen)
        return random_augment(seq, gen, mask_token=MASK)

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_random_augment_rows_are_valid_views() -> None:
    seq = rows(9, b=256)
    out = random_augment(seq, torch.Generator().manual_seed(0), mask_token=MASK,
                         crop_ratio=0.5, mask_ratio=0.5, reorder_ratio=0.5)
    assert_left_padded(out)
    for before, after in zip(seq, out):  # every item is the row's own item or [MASK]
        assert set(items_of(after)) <= set(items_of(before)) | {MASK}
    assert ((out > 0).sum(1) <= (seq > 0).sum(1)).all()
    assert (out == MASK).any() and ((out > 0).sum(1) < (seq > 0).sum(1)).any()  # mask, crop
    only_mask = random_augment(seq, torch.Generator().manual_seed(0), mask_token=MASK,
                               mask_ratio=0.5, operations=("mask",))
    n = (seq > 0).sum(1)
    assert torch.equal((only_mask == MASK).sum(1), (0.5 * n).floor().long())


def test_bad_inputs_are_errors_naming_what() -> None:
    gen = torch.Generator()
    with pytest.raises(DataError, match="left-padded"):
        crop(torch.tensor([[0, 3, 0, 4]]), 0.5, gen)
    with pytest.raises(ValueError, match="mask_ratio"):
        mask_items(torch.tensor([[1, 2]]), 1.5, MASK, gen)
    with pytest.raises(ValueError, match="mask_token"):
        mask_items(torch.tensor([[1, 2]]), 0.5, 0, gen)
    with pytest.raises(ValueError, match="operations"):
        random_augment(torch.tensor([[1, 2]]), gen, mask_token=MASK, operations=("insert",))
