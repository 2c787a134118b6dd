"""topics/config.py: strict parsing, validation, and the two cache-key halves."""

from __future__ import annotations

import pytest

from mmseq.config import from_dict
from mmseq.errors import ConfigError
from topics.config import TopicConfig


def test_from_dict_is_strict() -> None:
    cfg = from_dict(TopicConfig, {"min_topic_size": 5, "nr_topics": 8}, where="topics.yaml")
    assert (cfg.min_topic_size, cfg.nr_topics, cfg.encoder) == (5, 8, "minilm")
    with pytest.raises(ConfigError, match="did you mean 'min_topic_size'"):
        from_dict(TopicConfig, {"min_topic_sise": 5}, where="topics.yaml")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("min_topic_size", 1, "min_topic_size >= 2"),
        ("umap_n_neighbors", 1, "umap_n_neighbors >= 2"),
        ("umap_n_components", 0, "umap_n_components >= 1"),
        ("nr_topics", 1, "nr_topics to be 0"),
        ("umap_min_dist", 2.0, r"umap_min_dist in \[0, 1\]"),
        ("batch_tokens", 0, "batch_tokens >= 1"),
        ("umap_init", "tsne", "umap_init in"),
    ],
)
def test_invalid_values(field: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TopicConfig(**{field: value})


def test_sentence_transformers_needs_a_path() -> None:
    with pytest.raises(ConfigError, match="needs model_path"):
        TopicConfig(encoder="sentence-transformers")


def test_settings_split_embedding_from_clustering() -> None:
    cfg = TopicConfig()
    enc, clu = cfg.encoder_settings(), cfg.clustering_settings()
    assert set(enc) == {"encoder", "model_path", "device", "bf16", "batch_tokens", "max_batch_size"}
    assert not set(enc) & set(clu)
    assert "threads" not in clu  # threads change speed, not the result
    assert {"min_topic_size", "umap_n_components", "nr_topics", "seed"} <= set(clu)
