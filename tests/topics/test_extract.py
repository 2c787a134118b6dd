"""topics/extract.py: the pipeline on a hand-designed corpus (keyword encoder, PCA reducer)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from topic_helpers import (
    TOY_ITEM_TOPIC,
    TOY_ROWS,
    TOY_USER_TOPIC,
    KeywordEncoder,
    keyword_vectors,
    make_interactions,
)

from mmseq.errors import DataError
from topics import TopicConfig, TopicExtractor, extract_topics, unique_sentences
from topics.sentences import split_sentences

CFG = TopicConfig(min_topic_size=3)


def test_hand_designed_corpus(toy, keyword_encoder, pca) -> None:
    ex = TopicExtractor(CFG, encoder=keyword_encoder, reducer=pca, progress=False)
    got = ex.fit(toy)
    assert got.num_topics == 3
    # BERTopic numbers topics by size: strings (7 sentences), cable (6), tuner (4)
    assert got.meta["topic_sizes"] == [7, 6, 4]
    assert [kw[0] for kw in got.keywords] == ["strings", "cable", "tuner"]
    assert got.labels[0].startswith("0_strings_") and got.labels[2].startswith("2_tuner_")
    np.testing.assert_array_equal(got.user_topic.toarray(), TOY_USER_TOPIC)
    np.testing.assert_array_equal(got.item_topic.toarray(), TOY_ITEM_TOPIC)
    assert got.user_topic.shape == (4, 3) and got.item_topic.shape == (3, 3)
    # e(T_g) = mean of the member sentence embeddings
    sentences = split_sentences([r[2] for r in TOY_ROWS]).text
    for g, word in enumerate(("string", "cable", "tuner")):
        members = [s for s in sentences if word in s.lower()]
        np.testing.assert_allclose(
            got.topic_embeddings[g], keyword_vectors(members).mean(0), atol=1e-6
        )
    assert got.meta["outliers"] == 0 and got.meta["sentences"]["sentences"] == 17
    assert got.meta["encoder_id"] == "test-keyword-v1"
    assert ex.result_.sentence_row.tolist()[:4] == [0, 0, 1, 1]


def test_identical_sentences_are_embedded_once(pca) -> None:
    rows = [*TOY_ROWS, (0, 2, "Great strings for the price. This cable hums.")]
    enc = KeywordEncoder()
    got = extract_topics(make_interactions(rows), CFG, encoder=enc, reducer=pca, progress=False)
    (call,) = enc.calls
    assert len(call) == 17 and len(set(call)) == 17  # 19 sentences, 2 repeats
    assert got.meta["sentences"]["sentences"] == 19 and got.meta["unique_sentences"] == 17
    assert got.user_topic.toarray()[0].tolist() == [4, 2, 0]  # the repeats still count


def test_unique_sentences() -> None:
    unique, inverse = unique_sentences(["b", "a", "b", "c", "a"])
    assert unique == ["b", "a", "c"] and inverse.tolist() == [0, 1, 0, 2, 1]


def test_deterministic(toy, pca) -> None:
    a = extract_topics(toy, CFG, encoder=KeywordEncoder(), reducer=pca, progress=False)
    b = extract_topics(toy, CFG, encoder=KeywordEncoder(), reducer=pca, progress=False)
    assert a.topic_embeddings.tobytes() == b.topic_embeddings.tobytes()
    assert a.labels == b.labels and a.meta == b.meta


def test_plain_callable_encoder(toy, pca) -> None:
    got = extract_topics(toy, CFG, encoder=keyword_vectors, reducer=pca, progress=False)
    assert got.meta["encoder_id"].startswith("callable:")
    np.testing.assert_array_equal(got.user_topic.toarray(), TOY_USER_TOPIC)


class _AllOutliers:
    def fit(self, X, y=None):
        self.labels_ = np.full(len(X), -1)
        return self


@pytest.mark.parametrize(
    ("rows", "kwargs", "match"),
    [
        ([], {}, "got 0 rows"),
        ([(0, 0, ""), (1, 0, None), (1, 1, "...")], {}, "got no sentence"),
        ([(0, 0, "One strings review. Only two sentences.")], {}, "at least min_topic_size=3"),
        (TOY_ROWS[:1], {}, r"got 2 from 1 reviews"),
        (TOY_ROWS, {"clusterer": _AllOutliers()}, "no topic among 17"),
        (
            [(0, 0, "It is what it is. It was. It is not. They were. We are.")],
            {},
            "empty vocabulary",
        ),
    ],
)
def test_bad_input_gives_data_errors(rows, kwargs, match, pca) -> None:
    with pytest.raises(DataError, match=match):
        extract_topics(
            make_interactions(rows),
            CFG,
            encoder=KeywordEncoder(),
            reducer=pca,
            progress=False,
            **kwargs,
        )


def test_too_few_sentences_for_umap_is_a_data_error() -> None:
    # The default (UMAP) reducer is checked before it is built: no numba compile here.
    with pytest.raises(DataError, match="umap_n_components"):
        extract_topics(
            make_interactions(TOY_ROWS[:3]), CFG, encoder=KeywordEncoder(), progress=False
        )


def test_no_review_text_names_the_data_set(toy) -> None:
    no_text = dataclasses.replace(toy, review=None)
    with pytest.raises(DataError, match="toy has no review text"):
        extract_topics(no_text, CFG, encoder=KeywordEncoder(), progress=False)


def test_topic_model_fits_with_one_thread_whatever_the_machine(toy, pca) -> None:
    """UMAP/pynndescent/HDBSCAN reductions depend on the thread count (MI gave 172 topics with 2
    threads and 168 with 1), so the fit runs with one BLAS/OpenMP and one numba thread."""
    import numba
    from threadpoolctl import threadpool_info, threadpool_limits

    seen: list[tuple[list[int], int]] = []

    class Spy:
        def fit(self, x, y=None):
            seen.append(([p["num_threads"] for p in threadpool_info()], numba.get_num_threads()))
            pca.fit(x)
            return self

        def transform(self, x):
            return pca.transform(x)

    before = numba.get_num_threads()
    with threadpool_limits(limits=2):  # as on a 2-core machine
        extract_topics(toy, CFG, encoder=KeywordEncoder(), reducer=Spy(), progress=False)
        after = [p["num_threads"] for p in threadpool_info()]
    (blas, numba_threads), = seen
    assert blas and set(blas) == {1} and numba_threads == 1
    assert set(after) == {2} and numba.get_num_threads() == before  # restored
