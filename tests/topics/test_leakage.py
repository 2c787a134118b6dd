"""Leak-free by construction: valid/test review text cannot change any topic output."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from topic_helpers import KeywordEncoder

from mmseq.data.schema import Interactions, canonical_json
from topics import TopicConfig, TopicExtractor

CFG = TopicConfig(min_topic_size=5)


def _split_80_20(data: Interactions):
    from mmseq.data.split import split_interactions

    return split_interactions(data, "ratio-80-20")


def _outputs(data: Interactions, encoder, pca, tmp_path):
    split = _split_80_20(data)
    ex = TopicExtractor(CFG, encoder=encoder, reducer=pca, progress=False)
    a = ex.fit(split.fit, cache_dir=tmp_path)
    return (
        split,
        ex,
        {
            "topic_embeddings": a.topic_embeddings.tobytes(),
            "user_topic": [
                a.user_topic.data.tobytes(),
                a.user_topic.indices.tobytes(),
                a.user_topic.indptr.tobytes(),
            ],
            "item_topic": [
                a.item_topic.data.tobytes(),
                a.item_topic.indices.tobytes(),
                a.item_topic.indptr.tobytes(),
            ],
            "labels": a.labels,
            "keywords": a.keywords,
            "meta": canonical_json(dict(a.meta)),
            "sentence_topic": ex.result_.sentence_topic.tobytes(),
        },
    )


@pytest.fixture(scope="module")
def synthetic() -> Interactions:
    from mmseq.data.synthetic import SyntheticConfig, generate_synthetic

    return generate_synthetic(SyntheticConfig(num_users=30, num_items=24, num_topics=4, seed=3))


@pytest.mark.parametrize("which", ["keyword", "minilm"])
def test_valid_and_test_text_never_reaches_the_topics(
    synthetic, which, request, pca, tmp_path
) -> None:
    encoder = KeywordEncoder() if which == "keyword" else request.getfixturevalue("minilm")
    split, ex, before = _outputs(synthetic, encoder, pca, tmp_path / "a")
    assert ex.result_.assignments.num_topics >= 2

    # Rewrite the text of every validation/test row (not in fit) with strongly topical text.
    fit_pairs = set(zip(split.fit.user.tolist(), split.fit.item.tolist()))
    held_out = np.array([(u, i) not in fit_pairs for u, i in zip(synthetic.user, synthetic.item)])
    assert held_out.sum() == len(split.valid) + len(split.test) > 0
    review = synthetic.review.copy()
    review[held_out] = "Leaked tuner review. The tuner cable strings are new! Totally different."
    leaky = dataclasses.replace(synthetic, review=review)

    split2, ex2, after = _outputs(leaky, encoder, pca, tmp_path / "b")
    assert split2.fit.content_hash() == split.fit.content_hash()
    assert after == before  # every output byte-identical

    if which == "minilm":
        return  # the control below is encoder-independent; it runs with the keyword encoder
    # Control: the same rewrite applied to ONE training row does change the outputs.
    first_fit = np.flatnonzero(~held_out)[0]
    review[first_fit] = review[held_out][0]
    _, _, changed = _outputs(
        dataclasses.replace(synthetic, review=review), encoder, pca, tmp_path / "c"
    )
    assert changed["meta"] != before["meta"]
