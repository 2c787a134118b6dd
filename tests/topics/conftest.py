"""Fixtures of the topic tests: a hand-designed corpus, a keyword encoder, PCA, the real MiniLM."""

from __future__ import annotations

import pytest
from topic_helpers import TOY_ROWS, KeywordEncoder, make_interactions

from mmseq.data.schema import Interactions


@pytest.fixture
def toy() -> Interactions:
    return make_interactions(TOY_ROWS)


@pytest.fixture
def keyword_encoder() -> KeywordEncoder:
    return KeywordEncoder()


@pytest.fixture
def pca():
    """A fixed reducer for unit tests (real UMAP only runs in the slow tests)."""
    from sklearn.decomposition import PCA

    return PCA(n_components=3, svd_solver="full", random_state=0)


@pytest.fixture(scope="session")
def minilm():
    """The real packaged MiniLM, loaded once per session (a few seconds)."""
    from topics.encoder import MiniLMEncoder

    enc = MiniLMEncoder()
    _ = enc.model
    return enc
