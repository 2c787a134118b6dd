"""The evaluator's fast paths give exactly the reference ranks and metrics.

Capped ranks (one top-k per row) against the sort-free reference on random scores with many
ties and masked items; length-ordered batches and in-place history masking against the plain
evaluation, bit for bit.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_protocol import FixedScores, cpu_inputs, make_table, random_table
from torch import Tensor

from mmseq.data.inputs import build_model_inputs
from mmseq.data.split import split_interactions
from mmseq.errors import DataError
from mmseq.eval.metrics import capped_pessimistic_rank, pessimistic_rank
from mmseq.eval.protocol import evaluate_per_user, make_eval_task
from mmseq.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmseq.models.emkd import EMKD, EMKDConfig
from mmseq.models.gru4rec import GRU4Rec, GRU4RecConfig
from mmseq.models.peerrec import PeerRec, PeerRecConfig
from mmseq.models.s4rec import S4Rec, S4RecConfig
from mmseq.models.sasrec import SASRec, SASRecConfig


def ragged_table(num_users: int, num_items: int, lengths: tuple[int, int], seed: int):
    """User ``u`` gets a random number in ``[lengths[0], lengths[1])`` of distinct items."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(*lengths, size=num_users)
    items = [rng.permutation(num_items)[:n] for n in counts]
    user = np.repeat(np.arange(num_users), counts)
    timestamp = np.concatenate([np.arange(n) for n in counts])
    return make_table(user, np.concatenate(items), timestamp, num_users, num_items)


def reference_rank(scores: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``#(score >= target) - 1`` per target, one target at a time (the definition)."""
    return torch.stack([(scores[r] >= scores[r, c]).sum() - 1 for r, c in zip(rows, cols)])


@pytest.mark.parametrize("seed", range(6))
def test_capped_rank_is_the_reference_capped(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    b, c = 7, 40
    levels = int(torch.randint(2, 12, (1,), generator=g))  # few distinct values: many ties
    scores = torch.randint(0, levels, (b, c), generator=g).float()
    scores[torch.rand(b, c, generator=g) < 0.2] = float("-inf")  # masked history
    scores[0] = float("-inf")  # a row with fewer finite scores than the cap
    rows = torch.randint(0, b, (60,), generator=g).sort().values
    cols = torch.randint(0, c, (60,), generator=g)
    expected = reference_rank(scores, rows, cols)
    for cap in (1, 3, 10, 39):
        assert torch.equal(
            capped_pessimistic_rank(scores, rows, cols, cap), expected.clamp_max(cap)
        )
        assert torch.equal(pessimistic_rank(scores, rows, cols, cap=cap), expected.clamp_max(cap))
    one_each = torch.randint(0, c, (b,), generator=g)
    assert torch.equal(
        pessimistic_rank(scores, None, one_each, cap=5),
        reference_rank(scores, torch.arange(b), one_each).clamp_max(5),
    )
    # a cap at or past the number of candidates is no cap
    assert torch.equal(pessimistic_rank(scores, rows, cols, cap=c), expected)


def test_capped_rank_of_all_equal_scores_is_the_last_place_capped() -> None:
    scores = torch.zeros(3, 10)
    rows, cols = torch.tensor([0, 1, 1, 2]), torch.tensor([0, 3, 4, 9])
    assert capped_pessimistic_rank(scores, rows, cols, 4).tolist() == [4, 4, 4, 4]
    assert pessimistic_rank(scores, rows, cols).tolist() == [9, 9, 9, 9]


class CachedScores(FixedScores):
    """Returns its own buffer itself when asked for every user (so in-place edits would show)."""

    def score_all(self, users: Tensor, inputs: object) -> Tensor:
        if users.numel() == self.scores.size(0):
            return self.scores
        return super().score_all(users, inputs)


@pytest.mark.parametrize("protocol", ["ratio-80-20", "loo-full"])
def test_in_place_masking_leaves_the_models_scores_and_the_metrics_alone(protocol: str) -> None:
    split = split_interactions(random_table(12, 30, 8, seed=3), protocol)
    task = make_eval_task(split, "test")
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (12, 30), generator=g).float()  # ties
    plain = evaluate_per_user(FixedScores(scores), cpu_inputs(), task, batch_size=5)
    model = CachedScores(scores)
    cached = evaluate_per_user(model, cpu_inputs(), task, batch_size=task.num_users)
    assert torch.equal(model.scores, scores)
    for name in task.metrics:
        assert torch.equal(plain[name], cached[name]), name


def test_capped_ranks_give_the_exact_ranks_metrics() -> None:
    split = split_interactions(random_table(20, 25, 10, seed=5), "ratio-80-20")
    task = make_eval_task(split, "test", ks=(3, 5))
    g = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 3, (20, 25), generator=g).float()
    got = evaluate_per_user(FixedScores(scores), cpu_inputs(), task, batch_size=7)
    # the exact-rank path: MRR among the metrics turns the cap off
    exact_task = make_eval_task(split, "test", ks=(3, 5))
    object.__setattr__(exact_task, "metrics", (*task.metrics, "mrr"))
    exact = evaluate_per_user(FixedScores(scores), cpu_inputs(), exact_task, batch_size=7)
    for name in task.metrics:
        assert torch.equal(got[name], exact[name]), name


SEQUENCE_MODELS = {
    "sasrec": lambda n: SASRec(SASRecConfig(embedding_dim=16, max_len=50), 1, n),
    "s4rec": lambda n: S4Rec(
        S4RecConfig(embedding_dim=16, ffn_dim=16, max_len=50, num_prototypes=4), 1, n
    ),
    "gru4rec": lambda n: GRU4Rec(GRU4RecConfig(embedding_dim=16, hidden_size=16, max_len=50), 1, n),
    "bert4rec": lambda n: BERT4Rec(BERT4RecConfig(embedding_dim=16, ffn_dim=32, max_len=50), 1, n),
    "emkd": lambda n: EMKD(EMKDConfig(embedding_dim=32, ffn_dim=64, max_len=15), 1, n),
    "peerrec": lambda n: PeerRec(PeerRecConfig(embedding_dim=16, ffn_dim=32, max_len=51), 1, n),
}


def _ragged_case(name: str, lengths: tuple[int, int], seed: int):
    """loo-full test task of 40 users x 80 items with ragged histories, and model ``name``."""
    split = split_interactions(ragged_table(40, 80, lengths, seed=seed), "loo-full")
    inputs = build_model_inputs(split.history("test"), max_len=50)
    torch.manual_seed(0)
    return inputs, make_eval_task(split, "test"), SEQUENCE_MODELS[name](80)


@pytest.mark.parametrize("name", sorted(SEQUENCE_MODELS))
def test_length_ordered_trimmed_evaluation_is_bit_identical(
    name: str, monkeypatch: pytest.MonkeyPatch, assert_kernel_identical
) -> None:
    # users with 3..60 items: short rows, rows at the width and rows cut by max_len
    inputs, task, model = _ragged_case(name, (3, 61), seed=7)
    fast = evaluate_per_user(model, inputs, task, batch_size=16)

    module = __import__(type(model).__module__, fromlist=["x"])
    monkeypatch.setattr(
        module, "last_states_by_length", lambda encode, tokens, **_: encode(tokens)[..., -1, :]
    )
    monkeypatch.setattr(model, "eval_by_length", False, raising=False)
    padded = evaluate_per_user(model, inputs, task, batch_size=16)
    for metric in task.metrics:
        # ranks from scores equal to rounding: the same ranks unless two items tie to 1e-5
        assert_kernel_identical(fast[metric], padded[metric], metric)
    with torch.no_grad():  # and the scores themselves, not just the metrics they give
        users = task.users[:16]
        reference = model.eval().score_all(users, inputs)
        monkeypatch.undo()
        scores = model.score_all(users, inputs)
    if name == "gru4rec":
        # A GRU's GEMMs round differently for some row counts (B * T), trimmed or not (the
        # padded path alone differs by 1e-8 between batch sizes 1 and 16): equal to rounding.
        torch.testing.assert_close(scores, reference, rtol=0, atol=1e-6)
    else:
        assert_kernel_identical(scores, reference)


def test_length_order_needs_the_flag_and_sequence_lengths() -> None:
    split = split_interactions(random_table(6, 20, 5, seed=1), "loo-full")
    task = make_eval_task(split, "test")
    model = FixedScores(torch.rand(6, 20))
    model.eval_by_length = True  # type: ignore[attr-defined]
    lengths = torch.tensor([5, 1, 4, 1, 3, 2])
    inputs = SimpleNamespace(device=torch.device("cpu"), seq_lengths=lengths)
    with_order = evaluate_per_user(model, inputs, task, batch_size=2)
    assert model.batch_sizes == [2, 2, 2]
    plain = evaluate_per_user(FixedScores(model.scores), cpu_inputs(), task, batch_size=2)
    for name in task.metrics:
        assert torch.equal(with_order[name], plain[name]), name


@pytest.mark.parametrize("where", ["target", "history", "other"])
def test_nan_found_by_the_ranks_own_pass_is_an_error(where: str) -> None:
    # loo-full with MRR: the NaN check's row sums come from the exact rank's pass (the masked
    # history values are checked apart); a NaN anywhere still names its user.
    split = split_interactions(random_table(6, 30, 5, seed=2), "loo-full")
    task = make_eval_task(split, "test")
    scores = torch.rand(6, 30, generator=torch.Generator().manual_seed(0))
    user = 4
    row = int(torch.nonzero(task.users == user))
    target = int(task.target_indices[task.target_indptr[row]])
    history = task.history_indices[task.history_indptr[row] : task.history_indptr[row + 1]]
    others = sorted(set(range(30)) - set(history.tolist()) - {target})
    col = {"target": target, "history": int(history[0]), "other": others[0]}[where]
    scores[user, col] = float("nan")
    with pytest.raises(DataError, match=rf"NaN for 1 users: {user}\b"):
        evaluate_per_user(FixedScores(scores), cpu_inputs(), task, batch_size=4)


def test_infinite_scores_without_nan_are_ranked() -> None:
    # +inf in a row whose history is masked with -inf: the row sum is NaN, the exact check
    # clears it, and the ranks are the definition's.
    split = split_interactions(random_table(6, 30, 5, seed=2), "loo-full")
    task = make_eval_task(split, "test")
    scores = torch.rand(6, 30, generator=torch.Generator().manual_seed(0))
    scores[:, 7] = float("inf")
    got = evaluate_per_user(FixedScores(scores), cpu_inputs(), task, batch_size=4)
    masked = scores[task.users].clone()
    for j in range(task.num_users):
        masked[j, task.history_indices[task.history_indptr[j] : task.history_indptr[j + 1]]] = (
            float("-inf"))
    ranks = reference_rank(masked, torch.arange(task.num_users), task.target_indices)
    assert torch.equal(got["mrr"], 1.0 / (ranks.double() + 1.0))


def test_evaluation_reuses_one_score_buffer_with_the_same_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import contextlib

    import mmseq.eval.protocol as protocol

    inputs, task, model = _ragged_case("bert4rec", (3, 30), seed=3)
    pointers: list[int] = []
    score_all = model.score_all

    def spy(users: Tensor, inputs_: object) -> Tensor:
        scores = score_all(users, inputs_)
        pointers.append(scores.data_ptr())
        return scores

    monkeypatch.setattr(model, "score_all", spy)
    reused = evaluate_per_user(model, inputs, task, batch_size=16)
    assert len(pointers) == 3 and len(set(pointers)) == 1  # one buffer for every batch

    class NoWorkspace:
        def release(self) -> None:
            pass

    monkeypatch.setattr(protocol, "score_workspace",
                        lambda: contextlib.nullcontext(NoWorkspace()))
    pointers.clear()
    fresh = evaluate_per_user(model, inputs, task, batch_size=16)
    assert len(set(pointers)) > 1  # without it, batches do get storage of their own
    for metric in task.metrics:
        assert torch.equal(reused[metric], fresh[metric]), metric
