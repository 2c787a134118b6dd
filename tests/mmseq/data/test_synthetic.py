"""The synthetic generator: determinism, sizes, and the latent structure a model can learn."""

from __future__ import annotations

import numpy as np
import pytest

from mmseq.config import from_dict
from mmseq.data.synthetic import (
    TOPICS,
    SyntheticConfig,
    generate_synthetic,
    generate_synthetic_with_latents,
)
from mmseq.errors import ConfigError


@pytest.fixture(scope="module")
def default():
    return generate_synthetic_with_latents(SyntheticConfig())


def test_deterministic_by_seed():
    cfg = SyntheticConfig(num_users=50, num_items=60)
    a, b = generate_synthetic(cfg), generate_synthetic(cfg)
    assert a.content_hash() == b.content_hash()
    assert a.review.tolist() == b.review.tolist()
    c = generate_synthetic(SyntheticConfig(num_users=50, num_items=60, seed=1))
    assert c.content_hash() != a.content_hash()


def test_sizes_and_columns(default):
    data, _ = default
    assert data.num_users == 400 and data.num_items == 300
    per_user = np.bincount(data.user)
    assert per_user.min() >= 5
    assert 11.0 <= per_user.mean() <= 13.0
    assert len(data) == per_user.sum()
    # no duplicate pairs, dense ids, rows grouped by user
    assert len(np.unique(data.user * data.num_items + data.item)) == len(data)
    assert np.all(np.diff(data.user) >= 0)
    assert set(np.unique(data.rating).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert data.rating.dtype == np.float32 and data.timestamp.dtype == np.int64
    assert data.meta["has_text"] and data.meta["topic_names"] == [t[0] for t in TOPICS[:8]]


def test_timestamps_strictly_increase_per_user(default):
    data, _ = default
    same_user = np.diff(data.user) == 0
    assert np.all(np.diff(data.timestamp)[same_user] >= 3600)
    assert data.timestamp.min() >= SyntheticConfig().start_time


def test_reviews_have_two_to_four_sentences(default):
    data, _ = default
    counts = np.array([text.count(". ") + 1 for text in data.review])
    assert counts.min() == 2 and counts.max() == 4
    assert all(text.endswith(".") for text in data.review)
    assert all(
        s.split()[0] in {"Disappointing", "Not", "Okay", "Good", "Excellent"} for s in data.summary
    )


def test_users_concentrate_on_their_top_topics(default):
    data, latents = default
    top2 = np.argsort(-latents.user_taste, axis=1)[:, :2]
    topic = latents.item_topic[data.item]
    share = (topic[:, None] == top2[data.user]).any(axis=1).mean()
    assert share > 0.7  # chance is 2 / 8 = 0.25


def test_ratings_follow_taste_match(default):
    data, latents = default
    match = (latents.user_taste[data.user] * latents.item_mixture[data.item]).sum(1)
    assert np.corrcoef(match, data.rating)[0, 1] > 0.5


def test_review_words_reveal_the_item_topic(default):
    """A sentence's topic words (its nouns) mostly belong to the item's primary topic."""
    data, latents = default
    hits = total = 0
    for text, item in zip(data.review[:600], data.item[:600]):
        for t, (_, nouns, *_rest) in enumerate(TOPICS[:8]):
            n = sum(text.count(noun) for noun in nouns)
            total += n
            hits += n if t == latents.item_topic[item] else 0
    assert hits / total > 0.7  # chance 1/8


def test_collaborative_signal_beats_popularity(default):
    """Leave the last item out: item co-occurrence ranks it far better than popularity."""
    data, _ = default
    last = np.r_[np.flatnonzero(np.diff(data.user)), len(data) - 1]
    train = np.ones(len(data), dtype=bool)
    train[last] = False
    x = np.zeros((data.num_users, data.num_items))
    x[data.user[train], data.item[train]] = 1.0
    norm = np.sqrt(x.sum(0)) + 1e-9
    sim = (x.T @ x) / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0.0)

    def hit_rate(scores):
        scores = np.where(x > 0, -np.inf, scores)
        top = np.argsort(-scores, axis=1)[:, :10]
        return (top == data.item[last][:, None]).any(axis=1).mean()

    popularity = hit_rate(np.broadcast_to(x.sum(0), x.shape).copy())
    knn = hit_rate(x @ sim)
    assert knn > 1.5 * popularity and knn > 0.15


def test_without_text():
    data = generate_synthetic(SyntheticConfig(num_users=10, num_items=20, with_text=False))
    assert data.review is None and data.summary is None and not data.meta["has_text"]


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        ({"num_topics": 11}, "num_topics"),
        ({"num_items": 3}, "num_items"),
        ({"sentences_min": 5}, "sentences_min"),
        ({"mean_interactions": 2.0}, "mean_interactions"),
    ],
)
def test_invalid_config(fields, pattern):
    with pytest.raises(ConfigError, match=pattern):
        SyntheticConfig(**fields)


def test_config_from_dict_is_strict():
    with pytest.raises(ConfigError, match="did you mean 'num_topics'"):
        from_dict(SyntheticConfig, {"num_topic": 4})
    assert from_dict(SyntheticConfig, {"num_topics": 4}).num_topics == 4
