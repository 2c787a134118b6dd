"""Plug-in config sections: topics and graphs typed once at load, strict, and round-tripping."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphs.compose import GraphSpec
from graphs.rating import RatingGraphConfig
from mmseq.config import (
    ExperimentConfig,
    experiment_from_dict,
    load_experiment,
    section_value,
    to_dict,
)
from mmseq.errors import ConfigError
from topics.config import TopicConfig

DEMO = Path(__file__).resolve().parents[2] / "configs" / "experiments" / "demo.yaml"


def test_topics_and_graphs_are_typed_at_load() -> None:
    cfg = load_experiment(DEMO)
    assert cfg.topics == TopicConfig(min_topic_size=20)
    assert all(isinstance(spec, GraphSpec) for spec in cfg.graphs)
    assert cfg.graphs[1] == GraphSpec("rating_graph", RatingGraphConfig(), "rating_graph")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("topics.min_topic_sise=5", r"topics: unknown key 'min_topic_sise'.*'min_topic_size'"),
        ("topics.min_topic_size=1", r"topics: Expected TopicConfig.min_topic_size >= 2"),
        ("graphs=[{builder: rating_graph, params: {duplicate: max}}]", r"unknown key 'duplicate'"),
        ("graphs=[{builder: rating_grpah}]", r"Unknown graph builder 'rating_grpah'"),
    ],
)
def test_a_bad_section_fails_at_load(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_experiment(DEMO, [override])


def test_round_trip_through_to_dict() -> None:
    cfg = load_experiment(DEMO)
    again = experiment_from_dict(to_dict(cfg), where="round trip")
    assert again == cfg


def test_section_value_types_a_config_built_in_code() -> None:
    cfg = ExperimentConfig(topics={"min_topic_size": 12}, graphs=[{"builder": "rating_graph"}])
    assert section_value(cfg, "topics") == TopicConfig(min_topic_size=12)
    assert section_value(cfg, "graphs")[0].params == RatingGraphConfig()
    assert section_value(ExperimentConfig(), "topics") == TopicConfig()
    with pytest.raises(ConfigError, match="Unknown config section 'topix'"):
        section_value(cfg, "topix")
