"""Last-state encoding (TransformerEncoder.last_state and the ensemble/peer versions): the
padded pass's state at the last column, bit for bit on CPUs whose GEMM is row-invariant.

The exactness rests on measured kernel behaviour (mmseq.nn.padding: EXACT_MIN_ROWS,
small_gemm_rows, query_layout); these tests are what notices if another torch build differs.
Where a probe finds other kernels (tests/conftest.py), they compare to rounding instead.
"""

from __future__ import annotations

import pytest
import torch

from mmseq.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmseq.models.emkd import EMKD, EMKDConfig
from mmseq.models.peerrec import PeerRec, PeerRecConfig
from mmseq.models.s4rec import S4Rec, S4RecConfig
from mmseq.models.sasrec import SASRec, SASRecConfig
from mmseq.nn.padding import (
    BATCHED_MIN_ROWS,
    EXACT_MIN_ROWS,
    KEY_ALIGN,
    last_states_by_length,
    query_layout,
    small_gemm_rows,
)


def _left_padded(num_rows: int, width: int, vocab: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (num_rows,), generator=g)
    lengths[: min(num_rows, 3)] = torch.tensor([1, 2, width])[: min(num_rows, 3)]
    tokens = torch.randint(1, vocab, (num_rows, width), generator=g)
    return torch.where(torch.arange(width)[None, :] >= width - lengths[:, None], tokens, 0)


def test_query_layout_by_hand() -> None:
    assert small_gemm_rows(32) == 1 and small_gemm_rows(64) == 2 and small_gemm_rows(4096) == 15
    assert query_layout(8, 18, 64) == (8, 3)  # no small block at width 18: 8 queries, 3 last
    assert query_layout(1, 50, 64) == (3, 3)  # at least small + 1 queries (2 padding ones)
    assert query_layout(34, 50, 64) == (35, 3)  # blocks 32 + 2 would end in a small block
    assert query_layout(5, 33, 64) == (33, 1)  # width 33 ends in a 1-query block: the same here
    assert query_layout(9, 15, 128) == (9, 6)  # head width 128: blocks of <= 5 are small
    assert query_layout(10, 200, 32) == (200, 200)  # query blocks of 64 there: no trimming


def _states(model, tokens, fast: bool, **kwargs):
    encode = kwargs.pop("encode", model.encode)
    if not fast:
        return encode(tokens)[..., -1, :]
    return last_states_by_length(encode, tokens, multiple=KEY_ALIGN, **kwargs)


CASES = {
    # name: (model factory, widths); encoders of every kind, head widths 16..128
    "sasrec": (lambda w: SASRec(SASRecConfig(max_len=w), 1, 300), (18, 33, 50, 70)),
    "s4rec": (lambda w: S4Rec(S4RecConfig(max_len=w, num_prototypes=4), 1, 300), (50,)),
    "bert4rec": (lambda w: BERT4Rec(BERT4RecConfig(max_len=w, num_heads=4), 1, 300), (34, 50)),
    "emkd": (lambda w: EMKD(EMKDConfig(max_len=w, num_networks=2), 1, 300), (15, 50)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("threads", [1, 2])
def test_last_state_is_the_padded_passs_to_the_bit(
    name: str, threads: int, assert_kernel_identical
) -> None:
    factory, widths = CASES[name]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for width in widths:
            torch.manual_seed(0)
            model = factory(width).eval()
            min_rows = BATCHED_MIN_ROWS if name == "emkd" else EXACT_MIN_ROWS
            filler = _left_padded(300, width, 300, seed=width)
            for rows in (1, 5, 300):  # few rows are repeated, many split by length
                tokens = _left_padded(rows, width, 300, seed=rows + width)
                with torch.no_grad():
                    # The reference is the padded pass of a full batch: a pass over a few rows
                    # alone is a small-matrix one, with its own rounding.
                    both = torch.cat([tokens, filler])
                    padded = _states(model, both, fast=False)[..., :rows, :]
                    fast = _states(model, tokens, fast=True, encode_last=model.encode_last,
                                   min_rows=min_rows)
                assert_kernel_identical(fast, padded, (width, rows))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("peer", [None, 1])
def test_peer_last_states_are_the_padded_passs_to_the_bit(
    peer: int | None, assert_kernel_identical
) -> None:
    torch.manual_seed(0)
    model = PeerRec(PeerRecConfig(max_len=51), 1, 300).eval()
    tokens = _left_padded(400, 51, 300, seed=4)
    with torch.no_grad():
        padded = model.encode(tokens, peer)[..., -1, :]  # 400 rows: no small-matrix GEMM
        fast = last_states_by_length(
            lambda t: model.encode(t, peer), tokens, multiple=KEY_ALIGN,
            encode_last=lambda t, w: model.encode_last(t, w, peer), min_rows=BATCHED_MIN_ROWS,
        )
        assert_kernel_identical(fast, padded)
        users = torch.arange(3)  # the scoring path: [MASK] after each row's last 50 items
        queries = model.query_tokens(users, _Inputs(tokens[:, 1:]))
        expected = model.encode(torch.cat([queries, tokens[3:]]), peer)[..., :3, -1, :]
        states = model.sequence_states(users, _Inputs(tokens[:, 1:]), peer)
        assert_kernel_identical(states, expected)
    model.train()
    with pytest.raises(RuntimeError, match="evaluation"):
        model.encode_last(tokens, 51)


class _Inputs:
    """Just the scoring sequences PeerRec.query_tokens reads (the last column is replaced)."""

    def __init__(self, seq: torch.Tensor) -> None:
        self.seq_items = seq


def test_scoring_head_bias_inside_the_product_is_the_same() -> None:
    torch.manual_seed(0)
    model = BERT4Rec(BERT4RecConfig(), 1, 1000).eval()
    with torch.no_grad():
        model.item_bias.normal_()
        h = torch.randn(300, 64)
        items = model.token_embedding.weight[1:1001]
        expected = torch.nn.functional.gelu(model.head(h)) @ items.T + model.item_bias
        assert torch.equal(model.item_logits(h), expected)
