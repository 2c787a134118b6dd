"""graphs/topic_hypergraph.py: user/item-topic incidences, by hand, and awkward inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphs.topic_hypergraph import (
    ItemTopicHypergraphBuilder,
    TopicHypergraphConfig,
    UserTopicHypergraphBuilder,
)
from mmseq.config import from_dict
from mmseq.data.schema import Interactions, TopicAssignments
from mmseq.errors import ArtifactError, ConfigError, DataError


def _topics(user_topic: np.ndarray, item_topic: np.ndarray) -> TopicAssignments:
    k = user_topic.shape[1]
    return TopicAssignments(
        np.ones((k, 2), np.float32) * np.arange(k)[:, None],
        sp.csr_matrix(user_topic),
        sp.csr_matrix(item_topic),
        tuple(f"t{g}" for g in range(k)),
    )


def _incidence(part) -> np.ndarray:
    dense = np.zeros(part.shape, dtype=np.float32)
    dense[part.edge_index[0].numpy(), part.edge_index[1].numpy()] = part.edge_weight.numpy()
    return dense


# Sentence counts: u0 in t0 (2) and t1 (1); u1 in t1 (3); u2 in no topic; topic t2 has no member.
USER_TOPIC = np.array([[2, 1, 0], [0, 3, 0], [0, 0, 0]], dtype=np.float32)
ITEM_TOPIC = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)


def test_user_topic_hypergraph_binary_by_hand(tiny_interactions: Interactions) -> None:
    part = UserTopicHypergraphBuilder().build(
        tiny_interactions, {"topics": _topics(USER_TOPIC, ITEM_TOPIC)}
    )
    # Rows: users 0..2, then topic nodes 3..5; column g = hyperedge of topic g.
    expected = np.array(
        [
            [1, 1, 0],
            [0, 1, 0],
            [0, 0, 0],
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
        ],
        dtype=np.float32,
    )
    assert part.kind == "hypergraph" and part.shape == (6, 3)
    assert dict(part.node_offsets) == {"user": 0, "topic": 3}
    np.testing.assert_array_equal(_incidence(part), expected)
    assert part.hyperedge_weight is None
    torch.testing.assert_close(
        part.features["topic"], torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    )
    assert part.meta["users_without_topic"] == 1 and part.meta["empty_topics"] == 1
    assert part.meta["memberships"] == 3


def test_count_weights_and_min_count(tiny_interactions: Interactions) -> None:
    topics = _topics(USER_TOPIC, ITEM_TOPIC)
    cfg = from_dict(TopicHypergraphConfig, {"weights": "count", "min_count": 2})
    part = UserTopicHypergraphBuilder().build(tiny_interactions, {"topics": topics}, config=cfg)
    inc = _incidence(part)
    # u0-t1 (1 sentence) is below min_count 2; the topic nodes keep weight 1.
    np.testing.assert_array_equal(inc[:3], [[2, 0, 0], [0, 3, 0], [0, 0, 0]])
    np.testing.assert_array_equal(inc[3:], np.eye(3))
    assert part.meta["memberships_below_min_count"] == 1


def test_item_topic_hypergraph_layout(tiny_interactions: Interactions) -> None:
    part = ItemTopicHypergraphBuilder().build(
        tiny_interactions, {"topics": _topics(USER_TOPIC, ITEM_TOPIC)}
    )
    assert part.shape == (4 + 3, 3) and dict(part.node_offsets) == {"item": 0, "topic": 4}
    np.testing.assert_array_equal(_incidence(part), np.vstack([ITEM_TOPIC, np.eye(3)]))


def test_mismatched_id_space_is_a_clear_error(tiny_interactions: Interactions) -> None:
    topics = _topics(np.ones((5, 3), np.float32), ITEM_TOPIC)
    with pytest.raises(DataError, match="user_topic has 5 rows but the training table has 3 users"):
        UserTopicHypergraphBuilder().build(tiny_interactions, {"topics": topics})


def test_missing_topics_and_bad_counts_and_bad_params(tiny_interactions: Interactions) -> None:
    with pytest.raises(ArtifactError, match="needs the 'topics' artifact"):
        UserTopicHypergraphBuilder().build(tiny_interactions)
    negative = _topics(-USER_TOPIC, ITEM_TOPIC)
    with pytest.raises(DataError, match="finite and >= 0"):
        UserTopicHypergraphBuilder().build(tiny_interactions, {"topics": negative})
    with pytest.raises(ConfigError, match="min_count"):
        from_dict(TopicHypergraphConfig, {"min_count": 0})
    with pytest.raises(ConfigError, match="binary"):
        from_dict(TopicHypergraphConfig, {"weights": "counts"})
    empty = tiny_interactions.select(np.zeros(len(tiny_interactions), dtype=bool))
    with pytest.raises(DataError, match="no interactions"):
        UserTopicHypergraphBuilder().build(empty, {"topics": _topics(USER_TOPIC, ITEM_TOPIC)})


def test_zero_topics_is_a_data_error(tiny_interactions: Interactions) -> None:
    topics = TopicAssignments(
        np.zeros((0, 2), np.float32), sp.csr_matrix((3, 0)), sp.csr_matrix((4, 0)), ()
    )
    with pytest.raises(DataError, match="0 topics"):
        UserTopicHypergraphBuilder().build(tiny_interactions, {"topics": topics})


def test_explicit_zeros_in_the_topic_matrix_are_not_members(
    tiny_interactions: Interactions,
) -> None:
    user_topic = sp.csr_matrix(USER_TOPIC)
    user_topic.data[:] = [2.0, 0.0, 3.0]  # u0-t1 stored as an explicit 0
    topics = dataclasses.replace(_topics(USER_TOPIC, ITEM_TOPIC), user_topic=user_topic)
    part = UserTopicHypergraphBuilder().build(tiny_interactions, {"topics": topics})
    assert _incidence(part)[0, 1] == 0 and part.meta["memberships"] == 2
