"""Plug-ins from outside the repository: a stage and a builder in a scratch module named in YAML.

The scratch module lives in ``tmp_path`` (not in graphs/, topics/ or mmseq/); the test builds the
graphs through scripts/build_graphs.py and trains LightGCN with the new part as its extra item
graph, editing no file of the project.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from mmseq.config import load_experiment
from mmseq.data.prepare import graph_bundle_file, prepare_data
from mmseq.errors import ConfigError
from mmseq.train.experiment import run_experiment

REPO = Path(__file__).resolve().parents[1]

SCRATCH = '''
"""A third-party modality: a stage (item popularity) and a builder (popularity chain)."""
from dataclasses import dataclass

import numpy as np

from graphs.base import GRAPH_BUILDERS, GraphBuilder, coalesce
from graphs.normalize import symmetric_normalize
from mmseq.data.graph_bundle import GraphPart
from mmseq.stages import STAGES, Stage

RUNS = []


@dataclass(frozen=True)
class PopularityConfig:
    power: float = 1.0  # exponent on the training count


@STAGES.register("{prefix}_popularity")
class PopularityStage(Stage):
    name = "{prefix}_popularity"
    config_class = PopularityConfig

    def run(self, fit, config, *, cache_dir=None, progress=False):
        RUNS.append(config)
        return np.bincount(fit.item, minlength=fit.num_items).astype(np.float64) ** config.power


@dataclass(frozen=True)
class ChainConfig:
    weight: float = 1.0  # raw weight of every chain edge


@GRAPH_BUILDERS.register("{prefix}_chain")
class PopularityChainBuilder(GraphBuilder):
    """Links each item to the next one in popularity order (undirected)."""

    name = "{prefix}_chain"
    config_class = ChainConfig
    requires = ("{prefix}_popularity",)

    def build(self, train, artifacts, config=None):
        config = config or ChainConfig()
        order = np.argsort(-artifacts["{prefix}_popularity"], kind="stable")
        a, b = order[:-1], order[1:]
        n = train.num_items
        edge_index, w = coalesce(
            np.r_[a, b], np.r_[b, a], np.full(2 * len(a), config.weight), (n, n)
        )
        return GraphPart(self.name, "graph", edge_index, symmetric_normalize(edge_index, w, n),
                         (n, n), {{"item": 0}}, meta=self.base_meta(train, config))
'''


def _build_graphs_main():
    spec = importlib.util.spec_from_file_location(
        "build_graphs_script", REPO / "scripts" / "build_graphs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _write_config(tmp_path: Path, module: str, prefix: str, power: float = 0.5) -> Path:
    config = {
        "plugins": [module],
        "data": {"path": "synthetic", "synthetic": {"num_users": 60, "num_items": 40, "seed": 0}},
        "split": {"protocol": "ratio-80-20"},
        f"{prefix}_popularity": {"power": power},
        "graphs": [{"builder": "interaction_graph"}, {"builder": f"{prefix}_chain"}],
        "model": {
            "name": "lightgcn",
            "params": {"embedding_dim": 8, "num_layers": 1, "item_graph": f"{prefix}_chain"},
        },
        "train": {"epochs": 2, "batch_size": 256, "progress": False, "threads": 1},
        "artifacts_dir": str(tmp_path / "artifacts"),
        "output_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request) -> tuple[str, str]:
    """A scratch module (unique name per test) on sys.path: (module name, registry prefix)."""
    prefix = f"scratch{abs(hash(request.node.name)) % 10**8}"
    module = f"{prefix}_modality"
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / f"{module}.py").write_text(SCRATCH.format(prefix=prefix))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    return module, prefix


def test_scratch_stage_and_builder_build_graphs_and_train(
    tmp_path: Path, scratch: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    module, prefix = scratch
    config = _write_config(tmp_path, module, prefix)
    assert _build_graphs_main()(["--config", str(config), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"stage {prefix}_popularity" in out and f"{prefix}_chain" in out

    cfg = load_experiment(config)
    import sys

    runs = sys.modules[module].RUNS
    assert [r.power for r in runs] == [0.5]  # the YAML section reached the stage, typed
    assert cfg.sections[f"{prefix}_popularity"] == runs[0]
    assert graph_bundle_file(cfg, prepare_data(cfg).split).is_file()
    results = run_experiment(cfg)
    assert results["graphs"] == ["interaction_graph", f"{prefix}_chain"]
    assert all(math.isfinite(v) for v in results["test"].values())


def test_stage_settings_key_the_bundle_file(tmp_path: Path, scratch: tuple[str, str]) -> None:
    module, prefix = scratch
    split = prepare_data(load_experiment(_write_config(tmp_path, module, prefix))).split
    half = graph_bundle_file(load_experiment(_write_config(tmp_path, module, prefix, 0.5)), split)
    one = graph_bundle_file(load_experiment(_write_config(tmp_path, module, prefix, 1.0)), split)
    assert half != one
    # A section of a stage no listed builder needs does not key the bundle.
    cfg = load_experiment(_write_config(tmp_path, module, prefix), ["topics.min_topic_size=99"])
    assert graph_bundle_file(cfg, split) == half


def test_plugin_errors_name_the_file(tmp_path: Path, scratch: tuple[str, str]) -> None:
    module, prefix = scratch
    config = _write_config(tmp_path, module, prefix)
    with pytest.raises(ConfigError, match=r"plugins\[0\]: cannot import plug-in module 'nope'"):
        load_experiment(config, ["plugins=[nope]"])
    with pytest.raises(ConfigError, match=f"{prefix}_popularity.*unknown key 'powr'"):
        load_experiment(config, [f"{prefix}_popularity.powr=2"])
    with pytest.raises(ConfigError, match="unknown key 'topicz'"):
        load_experiment(config, ["topicz.min_topic_size=3"])
