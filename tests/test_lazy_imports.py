"""``import mmseq`` and training a model that reads no text import no text or topic stack.

transformers, numba, bertopic, umap and hdbscan belong to the topic stage; torch_geometric pulls
transformers and numba on import, so no model imports it either (LightGCN runs the same sparse
product itself). Each check runs in a fresh interpreter and reads ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = (
    "transformers",
    "numba",
    "bertopic",
    "umap",
    "hdbscan",
    "torch_geometric",
    "sentence_transformers",
)

TRAIN = """
import json, sys
import mmseq
after_import = sorted(m for m in {heavy!r} if m in sys.modules)
from graphs.compose import build_all
from mmseq.config import ExperimentConfig, from_dict
from mmseq.data.prepare import prepare_data
from mmseq.train.experiment import run_experiment
cfg = from_dict(ExperimentConfig, {{
    "data": {{"path": "synthetic", "synthetic": {{"num_users": 40, "num_items": 30, "seed": 0}}}},
    "split": {{"protocol": "ratio-80-20"}},
    "graphs": [{{"builder": "interaction_graph"}}],
    "model": {{"name": {model!r}}},
    "train": {{"epochs": 1, "batch_size": 64, "progress": False, "device": "cpu", "max_len": 8}},
    "output_dir": {out!r}, "artifacts_dir": {out!r},
}}, where="test")
bundle = build_all(list(cfg.graphs), prepare_data(cfg).split.fit, artifacts={{}}, cache_dir=None)
run_experiment(cfg, graphs=bundle, resume=False)
print(json.dumps({{"import": after_import,
                  "train": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def _run(code: str) -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", ["lightgcn", "sasrec"])
def test_training_a_non_text_model_imports_no_text_stack(model: str, tmp_path: Path) -> None:
    seen = _run(TRAIN.format(heavy=HEAVY, model=model, out=str(tmp_path)))
    assert seen == {"import": [], "train": []}


def test_import_mmseq_and_its_registry_is_light() -> None:
    code = (
        "import json, sys, mmseq, mmseq.models, mmseq.nn, mmseq.eval.protocol\n"
        f"print(json.dumps({{'import': sorted(m for m in {HEAVY!r} if m in sys.modules)}}))"
    )
    assert _run(code) == {"import": []}
