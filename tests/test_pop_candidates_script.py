"""scripts/pop_candidates.py: negatives never seen, without replacement, weighted; POP's ranks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("pop_candidates", REPO / "scripts" /
                                                  "pop_candidates.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_negatives_are_unseen_distinct_and_follow_the_weights() -> None:
    m = _module()
    n = 50
    seen = sp.csr_matrix(np.eye(3000, n, dtype=bool) | np.eye(3000, n, k=1, dtype=bool))
    uniform = m.draw_negatives(seen, np.ones(n), 10, seed=0)  # (3000, 10)
    assert uniform.shape == (3000, 10)
    assert all(len(set(row)) == 10 for row in uniform)  # without replacement
    assert not seen[np.arange(3000)[:, None], uniform].toarray().any()  # never a seen item
    weights = np.ones(n)
    weights[-5:] = 100.0  # five heavy items
    heavy = m.draw_negatives(seen, weights, 10, seed=0)
    share = lambda draw: np.isin(draw, np.arange(n - 5, n)).mean()  # noqa: E731
    assert share(uniform) < 0.15 < 0.4 < share(heavy)  # uniform: ~5/48; heavy: ~5/10
    assert np.array_equal(m.draw_negatives(seen, weights, 10, seed=0), heavy)  # seeded


def test_pop_hits_rank_pessimistically() -> None:
    m = _module()
    scores = np.array([5.0, 3.0, 3.0, 1.0])
    negatives = np.array([[1, 3], [0, 3], [2, 3]])
    # user 0: target 0 (5) beats both -> rank 0; user 1: target 1 (3) below item 0 -> rank 1;
    # user 2: target 1 (3) ties item 2 -> rank 1 (pessimistic)
    hits = m.pop_hits(scores, np.array([0, 1, 1]), negatives)
    assert hits["hr@1"] == round(1 / 3, 4) and hits["hr@5"] == 1.0
