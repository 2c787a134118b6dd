"""The three protocols end to end with a fake model whose scores are fixed by hand."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor

from mmseq.data.schema import Interactions
from mmseq.data.split import split_interactions
from mmseq.errors import DataError
from mmseq.eval.protocol import evaluate, evaluate_per_user, make_eval_task, sample_negatives
from mmseq.models.base import LossOutput, ModelInputs, Recommender


class FixedScores(Recommender):
    """Scores are rows of a fixed (num_users, num_items) matrix; records how it was called."""

    def __init__(self, scores: Tensor) -> None:
        super().__init__(config=None, num_users=scores.size(0), num_items=scores.size(1))
        self.register_buffer("scores", scores.clone())
        self.calls: list[str] = []
        self.seen_modes: list[tuple[bool, bool]] = []  # (training, grad enabled) while scoring
        self.batch_sizes: list[int] = []

    def training_batches(
        self, inputs: object, batch_size: int, generator: torch.Generator
    ) -> Iterator[dict[str, Tensor]]:
        raise NotImplementedError

    def loss(self, batch: dict[str, Tensor], inputs: object) -> LossOutput:
        raise NotImplementedError

    def begin_eval(self, inputs: object) -> None:
        self.calls.append("begin_eval")

    def end_eval(self) -> None:
        self.calls.append("end_eval")

    def score_all(self, users: Tensor, inputs: object) -> Tensor:
        self.calls.append("score_all")
        self.seen_modes.append((self.training, torch.is_grad_enabled()))
        self.batch_sizes.append(int(users.numel()))
        return self.scores[users]

    def score_candidates(self, users: Tensor, items: Tensor, inputs: object) -> Tensor:
        self.calls.append("score_candidates")
        self.seen_modes.append((self.training, torch.is_grad_enabled()))
        self.batch_sizes.append(int(users.numel()))
        return self.scores[users].gather(1, items)


def cpu_inputs() -> SimpleNamespace:
    """What evaluate reads of ModelInputs: only ``device``."""
    return SimpleNamespace(device=torch.device("cpu"))


def make_table(user, item, timestamp, num_users: int, num_items: int) -> Interactions:
    user = np.asarray(user, dtype=np.int64)
    return Interactions(
        user=user,
        item=np.asarray(item, dtype=np.int64),
        rating=np.ones(len(user), dtype=np.float32),
        timestamp=np.asarray(timestamp, dtype=np.int64),
        user_ids=np.array([f"u{i}" for i in range(num_users)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(num_items)], dtype=object),
        meta={"source": "hand"},
    )


def sequences(seqs: list[list[int]], num_items: int) -> Interactions:
    """User ``u`` interacts with ``seqs[u]`` in that order (times 0, 1, 2, ...)."""
    user = np.concatenate([np.full(len(s), u) for u, s in enumerate(seqs)])
    item = np.concatenate([np.asarray(s) for s in seqs])
    timestamp = np.concatenate([np.arange(len(s)) for s in seqs])
    return make_table(user, item, timestamp, len(seqs), num_items)


def random_table(num_users: int, num_items: int, per_user: int, seed: int) -> Interactions:
    """Each user gets ``per_user`` distinct random items in random time order."""
    rng = np.random.default_rng(seed)
    keys = rng.random((num_users, num_items)).argsort(axis=1)[:, :per_user]  # (U, per_user)
    user = np.repeat(np.arange(num_users), per_user)
    timestamp = np.tile(np.arange(per_user), num_users)
    return make_table(user, keys.reshape(-1), timestamp, num_users, num_items)


# ------------------------------------------------------------------------------ loo-full by hand
# user 0 sees items 0, 1, 2 (fit [0], valid 1, test 2); user 1 sees 3, 4, 5, 0 (fit [3, 4], valid 5,
# test 0). Six items.
LOO_SCORES = torch.tensor(
    [
        [9.0, 1.0, 5.0, 8.0, 3.0, 7.0],
        [4.0, 4.0, 1.0, 10.0, 10.0, 0.0],
    ]
)


def loo_split(protocol: str = "loo-full"):
    return split_interactions(sequences([[0, 1, 2], [3, 4, 5, 0]], num_items=6), protocol)


def test_loo_full_test_stage_by_hand() -> None:
    task = make_eval_task(loo_split(), "test", ks=(1, 2, 3))
    # user 0: history {0, 1} masked (9 and 1 gone); target 2 (5) is beaten by 8 and 7 -> rank 2.
    #   Without masking item 0 (9) it would be rank 3.
    # user 1: history {3, 4, 5} masked (10, 10, 0 gone); target 0 (4) ties item 1 (4) -> rank 1.
    got = evaluate(FixedScores(LOO_SCORES), cpu_inputs(), task)
    assert got == pytest.approx(
        {
            "hr@1": 0.0, "ndcg@1": 0.0,
            "hr@2": 0.5, "ndcg@2": 0.31546487678572877,  # (0 + 1/log2(3)) / 2
            "hr@3": 1.0, "ndcg@3": 0.5654648767857288,  # (1/log2(4) + 1/log2(3)) / 2
            "mrr": 0.41666666666666663,  # (1/3 + 1/2) / 2
        },
        abs=1e-12,
    )
    assert list(got) == ["hr@1", "ndcg@1", "hr@2", "ndcg@2", "hr@3", "ndcg@3", "mrr"]
    assert all(type(v) is float for v in got.values())


def test_loo_full_valid_stage_by_hand() -> None:
    task = make_eval_task(loo_split(), "valid", ks=(3,))
    # user 0: history {0}; target 1 (score 1) is last of 5 -> rank 4.
    # user 1: history {3, 4}; target 5 (score 0) is last of 4 -> rank 3.
    got = evaluate(FixedScores(LOO_SCORES), cpu_inputs(), task)
    assert got == pytest.approx({"hr@3": 0.0, "ndcg@3": 0.0, "mrr": (1 / 5 + 1 / 4) / 2})


def test_loo_task_layout() -> None:
    task = make_eval_task(loo_split(), "test")
    assert task.users.tolist() == [0, 1]
    assert task.target_indptr.tolist() == [0, 1, 2]
    assert task.target_indices.tolist() == [2, 0]
    assert task.history_indptr.tolist() == [0, 2, 5]
    assert task.history_indices.tolist() == [0, 1, 3, 4, 5]
    assert task.candidates is None
    assert task.ks == (5, 10, 20)
    assert task.metrics == (
        "hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr",
    )
    valid = make_eval_task(loo_split(), "valid")
    assert valid.history_indices.tolist() == [0, 3, 4]
    assert valid.target_indices.tolist() == [1, 5]


# ------------------------------------------------------------------------------ ratio-80-20 by hand
def ratio_split():
    # user 0: items 0..9 -> 8 train (fit 0..6, valid 7), test {8, 9};
    # user 1: fit 10, valid 11, test 0
    return split_interactions(
        sequences([list(range(10)), [10, 11, 0]], num_items=12), "ratio-80-20"
    )


def ratio_scores() -> Tensor:
    scores = torch.zeros(2, 12)
    scores[0, :8] = 150.0  # history of the test stage: must not count
    scores[0, 0] = 200.0
    scores[0, 8], scores[0, 9], scores[0, 10], scores[0, 11] = 50.0, 99.0, 100.0, 10.0
    scores[1] = 1.0
    scores[1, 0] = 5.0
    scores[1, 10] = scores[1, 11] = 100.0  # user 1's history
    return scores


def test_ratio_test_stage_by_hand() -> None:
    task = make_eval_task(ratio_split(), "test", ks=(1, 2, 3))
    assert task.target_indptr.tolist() == [0, 2, 3]
    assert task.target_indices.tolist() == [8, 9, 0]
    assert task.history_indptr.tolist() == [0, 8, 10]
    assert task.history_indices.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 10, 11]
    model = FixedScores(ratio_scores())
    # user 0, non-history ranking: 10 (100), 9 (99), 8 (50), 11 (10): targets at ranks 1 and 2.
    per_user = evaluate_per_user(model, cpu_inputs(), task)
    assert per_user["hr@1"].tolist() == [0.0, 1.0]
    assert per_user["recall@2"].tolist() == [0.5, 1.0]  # 1 hit / min(2, 2)
    assert per_user["recall@3"].tolist() == [1.0, 1.0]
    # NDCG@2 = (1/log2(3)) / (1 + 1/log2(3)); NDCG@3 = (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3))
    assert per_user["ndcg@2"].tolist() == pytest.approx([0.38685280723454163, 1.0], abs=1e-12)
    assert per_user["ndcg@3"].tolist() == pytest.approx([0.6934264036172708, 1.0], abs=1e-12)
    got = evaluate(model, cpu_inputs(), task)
    assert got == pytest.approx(
        {
            "hr@1": 0.5, "ndcg@1": 0.5, "recall@1": 0.5,
            "hr@2": 1.0, "ndcg@2": 0.6934264036172708, "recall@2": 0.75,
            "hr@3": 1.0, "ndcg@3": 0.8467132018086354, "recall@3": 1.0,
        },
        abs=1e-12,
    )


def test_ratio_valid_stage_layout_and_default_metrics() -> None:
    task = make_eval_task(ratio_split(), "valid")
    assert task.target_indices.tolist() == [7, 11]
    assert task.history_indices.tolist() == [0, 1, 2, 3, 4, 5, 6, 10]
    assert set(task.metrics) == {
        "hr@10", "ndcg@10", "recall@10", "hr@20", "ndcg@20", "recall@20",
    }


# ------------------------------------------------------------------------------ loo-sampled99
def sampled_split(num_users: int = 3, num_items: int = 150, per_user: int = 4, seed: int = 0):
    return split_interactions(random_table(num_users, num_items, per_user, seed), "loo-sampled99")


def test_sampled_candidates_are_fixed_valid_negatives() -> None:
    split = sampled_split(num_users=50)
    task = make_eval_task(split, "test", seed=7)
    cands = task.candidates.numpy()
    assert cands.shape == (50, 100)
    assert task.ks == (1, 5, 10)
    assert task.metrics == ("hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10", "mrr")
    assert np.array_equal(cands[:, 0], split.test.item)  # one test row per user, users ascending
    every = split.all_interactions()
    for row, user in enumerate(task.users.tolist()):
        negatives = set(cands[row, 1:].tolist())
        assert len(negatives) == 99  # distinct
        assert not negatives & set(every.item[every.user == user].tolist())
    again = make_eval_task(split, "test", seed=7).candidates
    assert torch.equal(again, task.candidates)
    assert not torch.equal(make_eval_task(split, "test", seed=8).candidates, task.candidates)
    valid = make_eval_task(split, "valid", seed=7).candidates
    assert np.array_equal(valid[:, 0].numpy(), split.valid.item)
    assert not torch.equal(valid[:, 1:], task.candidates[:, 1:])  # its own, fixed stream


def test_sampled_by_hand() -> None:
    split = sampled_split()
    task = make_eval_task(split, "test")
    targets = split.test.item
    scores = torch.zeros(3, 150)
    scores[0, targets[0]] = 1.0  # user 0: target alone on top -> rank 0
    scores[1, targets[1]] = -1.0  # user 1: target alone at the bottom -> rank 99
    # user 2: everything tied -> pessimistic rank 99
    got = evaluate(FixedScores(scores), cpu_inputs(), task)
    third = 1 / 3
    assert got == pytest.approx(
        {"hr@1": third, "hr@5": third, "hr@10": third, "ndcg@5": third, "ndcg@10": third,
         "mrr": (1 + 1 / 100 + 1 / 100) / 3},
        abs=1e-12,
    )


def test_all_equal_scores_get_zero_not_one() -> None:
    full = make_eval_task(split_interactions(random_table(40, 150, 5, 1), "loo-full"), "test")
    got = evaluate(FixedScores(torch.zeros(40, 150)), cpu_inputs(), full)
    # 150 items - 4 history = 146 candidates, all tied: every target ranks 145.
    assert got["hr@20"] == 0.0
    assert got["mrr"] == pytest.approx(1 / 146)
    sampled = make_eval_task(sampled_split(num_users=40), "test")
    got = evaluate(FixedScores(torch.zeros(40, 150)), cpu_inputs(), sampled)
    assert got["hr@10"] == 0.0 and got["mrr"] == pytest.approx(1 / 100)


def test_random_scores_get_about_k_over_candidates() -> None:
    task = make_eval_task(sampled_split(num_users=1000, per_user=5), "test")
    scores = torch.rand(1000, 150, generator=torch.Generator().manual_seed(0))
    got = evaluate(FixedScores(scores), cpu_inputs(), task)
    assert got["hr@10"] == pytest.approx(0.10, abs=0.03)
    assert got["hr@5"] == pytest.approx(0.05, abs=0.02)


# ------------------------------------------------------------------------------ the sampler
def test_sampler_takes_exactly_the_complement_when_it_has_99_items() -> None:
    # 101 items, the user saw 2 -> exactly 99 candidates remain: the sampler must find them all.
    interacted = np.array([5, 77])  # user 0: items 5 and 77
    out = sample_negatives(np.array([0]), interacted, 101, 99, np.random.default_rng(0))
    assert sorted(out[0].tolist()) == [i for i in range(101) if i not in (5, 77)]


def test_sampler_is_uniform() -> None:
    users = np.arange(2000)
    interacted = users * 200  # every user saw item 0
    out = sample_negatives(users, interacted, 200, 99, np.random.default_rng(1))
    counts = np.bincount(out.ravel(), minlength=200)
    assert counts[0] == 0
    expected = 2000 * 99 / 199  # 995 per item; binomial sd about 22
    assert np.all(np.abs(counts[1:] - expected) < 0.15 * expected)


def test_sampler_refuses_users_without_99_unseen_items() -> None:
    # user 0 saw 3 of 150 items (147 left), user 1 saw 60 (90 left)
    interacted = np.concatenate([np.arange(3), 150 + np.arange(60)])
    with pytest.raises(DataError, match=r"got fewer for 1 users, e\.g\. 1;"):
        sample_negatives(np.array([0, 1]), interacted, 150, 99, np.random.default_rng(0))


# ------------------------------------------------------------------------------ evaluate mechanics
@pytest.mark.parametrize("protocol", ["ratio-80-20", "loo-full", "loo-sampled99"])
def test_batch_size_does_not_change_results(protocol: str) -> None:
    split = split_interactions(random_table(60, 150, 12, 2), protocol)
    task = make_eval_task(split, "test")
    scores = torch.rand(60, 150, generator=torch.Generator().manual_seed(3))
    scores[:, :30] = torch.round(scores[:, :30] * 4)  # plenty of ties
    reference = evaluate(FixedScores(scores), cpu_inputs(), task, batch_size=1024)
    for batch_size in (1, 7):
        assert evaluate(FixedScores(scores), cpu_inputs(), task, batch_size=batch_size) == reference


def test_hooks_modes_and_batches() -> None:
    task = make_eval_task(split_interactions(random_table(10, 20, 4, 0), "loo-full"), "test")
    model = FixedScores(torch.rand(10, 20, generator=torch.Generator().manual_seed(0)))
    model.train()
    evaluate(model, cpu_inputs(), task, batch_size=4)
    assert model.calls == ["begin_eval", "score_all", "score_all", "score_all", "end_eval"]
    assert model.batch_sizes == [4, 4, 2]
    assert model.seen_modes == [(False, False)] * 3  # eval mode, no grad
    assert model.training  # restored


def test_nan_scores_are_an_error_naming_the_user() -> None:
    task = make_eval_task(loo_split(), "test")
    scores = LOO_SCORES.clone()
    scores[1, 3] = float("nan")  # even on a history item: the model is broken
    model = FixedScores(scores)
    with pytest.raises(DataError, match=r"NaN for 1 users: 1\b"):
        evaluate(model, cpu_inputs(), task)
    assert model.calls[-1] == "end_eval" and model.training


def test_wrong_score_shape_is_an_error() -> None:
    class Short(FixedScores):
        def score_all(self, users: Tensor, inputs: object) -> Tensor:
            return self.scores[users, :-1]

    with pytest.raises(ValueError, match=r"shape \(2, 6\) \(got \(2, 5\)\)"):
        evaluate(Short(LOO_SCORES), cpu_inputs(), make_eval_task(loo_split(), "test"))


def test_real_model_inputs_are_passed_through() -> None:
    empty = torch.zeros(0, dtype=torch.long)
    inputs = ModelInputs(
        num_users=2, num_items=6, user=empty, item=empty, rating=torch.zeros(0),
        timestamp=empty, seq_items=torch.zeros(2, 1, dtype=torch.long),
        seq_ratings=torch.zeros(2, 1), seq_times=torch.zeros(2, 1, dtype=torch.long),
        seq_lengths=torch.zeros(2, dtype=torch.long),
    )
    task = make_eval_task(loo_split(), "test", ks=(3,))
    assert evaluate(FixedScores(LOO_SCORES), inputs, task)["hr@3"] == 1.0


def test_bad_arguments() -> None:
    split = loo_split()
    with pytest.raises(ValueError, match="'stage'"):
        make_eval_task(split, "train")
    with pytest.raises(ValueError, match="'ks'"):
        make_eval_task(split, "test", ks=(0, 5))
    with pytest.raises(ValueError, match="'seed'"):
        make_eval_task(split, "test", seed=-1)
    with pytest.raises(ValueError, match="<= 100"):
        make_eval_task(sampled_split(), "test", ks=(5, 200))
    with pytest.raises(ValueError, match="'batch_size'"):
        evaluate(FixedScores(LOO_SCORES), cpu_inputs(), make_eval_task(split, "test"), batch_size=0)


def test_repeated_targets_are_counted() -> None:
    # user 0 sees item 1 again as its test item: it is in the history, masked, and counted.
    split = split_interactions(sequences([[0, 1, 2, 1]], num_items=10), "loo-full")
    task = make_eval_task(split, "test", ks=(5,))
    assert task.meta["targets_in_history"] == 1
    scores = torch.zeros(1, 10)
    scores[0, 1] = 9.0
    assert evaluate(FixedScores(scores), cpu_inputs(), task)["hr@5"] == 0.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    for protocol in ("ratio-80-20", "loo-sampled99"):
        task = make_eval_task(split_interactions(random_table(300, 200, 10, 4), protocol), "test")
        scores = torch.rand(300, 200, generator=torch.Generator().manual_seed(5))
        cpu = evaluate(FixedScores(scores), cpu_inputs(), task, batch_size=64)
        model = FixedScores(scores).to("cuda")
        gpu = evaluate(model, SimpleNamespace(device=torch.device("cuda")), task, batch_size=64)
        assert gpu == pytest.approx(cpu, abs=1e-12)
