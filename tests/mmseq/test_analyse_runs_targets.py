"""scripts/analyse_runs.py --by item-count: targets keyed by their item's training count."""

from __future__ import annotations

from pathlib import Path

import torch

from mmseq.eval.protocol import target_ranks
from tests.script_loader import load_script


def _script():
    return load_script("analyse_runs")


def test_per_target_counts_are_the_items_fit_and_valid_interactions(demo_run: Path) -> None:
    script = _script()
    model, inputs, task, _ = script._load_test(demo_run)
    counts, hits = script.per_target_test(demo_run, 10)
    # the test stage's history is fit + valid: count each target item's rows there directly
    history = torch.cat([inputs.item[inputs.user == u] for u in range(int(inputs.user.max()) + 1)])
    expected = torch.tensor([int((history == i).sum()) for i in task.target_indices.tolist()])
    assert torch.equal(counts, expected)
    assert torch.equal(hits, target_ranks(model, inputs, task) < 10)


def test_item_count_grouping_uses_inclusive_upper_edges() -> None:
    script = _script()
    counts = torch.tensor([1, 10, 11, 20, 50, 200])
    hits = torch.tensor([True, False, True, True, False, True])
    rows = script.breakdown(counts, hits, script.ITEM_BUCKETS)  # <=10, 11-20, 21-40, 41-80, >80
    assert rows[0] == (2, 0.5) and rows[1] == (2, 1.0) and rows[3] == (1, 0.0)
    assert rows[2][0] == 0 and rows[4] == (1, 1.0)
