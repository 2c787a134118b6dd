"""graphs/compose.py: specs, caching (hit / rebuild / corruption), external builders, summary."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from graph_test_data import topics_from

from graphs import GRAPH_BUILDERS, GraphBuilder, build_all, summary_rows
from graphs.compose import parse_specs
from mmseq.data.graph_bundle import GraphBundle, GraphPart
from mmseq.data.schema import Interactions, TopicAssignments
from mmseq.errors import ArtifactError, ConfigError
from mmseq.stages import STAGES, Stage

SPECS = [
    {"builder": "rating_graph", "params": {"duplicates": "max"}},
    {"builder": "user_topic_hypergraph", "params": {"weights": "count"}},
]


def _same(a: GraphPart, b: GraphPart) -> bool:
    return (
        torch.equal(a.edge_index, b.edge_index)
        and torch.equal(a.edge_weight, b.edge_weight)
        and a.shape == b.shape
    )


def test_cache_hit_then_rebuild_on_changed_setting_or_input(
    tmp_path: Path, tiny_interactions: Interactions, tiny_topics: TopicAssignments
) -> None:
    given = {"topics": tiny_topics}
    first = build_all(SPECS, tiny_interactions, artifacts=given, cache_dir=tmp_path)
    assert first.meta["cache"] == {"rating_graph": "built", "user_topic_hypergraph": "built"}
    assert len(list(tmp_path.glob("*.pt"))) == 2 and len(list(tmp_path.glob("*.pt.sha256"))) == 2
    second = build_all(SPECS, tiny_interactions, artifacts=given, cache_dir=tmp_path)
    assert second.meta["cache"] == {"rating_graph": "hit", "user_topic_hypergraph": "hit"}
    for name in first.names():
        assert _same(first[name], second[name])
    part = second["rating_graph"]
    for key in ("builder", "settings", "train_hash", "cache_key", "shape", "nnz"):
        assert key in part.meta
    assert part.meta["settings"] == {"duplicates": "max"} and part.meta["nnz"] == part.nnz

    changed = [SPECS[0], {"builder": "user_topic_hypergraph", "params": {"weights": "binary"}}]
    third = build_all(changed, tiny_interactions, artifacts=given, cache_dir=tmp_path)
    assert third.meta["cache"] == {"rating_graph": "hit", "user_topic_hypergraph": "built"}

    rating = tiny_interactions.rating.copy()
    rating[0] = 1.0
    other = dataclasses.replace(tiny_interactions, rating=rating)
    fourth = build_all(SPECS, other, artifacts={"topics": topics_from(other)}, cache_dir=tmp_path)
    assert fourth.meta["cache"] == {"rating_graph": "built", "user_topic_hypergraph": "built"}
    assert not _same(fourth["rating_graph"], first["rating_graph"])


def test_topics_change_rebuilds_only_topic_parts(
    tmp_path: Path, tiny_interactions: Interactions, tiny_topics: TopicAssignments
) -> None:
    build_all(SPECS, tiny_interactions, artifacts={"topics": tiny_topics}, cache_dir=tmp_path)
    other = topics_from(tiny_interactions, k=2)
    again = build_all(SPECS, tiny_interactions, artifacts={"topics": other}, cache_dir=tmp_path)
    assert again.meta["cache"] == {"rating_graph": "hit", "user_topic_hypergraph": "built"}
    assert again["user_topic_hypergraph"].shape == (3 + 2, 2)


def test_corrupt_cache_file_is_detected_and_rebuilt(
    tmp_path: Path, tiny_interactions: Interactions, tiny_topics: TopicAssignments
) -> None:
    first = build_all(SPECS[:1], tiny_interactions, cache_dir=tmp_path)
    (path,) = tmp_path.glob("rating_graph-*.pt")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="Checksum mismatch"):
        GraphBundle.load(path)
    again = build_all(SPECS[:1], tiny_interactions, cache_dir=tmp_path)
    assert again.meta["cache"] == {"rating_graph": "rebuilt"}
    assert _same(again["rating_graph"], first["rating_graph"])
    GraphBundle.load(path)  # rewritten and valid again
    Path(str(path) + ".sha256").unlink()
    assert build_all(SPECS[:1], tiny_interactions, cache_dir=tmp_path).meta[
        "cache"
    ] == {"rating_graph": "rebuilt"}


def test_no_cache_dir_means_no_files(tmp_path: Path, tiny_interactions: Interactions) -> None:
    bundle = build_all(
        [{"builder": "interaction_graph"}], tiny_interactions, cache_dir=None
    )
    assert bundle.meta["cache"] == {"interaction_graph": "off"} and not list(tmp_path.iterdir())


def test_spec_errors_name_the_builder_and_key(tiny_interactions: Interactions) -> None:
    with pytest.raises(
        ConfigError,
        match=r"graphs\[0\]\.params \(builder 'rating_graph'\).*"
        r"unknown key 'duplicate'.*did you mean 'duplicates'",
    ):
        parse_specs([{"builder": "rating_graph", "params": {"duplicate": "max"}}])
    with pytest.raises(ConfigError, match="Unknown graph builder 'rating_grap'.*did you mean"):
        parse_specs([{"builder": "rating_grap"}])
    with pytest.raises(ConfigError, match="unknown key 'parms'"):
        parse_specs([{"builder": "rating_graph", "parms": {}}])
    with pytest.raises(ConfigError, match="already built"):
        parse_specs([{"builder": "rating_graph"}, {"builder": "rating_graph"}])
    renamed = parse_specs(
        [
            {"builder": "rating_graph"},
            {"builder": "rating_graph", "params": {"duplicates": "sum"}, "name": "r2"},
        ]
    )
    assert [spec.name for spec, _, _ in renamed] == ["rating_graph", "r2"]


@dataclass(frozen=True)
class _CountConfig:
    """Settings of the test-only stage."""

    scale: float = 1.0  # multiplies the item counts


def test_build_all_runs_only_the_stages_its_builders_require(
    monkeypatch: pytest.MonkeyPatch, tiny_interactions: Interactions
) -> None:
    runs: list[str] = []

    class CountStage(Stage):
        name = "item_counts"
        config_class = _CountConfig

        def run(self, fit, config, *, cache_dir=None, progress=False):  # type: ignore[no-untyped-def]
            runs.append(self.name)
            return np.bincount(fit.item, minlength=fit.num_items) * config.scale

    class NeedsCounts(_RingBuilder):
        name = "item_ring"
        requires = ("item_counts",)

    monkeypatch.setitem(STAGES._entries, "item_counts", CountStage)
    monkeypatch.setitem(GRAPH_BUILDERS._entries, "item_ring", _RingBuilder)
    build_all([{"builder": "item_ring"}], tiny_interactions, cache_dir=None)
    assert runs == []  # no builder needs the stage: it does not run
    monkeypatch.setitem(GRAPH_BUILDERS._entries, "item_ring", NeedsCounts)
    one = build_all([{"builder": "item_ring"}], tiny_interactions, cache_dir=None)
    two = build_all(
        [{"builder": "item_ring"}],
        tiny_interactions,
        stage_configs={"item_counts": _CountConfig(scale=2.0)},
        cache_dir=None,
    )
    assert runs == ["item_counts", "item_counts"]
    hashes = one["item_ring"].meta["artifact_hashes"], two["item_ring"].meta["artifact_hashes"]
    assert set(hashes[0]) == {"item_counts"} and hashes[0] != hashes[1]
    assert one["item_ring"].meta["cache_key"] != two["item_ring"].meta["cache_key"]


def test_builder_requiring_an_unknown_stage(
    monkeypatch: pytest.MonkeyPatch, tiny_interactions: Interactions
) -> None:
    class NeedsNothingKnown(_RingBuilder):
        requires = ("no_such_stage",)

    monkeypatch.setitem(GRAPH_BUILDERS._entries, "item_ring", NeedsNothingKnown)
    with pytest.raises(ConfigError, match="require the unknown stage 'no_such_stage'"):
        build_all([{"builder": "item_ring"}], tiny_interactions, cache_dir=None)


@dataclass(frozen=True)
class _RingConfig:
    """Settings of the test-only ring graph."""

    weight: float = 1.0  # weight of every ring edge


class _RingBuilder(GraphBuilder):
    """A modality defined outside the package: a ring over the items."""

    name = "item_ring"
    config_class = _RingConfig

    def build(
        self, train: Interactions, artifacts: object = None, config: _RingConfig | None = None
    ) -> GraphPart:
        config = config or _RingConfig()
        n = train.num_items
        src = torch.arange(n)
        edge_index = torch.stack([torch.cat([src, (src + 1) % n]), torch.cat([(src + 1) % n, src])])
        return GraphPart(
            self.name,
            "graph",
            edge_index,
            torch.full((2 * n,), config.weight),
            (n, n),
            {"item": 0},
            meta=self.base_meta(train, config),
        )


def test_builder_registered_outside_the_package_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_interactions: Interactions
) -> None:
    monkeypatch.setitem(GRAPH_BUILDERS._entries, "item_ring", _RingBuilder)
    specs = [{"builder": "item_ring", "params": {"weight": 0.5}}, {"builder": "interaction_graph"}]
    bundle = build_all(specs, tiny_interactions, cache_dir=tmp_path)
    assert bundle["item_ring"].nnz == 8 and bool((bundle["item_ring"].edge_weight == 0.5).all())
    assert (
        build_all(specs, tiny_interactions, cache_dir=tmp_path).meta["cache"][
            "item_ring"
        ]
        == "hit"
    )
    with pytest.raises(ConfigError, match="builder 'item_ring'.*unknown key 'wieght'"):
        parse_specs([{"builder": "item_ring", "params": {"wieght": 1.0}}])


def test_a_builder_breaking_the_contract_is_caught(
    monkeypatch: pytest.MonkeyPatch, tiny_interactions: Interactions
) -> None:
    class Negative(_RingBuilder):
        def build(self, train, artifacts=None, config=None):  # type: ignore[no-untyped-def]
            part = super().build(train, artifacts, config=config)
            return dataclasses.replace(part, edge_weight=-part.edge_weight)

    monkeypatch.setitem(GRAPH_BUILDERS._entries, "item_ring", Negative)
    with pytest.raises(ValueError, match="negative edge weight"):
        build_all([{"builder": "item_ring"}], tiny_interactions, cache_dir=None)


def test_summary_rows(tiny_interactions: Interactions, tiny_topics: TopicAssignments) -> None:
    bundle = build_all(SPECS, tiny_interactions, artifacts={"topics": tiny_topics}, cache_dir=None)
    rows = {row["name"]: row for row in summary_rows(bundle)}
    assert rows["rating_graph"] == {
        "name": "rating_graph",
        "kind": "graph",
        "builder": "rating_graph",
        "nodes": "user=3 item=4",
        "num_nodes": 7,
        "edges": 20,
        "nnz": 20,
    }
    hyper = rows["user_topic_hypergraph"]
    assert hyper["nodes"] == "user=3 topic=3" and hyper["edges"] == 3
    assert hyper["nnz"] == bundle["user_topic_hypergraph"].nnz
    assert np.isscalar(hyper["nnz"])
