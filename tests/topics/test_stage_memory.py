"""The topic stage's memory: encoder workers end before clustering, HDBSCAN computes its core
distances in-process, and neither changes a topic."""

from __future__ import annotations

from topic_helpers import KeywordEncoder

from topics import TopicConfig, TopicExtractor
from topics.extract import default_clusterer

CFG = TopicConfig(min_topic_size=3)


class ClosableEncoder(KeywordEncoder):
    """Records when its (pretend) worker processes are ended."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def encode(self, sentences, *, progress=False):
        self.events.append("encode")
        return super().encode(sentences, progress=progress)

    def close(self) -> None:
        self.events.append("close")


def test_encoder_workers_end_before_clustering_and_topics_stay(toy, pca) -> None:
    events: list[str] = []

    class Spy:
        def fit(self, x, y=None):
            events.append("reduce")
            pca.fit(x)
            return self

        def transform(self, x):
            return pca.transform(x)

    got = TopicExtractor(CFG, encoder=ClosableEncoder(events), reducer=Spy(), progress=False)
    topics = got.fit(toy)
    assert events[:3] == ["encode", "close", "reduce"]
    plain = TopicExtractor(CFG, encoder=KeywordEncoder(), reducer=pca, progress=False).fit(toy)
    assert topics.meta["topic_sizes"] == plain.meta["topic_sizes"]
    assert (topics.user_topic != plain.user_topic).nnz == 0
    assert topics.keywords == plain.keywords


def test_hdbscan_computes_core_distances_in_this_process() -> None:
    # No joblib worker processes (each a copy of the data, seconds to start); exact either way.
    assert default_clusterer(CFG).core_dist_n_jobs == 1


def test_hdbscan_core_distance_processes_change_no_label() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(6, 5))
    x = np.concatenate([c + rng.normal(size=(80, 5)) for c in centres]).astype(np.float32)
    one = default_clusterer(CFG).fit(x).labels_
    two = with_core_jobs(default_clusterer(CFG), 2).fit(x).labels_
    assert one.max() >= 1  # several clusters, not a trivial answer
    np.testing.assert_array_equal(one, two)


def with_core_jobs(clusterer, jobs: int):
    clusterer.set_params(core_dist_n_jobs=jobs)
    return clusterer
