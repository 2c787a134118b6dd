"""Graph builders: each modality is a builder registered in :data:`GRAPH_BUILDERS`.

Builders turn the FIT interactions (and, where declared, topic assignments from the fit rows) into
:class:`~mmseq.data.graph_bundle.GraphPart` artifacts; :func:`graphs.compose.build_all` runs the
builders a config lists, caches each part on disk and returns a
:class:`~mmseq.data.graph_bundle.GraphBundle`. Registered builders:

* ``interaction_graph``: binary user-item graph, ``D^-1/2 A D^-1/2`` (LightGCN);
* ``rating_graph``: the same, rating-weighted (SD-MTMP, methods.md 1.2);
* ``user_topic_hypergraph`` / ``item_topic_hypergraph``: users (items) then topic nodes, one
  hyperedge per topic (methods.md 1.2);
* ``item_cooccurrence``: item-item graph of consecutive items in training sequences;
* ``item_attribute_hypergraph``: items x attributes from ``Interactions.item_attributes``.

See docs/graphs.md.
"""

from graphs.base import GRAPH_BUILDERS, GraphBuilder
from graphs.compose import GraphSpec, build_all, parse_specs, summary_rows, topics_hash
from graphs.cooccurrence import (
    ItemAttributeHypergraphBuilder,
    ItemAttributeHypergraphConfig,
    ItemCooccurrenceBuilder,
    ItemCooccurrenceConfig,
)
from graphs.normalize import hypergraph_norm, symmetric_normalize
from graphs.rating import (
    InteractionGraphBuilder,
    InteractionGraphConfig,
    RatingGraphBuilder,
    RatingGraphConfig,
)
from graphs.topic_hypergraph import (
    ItemTopicHypergraphBuilder,
    TopicHypergraphConfig,
    UserTopicHypergraphBuilder,
)

__all__ = [
    "GRAPH_BUILDERS",
    "GraphBuilder",
    "GraphSpec",
    "InteractionGraphBuilder",
    "InteractionGraphConfig",
    "ItemAttributeHypergraphBuilder",
    "ItemAttributeHypergraphConfig",
    "ItemCooccurrenceBuilder",
    "ItemCooccurrenceConfig",
    "ItemTopicHypergraphBuilder",
    "RatingGraphBuilder",
    "RatingGraphConfig",
    "TopicHypergraphConfig",
    "UserTopicHypergraphBuilder",
    "build_all",
    "hypergraph_norm",
    "parse_specs",
    "summary_rows",
    "symmetric_normalize",
    "topics_hash",
]
