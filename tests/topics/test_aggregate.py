"""topics/aggregate.py: hand-computed topic means and owner x topic counts."""

from __future__ import annotations

import numpy as np
import pytest

from mmseq.errors import DataError
from topics.aggregate import owner_topic_counts, topic_embeddings, topic_membership, topic_sizes

# 5 sentences, 2 topics; sentence 3 is an outlier.
EMB = np.array([[1, 0], [3, 2], [0, 4], [9, 9], [0, 2]], dtype=np.float32)
TOPIC = np.array([0, 0, 1, -1, 1])
OWNER = np.array([1, 0, 1, 1, 1])


def test_topic_embeddings_are_member_means() -> None:
    got = topic_embeddings(EMB, TOPIC, 2)
    # topic 0: mean([1,0],[3,2]) = [2,1]; topic 1: mean([0,4],[0,2]) = [0,3]; outlier ignored
    np.testing.assert_array_equal(got, np.array([[2, 1], [0, 3]], dtype=np.float32))
    assert got.dtype == np.float32


def test_owner_topic_counts() -> None:
    got = owner_topic_counts(OWNER, TOPIC, num_owners=3, num_topics=2)
    # owner 0: sentence 1 (topic 0); owner 1: sentences 0 (t0), 2 (t1), 4 (t1), 3 outlier
    np.testing.assert_array_equal(got.toarray(), [[1, 0], [1, 2], [0, 0]])
    assert got.nnz == 3 and got.has_sorted_indices


def test_membership_and_sizes() -> None:
    np.testing.assert_array_equal(
        topic_membership(TOPIC, 2).toarray(), [[1, 1, 0, 0, 0], [0, 0, 1, 0, 1]]
    )
    assert topic_sizes(TOPIC, 3).tolist() == [2, 2, 0]


def test_bad_topic_ids_and_empty_topics_raise() -> None:
    with pytest.raises(DataError, match=r"sentence topics in \[-1, 2\)"):
        owner_topic_counts(OWNER, np.array([0, 0, 2, -1, 1]), 3, 2)
    with pytest.raises(DataError, match="topic 1 is empty"):
        topic_embeddings(EMB, np.array([0, 0, 0, -1, 2]), 3)
    with pytest.raises(DataError, match="one topic per sentence"):
        topic_embeddings(EMB, TOPIC[:4], 2)
