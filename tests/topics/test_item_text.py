"""topics/item_text.py: mean pooling by hand, reuse of the topic embedding cache, leakage."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from topic_helpers import TOY_ROWS, KeywordEncoder, keyword_vectors, make_interactions

from mmseq.data.schema import Interactions
from mmseq.data.split import split_interactions
from mmseq.stages import STAGES
from topics.config import TopicConfig
from topics.encoder import TOPIC_ENCODERS
from topics.extract import extract_topics
from topics.item_text import ItemTextStage, mean_pool
from topics.sentences import training_sentences

CFG = TopicConfig(min_topic_size=3, encoder="keyword")


@pytest.fixture
def encoder(monkeypatch: pytest.MonkeyPatch) -> KeywordEncoder:
    """A KeywordEncoder that TopicConfig(encoder="keyword") resolves to (records its calls)."""
    enc = KeywordEncoder()

    class _Keyword(KeywordEncoder):
        @classmethod
        def from_config(cls, cfg: TopicConfig) -> KeywordEncoder:
            return enc

    monkeypatch.setitem(TOPIC_ENCODERS._entries, "keyword", _Keyword)
    return enc


def test_mean_pool_by_hand() -> None:
    values = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    got = mean_pool(values, np.array([2, 0, 2]), 4)
    np.testing.assert_allclose(got, [[3, 2], [0, 0], [3, 2.5], [0, 0]])
    assert got.dtype == np.float32


def test_stage_is_registered_and_shares_the_topics_section() -> None:
    assert STAGES.get("item_text") is ItemTextStage
    assert ItemTextStage.section_name() == "topics" == STAGES.get("topics").section_name()
    assert ItemTextStage.folder_name() == "topics"


def test_item_rows_are_the_mean_of_their_sentence_embeddings(
    toy: Interactions, encoder: KeywordEncoder
) -> None:
    got = ItemTextStage().run(toy, CFG)
    sentences = training_sentences(toy)
    owner = toy.item[sentences.row]
    for item in range(toy.num_items):
        texts = list(sentences.text[owner == item])
        np.testing.assert_allclose(got[item], keyword_vectors(texts).mean(0), rtol=1e-5)
    assert got.shape == (toy.num_items, 4)


@pytest.mark.slow  # a real (PCA-reduced) topic fit fills the cache first
def test_reuses_the_topic_stage_embedding_cache(
    toy: Interactions, encoder: KeywordEncoder, pca, tmp_path: Path
) -> None:
    extract_topics(toy, CFG, cache_dir=tmp_path, encoder=encoder, reducer=pca, progress=False)
    assert len(encoder.calls) == 1
    got = ItemTextStage().run(toy, CFG, cache_dir=tmp_path)
    assert len(encoder.calls) == 1  # served by the cache the topic stage wrote
    np.testing.assert_array_equal(got, ItemTextStage().run(toy, CFG))
    assert len(encoder.calls) == 2  # control: without the cache it does encode


def test_item_without_training_text_gets_zeros(encoder: KeywordEncoder) -> None:
    data = make_interactions(TOY_ROWS, num_items=5)
    got = ItemTextStage().run(data, CFG)
    assert not got[3:].any() and got[:3].any()


def test_held_out_text_never_reaches_the_item_features(encoder: KeywordEncoder) -> None:
    from mmseq.data.synthetic import SyntheticConfig, generate_synthetic

    data = generate_synthetic(SyntheticConfig(num_users=30, num_items=24, num_topics=4, seed=3))
    split = split_interactions(data, "ratio-80-20")
    before = ItemTextStage().run(split.fit, CFG)
    fit_pairs = set(zip(split.fit.user.tolist(), split.fit.item.tolist()))
    held = np.array([(u, i) not in fit_pairs for u, i in zip(data.user, data.item)])
    assert held.sum() > 0
    review = data.review.copy()
    review[held] = "Leaked tuner review. The tuner cable strings are new!"
    after = ItemTextStage().run(
        split_interactions(dataclasses.replace(data, review=review), "ratio-80-20").fit, CFG
    )
    np.testing.assert_array_equal(before, after)
    # Control, so that the test can fail: the same rewrite of the FIT rows does change them.
    review[~held] = "Leaked tuner review. The tuner cable strings are new!"
    changed = ItemTextStage().run(
        split_interactions(dataclasses.replace(data, review=review), "ratio-80-20").fit, CFG
    )
    assert not np.array_equal(before, changed)
