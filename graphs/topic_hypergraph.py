"""User-topic and item-topic hypergraphs (SD-MTMP, methods.md 1.2).

Nodes are the users (or items) followed by the k topic nodes; hyperedge g holds topic node
``offset + g`` and every member of topic g. The incidence ``H`` has shape ``(m + k, k)`` and is
stored unnormalised (``edge_weight`` = incidence weight: 1, or the member's training-sentence count
with ``weights: count``); :class:`mmseq.nn.TopicHypergraphConv` normalises at forward time.

Documented handling of awkward inputs (counted in ``meta``, never dropped silently):

* a topic with no members keeps its hyperedge, which then holds only its topic node;
* a user/item in no topic is a node in no hyperedge: the convolution gives it 0 (plus bias);
* the topic node's own incidence weight is 1, also with count weights;
* a topics matrix whose rows differ from the training table's users/items is an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from graphs.base import GRAPH_BUILDERS, NO_ARTIFACTS, GraphBuilder, coalesce, require_interactions
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions, TopicAssignments, canonical_json
from mmseq.errors import ArtifactError, DataError


@dataclass(frozen=True)
class TopicHypergraphConfig:
    """Settings of a topic hypergraph."""

    weights: Literal["binary", "count"] = "binary"  # incidence: 1, or training-sentence count
    min_count: int = 1  # sentences a member needs in a topic to join its hyperedge (>= 1)

    def __post_init__(self) -> None:
        if self.min_count < 1:
            raise ValueError(f"Expected 'min_count' >= 1 (got {self.min_count})")


def topic_incidence(
    name: str,
    membership: sp.spmatrix,
    topic_embeddings: np.ndarray,
    node_type: str,
    config: TopicHypergraphConfig,
) -> tuple[GraphPart, dict]:
    """The hypergraph part for a (num_nodes, k) membership-count matrix (meta counts returned)."""
    members = sp.coo_matrix(membership)
    num_members, k = members.shape
    counts = np.asarray(members.data, dtype=np.float64)
    if counts.size and (not np.isfinite(counts).all() or counts.min() < 0):
        raise DataError(
            f"Graph builder '{name}': topic counts must be finite and >= 0 (got min {counts.min()})"
        )
    keep = counts >= config.min_count
    rows, cols, counts = members.row[keep], members.col[keep], counts[keep]
    values = counts if config.weights == "count" else np.ones_like(counts)
    topic_nodes = np.arange(k, dtype=np.int64)
    edge_index, weight = coalesce(
        np.concatenate([rows, num_members + topic_nodes]),
        np.concatenate([cols, topic_nodes]),
        np.concatenate([values, np.ones(k)]),
        (num_members + k, k),
    )
    member_rows = np.unique(rows)
    topic_sizes = np.bincount(cols, minlength=k)
    counts_meta = {
        "num_topics": int(k),
        f"num_{node_type}s": int(num_members),
        "memberships": int(len(rows)),
        "memberships_below_min_count": int((~keep).sum()),
        f"{node_type}s_without_topic": int(num_members - len(member_rows)),
        "empty_topics": int((topic_sizes == 0).sum()),
        "weights": config.weights,
        "topic_node_weight": 1.0,
    }
    part = GraphPart(
        name=name,
        kind="hypergraph",
        edge_index=edge_index,
        edge_weight=weight,
        shape=(num_members + k, k),
        node_offsets={node_type: 0, "topic": num_members},
        hyperedge_weight=None,
        features={
            "topic": torch.from_numpy(np.ascontiguousarray(topic_embeddings, dtype=np.float32))
        },
    )
    return part, counts_meta


class _TopicHypergraphBuilder(GraphBuilder):
    config_class = TopicHypergraphConfig
    requires = ("topics",)
    node_type: str  # "user" or "item"

    def build(
        self,
        train: Interactions,
        artifacts: Mapping[str, Any] = NO_ARTIFACTS,
        config: TopicHypergraphConfig | None = None,
    ) -> GraphPart:
        config = config or TopicHypergraphConfig()
        topics = self.artifact(artifacts, "topics")
        if not isinstance(topics, TopicAssignments):
            raise ArtifactError(
                f"Graph builder '{self.name}': expected the 'topics' artifact to be "
                f"TopicAssignments (got {type(topics).__name__})"
            )
        require_interactions(train, self.name)
        membership = topics.user_topic if self.node_type == "user" else topics.item_topic
        expected = train.num_users if self.node_type == "user" else train.num_items
        attr = f"{self.node_type}_topic"
        if membership.shape[0] != expected:
            raise DataError(
                f"Graph builder '{self.name}': topics.{attr} has {membership.shape[0]} rows but "
                f"the training table has {expected} {self.node_type}s; topics and interactions "
                "must share one id space (were the topics built from another data set or split?)"
            )
        if topics.num_topics == 0:
            raise DataError(
                f"Graph builder '{self.name}': the topic model found 0 topics "
                "(every sentence an outlier?); a topic hypergraph needs at least one"
            )
        emb = np.asarray(topics.topic_embeddings)
        if emb.ndim != 2 or not np.isfinite(emb).all():
            raise DataError(
                f"Graph builder '{self.name}': topic_embeddings must be a finite "
                f"(k, d) matrix (got shape {emb.shape})"
            )
        part, counts = topic_incidence(self.name, membership, emb, self.node_type, config)
        # JSON round trip: plain types only, so the cached part loads with weights_only=True.
        topics_meta = json.loads(canonical_json(dict(topics.meta)))
        # Labels travel with the part so that explanations need no topic cache.
        labels = {
            "topic_labels": list(topics.labels),
            "topic_keywords": [list(k) for k in topics.keywords],
        }
        meta = self.base_meta(train, config) | counts | {"topics_meta": topics_meta} | labels
        return GraphPart(**(part.to_state() | {"meta": meta}))


@GRAPH_BUILDERS.register("user_topic_hypergraph")
class UserTopicHypergraphBuilder(_TopicHypergraphBuilder):
    """Users then topics; hyperedge g = topic node g plus every user with a sentence in topic g."""

    name = "user_topic_hypergraph"
    node_type = "user"


@GRAPH_BUILDERS.register("item_topic_hypergraph")
class ItemTopicHypergraphBuilder(_TopicHypergraphBuilder):
    """Items then topics; hyperedge g = topic node g plus every item with a sentence in topic g."""

    name = "item_topic_hypergraph"
    node_type = "item"
