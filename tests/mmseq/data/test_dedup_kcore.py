"""Dedup, k-core, load_dataset and stats on hand-built tables."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import scipy.sparse as sp

from mmseq.config import ConfigError, DataConfig
from mmseq.data.dedup import deduplicate
from mmseq.data.kcore import kcore_filter
from mmseq.data.load import keep_first_users, load_dataset
from mmseq.data.schema import Interactions
from mmseq.data.stats import format_stats


def table(pairs, users="abcdefgh", items="pqrstuvw"):
    """Rows (user index, item index) with rating = row number and timestamp = 10 * row number."""
    user, item = (np.array(col, dtype=np.int64) for col in zip(*pairs))
    n = len(pairs)
    return Interactions(
        user=user,
        item=item,
        rating=np.arange(n, dtype=np.float32),
        timestamp=np.arange(n, dtype=np.int64) * 10,
        user_ids=np.array(list(users[: user.max() + 1]), dtype=object),
        item_ids=np.array(list(items[: item.max() + 1]), dtype=object),
        review=np.array([f"r{k}" for k in range(n)], dtype=object),
        meta={"source": "hand"},
    )


# ------------------------------------------------------------------------------------ dedup
DUPES = [(0, 0), (1, 0), (0, 0), (0, 1), (1, 0), (0, 0)]  # (a,p) x3, (b,p) x2, (a,q) x1


def test_dedup_first_keeps_first_rows_in_file_order():
    out = deduplicate(table(DUPES), "first")
    assert out.rating.tolist() == [0, 1, 3]  # rows 0, 1, 3
    assert out.review.tolist() == ["r0", "r1", "r3"]
    assert out.meta["duplicates_removed"] == 3 and out.meta["dedup_policy"] == "first"
    assert out.num_users == 2 and out.num_items == 2


def test_dedup_last_keeps_last_rows_in_file_order():
    out = deduplicate(table(DUPES), "last")
    assert out.rating.tolist() == [3, 4, 5]  # rows 3 (a,q), 4 (b,p), 5 (a,p)
    assert out.meta["duplicates_removed"] == 3


def test_dedup_without_duplicates_is_identity_and_counts_zero(tiny_interactions):
    out = deduplicate(tiny_interactions)
    assert out.content_hash() == tiny_interactions.content_hash()
    assert out.meta["duplicates_removed"] == 0


def test_dedup_rejects_unknown_policy(tiny_interactions):
    with pytest.raises(ConfigError, match="policy"):
        deduplicate(tiny_interactions, "middle")


# ------------------------------------------------------------------------------------ k-core
def test_kcore_iterates_until_stable():
    # k=2. Users a, b: items p, q. User c: items q, r. Item r has one user -> goes in round 1,
    # then c has one item left -> goes in round 2; a, b x p, q remain.
    data = table([(0, 0), (0, 1), (1, 0), (1, 1), (2, 1), (2, 2)])
    out = kcore_filter(data, 2)
    assert out.user_ids.tolist() == ["a", "b"] and out.item_ids.tolist() == ["p", "q"]
    assert out.rating.tolist() == [0, 1, 2, 3]  # rows kept in order
    assert out.meta["kcore"] == {
        "k": 2,
        "rounds": 2,
        "removed_interactions": 2,
        "removed_users": 1,
        "removed_items": 1,
    }


def test_kcore_counts_unique_pairs_not_rows():
    # user c has item p three times: degree 1 < 2, so c goes although it has 3 rows.
    data = table([(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 0), (2, 0)])
    out = kcore_filter(data, 2)
    assert out.user_ids.tolist() == ["a", "b"] and len(out) == 4


def test_kcore_keeps_duplicate_rows_of_surviving_pairs():
    data = table([(0, 0), (0, 1), (1, 0), (1, 1), (0, 0)])
    out = kcore_filter(data, 2)
    assert len(out) == 5 and out.meta["kcore"]["rounds"] == 0


def test_kcore_compacts_ids_and_attributes():
    data = table([(0, 0), (1, 1), (1, 2), (2, 1), (2, 2)])
    attrs = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32))
    data = dataclasses.replace(data, item_attributes=attrs)
    out = kcore_filter(data, 2)
    assert out.item_attributes.toarray().tolist() == [[0, 1], [1, 1]]
    assert out.user_ids.tolist() == ["b", "c"] and out.item_ids.tolist() == ["q", "r"]
    assert out.user.tolist() == [0, 0, 1, 1] and out.item.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_kcore_rejects_bad_k(tiny_interactions, k):
    with pytest.raises(ConfigError, match="'k'"):
        kcore_filter(tiny_interactions, k)


# ------------------------------------------------------------------------------------ load + stats
def test_keep_first_users_by_first_appearance():
    # user c appears first (row 0), then a, then b.
    data = table([(2, 0), (0, 0), (2, 1), (1, 1), (0, 1)])
    out = keep_first_users(data, 2)
    assert out.user_ids.tolist() == ["a", "c"]  # compact keeps index order
    assert out.rating.tolist() == [0, 1, 2, 4]


def test_load_dataset_records_every_step(tmp_path, write_file, review):
    lines = [
        review(u, i, 5.0, t)
        for t, (u, i) in enumerate(
            [("A", "x"), ("A", "y"), ("B", "x"), ("B", "y"), ("A", "x"), ("C", "x"), ("D", "z")]
        )
    ]
    path = write_file("r.json", "\n".join(lines))
    data = load_dataset(DataConfig(kcore=2, max_users=1), path)
    steps = {s["step"]: s for s in data.meta["steps"]}
    assert list(steps) == ["read", "dedup", "kcore", "max_users"]
    assert steps["read"]["after"] == {"interactions": 7, "users": 4, "items": 3}
    assert steps["dedup"]["duplicates_removed"] == 1
    assert steps["dedup"]["after"] == {"interactions": 6, "users": 4, "items": 3}
    assert steps["kcore"]["after"] == {"interactions": 4, "users": 2, "items": 2}
    assert steps["max_users"]["before"] == steps["kcore"]["after"]
    assert steps["max_users"]["after"] == {"interactions": 2, "users": 1, "items": 2}
    assert data.user_ids.tolist() == ["A"] and data.meta["duplicates_removed"] == 1


def test_load_dataset_synthetic_when_path_is_none():
    data = load_dataset(DataConfig(synthetic={"num_users": 20, "num_items": 30, "seed": 3}), None)
    assert data.num_users == 20 and data.meta["source"] == "synthetic"
    assert [s["step"] for s in data.meta["steps"]] == ["read", "dedup"]
    with pytest.raises(ConfigError, match="did you mean 'num_users'"):
        load_dataset(DataConfig(synthetic={"num_user": 20}), None)


def test_format_stats_table(tiny_interactions):
    text = format_stats(deduplicate(tiny_interactions))
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in text.splitlines())
    assert lines["interactions"] == "10"
    assert lines["users"] == "3" and lines["items"] == "4"
    assert lines["density"] == "0.833333"
    assert lines["interactions/user"].startswith("mean 3.33, min 3, max 4")
    assert lines["ratings"] == "1: 1  2: 1  3: 2  4: 2  5: 4"
    assert lines["time range"] == "1970-01-02 .. 1970-01-07 (UTC)"
    assert lines["with text"] == "10 (100.00%)"
    assert lines["duplicate rows"] == "0 repeat an earlier (user, item) pair (0 pairs)"
    assert lines["skipped rows"] == "0"
