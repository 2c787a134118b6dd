"""mmseq/nn/padding.py: length buckets give the padded batch's states, in its order."""

from __future__ import annotations

import pytest
import torch

from mmseq.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmseq.models.peerrec import PeerRec, PeerRecConfig
from mmseq.nn.padding import (
    KEY_ALIGN,
    aligned_groups,
    last_states_by_length,
    leading_padding,
    length_buckets,
    masked_states_by_length,
    row_lengths,
    trim_left_padding,
)


def test_trim_left_padding_by_hand() -> None:
    tokens = torch.tensor([[0, 0, 0, 4, 5], [0, 0, 7, 8, 9], [0, 0, 0, 0, 3]])
    assert trim_left_padding(tokens).tolist() == [[0, 4, 5], [7, 8, 9], [0, 0, 3]]
    assert trim_left_padding(tokens[:0]).shape == (0, 5)


def test_length_buckets_by_hand() -> None:
    tokens = torch.tensor(
        [
            [0, 0, 0, 0, 9],
            [0, 0, 4, 5, 6],
            [0, 0, 0, 7, 8],
            [1, 2, 3, 4, 5],
            [0, 0, 0, 0, 0],
            [0, 3, 3, 3, 3],
        ]
    )
    # lengths 1, 3, 2, 5, 0 (counts as 1), 4 -> widths 1, 4, 2, 8, 1, 4
    assert [b.tolist() for b in length_buckets(tokens)] == [[0, 4], [2], [1, 5], [3]]
    assert leading_padding(tokens[[0, 2]]) == 3 and leading_padding(tokens[[4]]) == 4


def _left_padded(lengths: list[int], width: int, vocab: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, vocab, (len(lengths), width), generator=g)
    keep = torch.arange(width)[None, :] >= width - torch.tensor(lengths)[:, None]
    return torch.where(keep, tokens, 0)  # (B, width)


ENCODERS = {
    # (B, L') -> (B, L', d): one encoder
    "bert4rec": lambda: BERT4Rec(BERT4RecConfig(embedding_dim=8, ffn_dim=16, max_len=16), 1, 30),
    # (B, L') -> (T, B, L', d): three peers at once
    "peerrec": lambda: PeerRec(PeerRecConfig(embedding_dim=8, ffn_dim=16, max_len=16,
                                             num_peers=3), 1, 30),
}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_bucketed_states_equal_the_padded_batchs(name: str) -> None:
    torch.manual_seed(0)
    model = ENCODERS[name]().eval()
    lengths = [16, 1, 5, 3, 9, 2, 16, 4, 1, 12]  # widths 1..16: five buckets
    tokens = _left_padded(lengths, 16, 31)
    labels = torch.where(torch.rand(tokens.shape, generator=torch.Generator().manual_seed(1))
                         < 0.4, tokens - 1, -100)
    labels[tokens == 0] = -100
    assert len(length_buckets(tokens)) == 5
    with torch.no_grad():
        padded = model.encode(tokens)  # (..., B, L, d)
        h, targets = masked_states_by_length(model.encode, tokens, labels)
        masked = labels >= 0
        torch.testing.assert_close(h, padded[..., masked, :], rtol=0, atol=2e-6)
        assert torch.equal(targets, labels[masked])  # row-major order of the whole batch
        last = last_states_by_length(model.encode, tokens)
        torch.testing.assert_close(last, padded[..., -1, :], rtol=0, atol=2e-6)
        # no rows: empty results of the right shape
        none_h, none_t = masked_states_by_length(model.encode, tokens[:0], labels[:0])
        assert none_h.shape[-2:] == (0, 8) and none_t.numel() == 0
        assert last_states_by_length(model.encode, tokens[:0]).shape[-2:] == (0, 8)


def test_aligned_groups_by_hand() -> None:
    tokens = torch.tensor([[0, 0, 0, 0, 9], [0, 4, 5, 6, 7], [0, 0, 0, 7, 8], [0, 0, 0, 0, 0]])
    # lengths 1, 4, 2, 0 (counts as 1); width 5, multiple 2 -> widths 1, 5, 3 -> 5
    # (MIN_KEY_WIDTH: no group 2 or 3 wide where the row can be widened), 1
    groups = [(rows.tolist(), w) for rows, w in aligned_groups(tokens, 2)]
    assert groups == [([0, 3], 1), ([1, 2], 5)]
    groups = [(rows.tolist(), w) for rows, w in aligned_groups(tokens[:, 2:], 2)]
    assert groups == [([0, 3], 1), ([1, 2], 3)]  # width 3: nothing wider to go to
    assert row_lengths(tokens).tolist() == [1, 4, 2, 1]
    with pytest.raises(ValueError, match="multiple"):
        aligned_groups(tokens, 0)


@pytest.mark.parametrize("width", [50, 200])
def test_key_aligned_trimming_is_bit_identical_for_attention(
    width: int, assert_kernel_identical
) -> None:
    from mmseq.models.sasrec import SASRec, SASRecConfig

    torch.manual_seed(0)
    model = SASRec(SASRecConfig(embedding_dim=16, max_len=width, num_heads=2), 1, 30).eval()
    lengths = [1, 2, 5, 9, 17, 18, 19, 33, 40, width - 1, width][: 8 if width == 50 else None]
    tokens = _left_padded([min(n, width) for n in lengths], width, 30, seed=3)
    with torch.no_grad():
        padded = model.encode(tokens)[:, -1]
        grouped = last_states_by_length(model.encode, tokens, multiple=KEY_ALIGN)
    assert_kernel_identical(grouped, padded)


def test_kernel_comparison_rejects_what_a_trimming_bug_changes(assert_kernel_identical) -> None:
    # Bit-identity or rounding, whichever this CPU allows: a dropped key moves a state by 2e-2
    # or more (tests/conftest.py), and neither comparison lets that through.
    state = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    assert_kernel_identical(state, state.clone())
    with pytest.raises(AssertionError):
        assert_kernel_identical(state + 2e-2 * (torch.arange(64) == 5), state)
