"""Graph builders: each modality is a builder registered in :data:`GRAPH_BUILDERS`.

Builders turn the FIT interactions (and, where declared in ``requires``, artifacts of the stages
in :data:`mmseq.stages.STAGES`, e.g. topics) into
:class:`~mmseq.data.graph_bundle.GraphPart` artifacts; :func:`graphs.compose.build_all` runs the
stages and builders a config lists, caches each part on disk and returns a
:class:`~mmseq.data.graph_bundle.GraphBundle`. Every module of this package is imported when
``GRAPH_BUILDERS`` is first looked up, so a new built-in modality is one new file. Registered:

* ``interaction_graph``: binary user-item graph, ``D^-1/2 A D^-1/2`` (LightGCN);
* ``rating_graph``: the same, rating-weighted (SD-MTMP, methods.md 1.2);
* ``user_topic_hypergraph`` / ``item_topic_hypergraph``: users (items) then topic nodes, one
  hyperedge per topic (methods.md 1.2; stage ``topics``);
* ``item_cooccurrence``: item-item graph of consecutive items in training sequences;
* ``item_attribute_hypergraph``: items x attributes from ``Interactions.item_attributes``;
* ``item_semantic_graph``: kNN item-item graph over item text embeddings (stage ``item_text``);
* ``item_text_embedding``: edgeless item part carrying ``features["text"]``, the item text
  embeddings themselves (stage ``item_text``).

See docs/graphs.md.
"""

from graphs.base import GRAPH_BUILDERS, GraphBuilder
from graphs.compose import GraphSpec, build_all, parse_specs, run_stages, summary_rows
from graphs.cooccurrence import ItemCooccurrenceBuilder, ItemCooccurrenceConfig
from graphs.item_attribute import ItemAttributeHypergraphBuilder, ItemAttributeHypergraphConfig
from graphs.item_semantic import ItemSemanticGraphBuilder, ItemSemanticGraphConfig
from graphs.item_text_embedding import ItemTextEmbeddingBuilder, ItemTextEmbeddingConfig
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
    "ItemSemanticGraphBuilder",
    "ItemSemanticGraphConfig",
    "ItemTextEmbeddingBuilder",
    "ItemTextEmbeddingConfig",
    "ItemTopicHypergraphBuilder",
    "RatingGraphBuilder",
    "RatingGraphConfig",
    "TopicHypergraphConfig",
    "UserTopicHypergraphBuilder",
    "build_all",
    "hypergraph_norm",
    "parse_specs",
    "run_stages",
    "summary_rows",
    "symmetric_normalize",
]
