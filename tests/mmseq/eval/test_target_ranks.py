"""target_ranks: per-target ranks agree with the evaluator's per-user metrics."""

from __future__ import annotations

from pathlib import Path

import torch

from mmseq.eval.protocol import evaluate_per_user, target_ranks
from tests.script_loader import load_script


def _load_test(run_dir: Path):
    return load_script("analyse_runs")._load_test(run_dir)


def test_target_hits_and_ranks_match_the_per_user_metrics(demo_run: Path) -> None:
    model, inputs, task, _ = _load_test(demo_run)
    ranks = target_ranks(model, inputs, task, batch_size=7)  # several batches
    assert ranks.shape == task.target_indices.shape and ranks.dtype == torch.int64
    assert torch.equal(ranks, target_ranks(model, inputs, task))  # batching changes nothing
    per_user = evaluate_per_user(model, inputs, task)
    num_targets = task.target_indptr[1:] - task.target_indptr[:-1]  # (U,)
    owner = torch.repeat_interleave(torch.arange(task.num_users), num_targets)  # (T,)
    for k in task.ks:
        hit = (ranks < k).double()
        assert 0 < hit.sum() < hit.numel()  # the checks below can fail both ways
        # mmseq's recall@k: a user's hits over min(k, |targets|); hr@k: any hit
        hits_per_user = torch.zeros(task.num_users, dtype=torch.float64).index_add_(0, owner, hit)
        recall = hits_per_user / num_targets.clamp(max=k)
        assert torch.allclose(recall, per_user[f"recall@{k}"])
        assert torch.equal((hits_per_user > 0).double(), per_user[f"hr@{k}"])
