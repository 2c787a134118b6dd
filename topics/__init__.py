"""Review topic extraction for SD-MTMP (methods.md 1.1): sentences -> encoder -> UMAP + HDBSCAN.

Public API::

    from topics import TopicConfig, extract_topics
    topics = extract_topics(split.fit, TopicConfig(), cache_dir=Path("artifacts/topics"))

Pass TRAINING rows only (``split.fit``): the stage reads nothing else, which keeps it leak-free.
Encoders are pluggable through ``TOPIC_ENCODERS`` ("minilm", "sentence-transformers") or any
callable ``list[str] -> np.ndarray``.
"""

from topics.aggregate import owner_topic_counts, topic_embeddings, topic_membership, topic_sizes
from topics.cache import TopicCache, TopicResult, topic_input_hash
from topics.config import TopicConfig
from topics.encoder import (
    TOPIC_ENCODERS,
    CallableEncoder,
    MiniLMEncoder,
    SentenceEncoder,
    SentenceTransformerEncoder,
    build_encoder,
)
from topics.extract import TopicExtractor, extract_topics
from topics.report import format_topic_table, topic_map_2d, write_topic_report
from topics.sentences import SentenceTable, split_sentences, training_sentences, unique_sentences

__all__ = [
    "TOPIC_ENCODERS",
    "CallableEncoder",
    "MiniLMEncoder",
    "SentenceEncoder",
    "SentenceTable",
    "SentenceTransformerEncoder",
    "TopicCache",
    "TopicConfig",
    "TopicExtractor",
    "TopicResult",
    "build_encoder",
    "extract_topics",
    "format_topic_table",
    "owner_topic_counts",
    "split_sentences",
    "topic_embeddings",
    "topic_input_hash",
    "topic_map_2d",
    "topic_membership",
    "topic_sizes",
    "training_sentences",
    "unique_sentences",
    "write_topic_report",
]
