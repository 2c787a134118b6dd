"""Real MiniLM + real UMAP + HDBSCAN end to end (slow: UMAP's numba compile is ~15 s cold)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from topic_helpers import make_interactions

from topics import TopicConfig, TopicExtractor

MI = "amazon2014-musical-instruments-5core/reviews_Musical_Instruments_5.json.gz"


@pytest.mark.slow
def test_synthetic_topics_with_real_umap_are_recovered_and_reproducible(minilm, tmp_path) -> None:
    from mmseq.data.split import split_interactions
    from mmseq.data.synthetic import SyntheticConfig, generate_synthetic

    data = generate_synthetic(SyntheticConfig(num_users=40, num_items=30, num_topics=4, seed=1))
    fit = split_interactions(data, "ratio-80-20").fit
    cfg = TopicConfig(min_topic_size=8, nr_topics=6)
    first = TopicExtractor(cfg, encoder=minilm, progress=False)
    got = first.fit(fit, cache_dir=tmp_path)
    assert 2 <= got.num_topics <= 6 and got.meta["outlier_share"] < 0.5
    # the four latent product topics show up among the c-TF-IDF keywords
    words = {w for kw in got.keywords for w in kw}
    assert {"strings", "cable", "tuner", "pedal"} & words, got.keywords
    # same settings again, re-clustered from the cached embeddings: identical topics (fixed seed)
    (tmp_path / "topics").rename(tmp_path / "old")
    second = TopicExtractor(cfg, encoder=minilm, progress=False)
    again = second.fit(fit, cache_dir=tmp_path)
    assert not second.cache_hit_ and not second.embeddings_computed_
    np.testing.assert_array_equal(second.result_.sentence_topic, first.result_.sentence_topic)
    assert again.labels == got.labels


@pytest.mark.slow
@pytest.mark.data
def test_musical_instruments_subset(minilm, shared_data) -> None:
    path = shared_data / MI
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for _, line in zip(range(150), fh)]
    users = {u: i for i, u in enumerate(dict.fromkeys(r["reviewerID"] for r in records))}
    items = {a: i for i, a in enumerate(dict.fromkeys(r["asin"] for r in records))}
    data = make_interactions(
        [(users[r["reviewerID"]], items[r["asin"]], r["reviewText"]) for r in records],
        source=str(path),
    )
    got = TopicExtractor(TopicConfig(min_topic_size=10), encoder=minilm, progress=False).fit(data)
    assert got.num_topics >= 2 and got.topic_embeddings.shape == (got.num_topics, 384)
    assert all(len(kw) >= 3 for kw in got.keywords)
    assert got.user_topic.sum() + got.meta["outliers"] == got.meta["sentences"]["sentences"]
