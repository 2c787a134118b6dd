"""The topic stage's memory: encoder workers end before clustering, HDBSCAN's process count is
bounded by the machine, and neither changes a topic."""

from __future__ import annotations

import os

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


def test_hdbscan_processes_are_bounded_by_the_machine() -> None:
    cores = len(os.sched_getaffinity(0))
    assert default_clusterer(CFG).core_dist_n_jobs == max(1, min(4, cores))
