"""Fixtures for the graph tests."""

from __future__ import annotations

import pytest
from graph_test_data import topics_from

from mmseq.data.schema import Interactions, TopicAssignments


@pytest.fixture
def tiny_topics(tiny_interactions: Interactions) -> TopicAssignments:
    return topics_from(tiny_interactions)
