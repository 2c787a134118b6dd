"""Data preparation shared by graph building, training, evaluation and explanation.

``prepare_data`` loads ``cfg.data`` and splits it by the protocol; ``graph_bundle_file`` names the
bundle that ``scripts/build_graphs.py`` writes for that split; ``load_graph_parts`` reads the parts
a model needs from it; ``make_inputs`` turns the split into the model inputs of the fit and test
stages. No training here: ``mmseq.train`` and ``scripts/`` call these.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmseq.config import ExperimentConfig, resolve_data_path
from mmseq.data.graph_bundle import GraphBundle, GraphPart
from mmseq.data.inputs import ModelInputs, build_model_inputs
from mmseq.data.load import load_dataset
from mmseq.data.schema import Interactions
from mmseq.data.split import Split, split_interactions
from mmseq.errors import ArtifactError
from mmseq.stages import experiment_bundle_path


@dataclass(frozen=True, eq=False)
class PreparedData:
    """The loaded data set and its split (what build_graphs and training share)."""

    data: Interactions
    split: Split
    seconds: float


def prepare_data(cfg: ExperimentConfig) -> PreparedData:
    """Load ``cfg.data`` and split it by ``cfg.split.protocol``."""
    start = time.perf_counter()
    data = load_dataset(cfg.data, resolve_data_path(cfg))
    split = split_interactions(data, cfg.split.protocol)
    return PreparedData(data, split, time.perf_counter() - start)


def graph_bundle_file(cfg: ExperimentConfig, split: Split) -> Path:
    """The bundle path that ``scripts/build_graphs.py`` writes for this config and split."""
    return experiment_bundle_path(cfg, split.fit.content_hash())


def load_graph_parts(
    cfg: ExperimentConfig,
    split: Split,
    needed: Sequence[str],
    graphs: GraphBundle | None = None,
) -> dict[str, GraphPart]:
    """The graph parts ``needed`` by ``cfg.model``, from ``graphs`` or the bundle on disk.

    Raises:
        ArtifactError: if parts are needed and no bundle was built for this config and split.
    """
    if not needed:
        return {}
    if graphs is None:
        path = graph_bundle_file(cfg, split)
        if not path.is_file():
            raise ArtifactError(
                f"Model '{cfg.model.name}' needs graphs {list(needed)} but no bundle exists at "
                f"{path}; "
                "run: python scripts/build_graphs.py --config <this config>"
            )
        graphs = GraphBundle.load(path)
    return {name: graphs[name] for name in needed}


def item_attribute_extras(data: Interactions) -> dict[str, torch.Tensor]:
    """``{"item_attributes": (num_items, A) sparse float32}`` when the data set has attributes."""
    if data.item_attributes is None:
        return {}
    coo = data.item_attributes.tocoo()
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))  # (2, nnz)
    values = torch.ones(coo.nnz, dtype=torch.float32)
    attrs = torch.sparse_coo_tensor(index, values, coo.shape, check_invariants=False)
    return {"item_attributes": attrs.coalesce()}


def make_inputs(
    cfg: ExperimentConfig, prepared: PreparedData, parts: dict[str, GraphPart]
) -> tuple[ModelInputs, ModelInputs]:
    """(fit inputs for training and validation, fit+valid inputs for the test stage)."""
    extras = item_attribute_extras(prepared.data)
    max_len = cfg.train.max_len
    fit_inputs = build_model_inputs(
        prepared.split.fit, max_len=max_len, graphs=parts, extras=extras
    )
    test_inputs = build_model_inputs(
        prepared.split.history("test"), max_len=max_len, graphs=parts, extras=extras
    )
    return fit_inputs, test_inputs
