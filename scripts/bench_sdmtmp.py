"""Seconds per training epoch of SD-MTMP against mmseq's LightGCN, measured in one process.

    python scripts/bench_sdmtmp.py [--epochs 7] [--threads 1] [--device cpu]

Data: Amazon 2014 Musical Instruments 5-core, ``ratio-80-20`` fit rows (what training sees).
Graphs: ``interaction_graph`` (LightGCN), ``rating_graph`` and the two topic hypergraphs from the
real builders. Topics: a keyword stand-in for the topic stage (a review mentioning keyword g puts
its user and item in topic g; k = 24; fixed random 384-d topic embeddings): the same shapes as
the real stage's output, so nearly the same cost (the real k is larger, and the hypergraph
convolution is a small share of an epoch). Both models use batch 1024, Adam lr 1e-3, their
default configs; one warm-up epoch, then the median of ``--epochs`` epochs, the two models' epochs
interleaved. The last line is one JSON object.

    python scripts/bench_sdmtmp.py --config configs/experiments/sdmtmp_musical_instruments.yaml

uses instead that experiment's data, split and REAL graph bundle (the topic stage's topics; run
``scripts/build_graphs.py --config ...`` first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graphs.compose import build_all
from mmseq.config import DataConfig, load_experiment
from mmseq.data.graph_bundle import GraphBundle
from mmseq.data.inputs import build_model_inputs
from mmseq.data.load import load_dataset
from mmseq.data.prepare import graph_bundle_file, prepare_data
from mmseq.data.schema import Interactions, TopicAssignments
from mmseq.data.split import split_interactions
from mmseq.models import MODELS, Recommender
from mmseq.models.base import ModelInputs
from mmseq.seed import make_generator, seed_everything

REPO = Path(__file__).resolve().parents[1]
MI = (REPO.parent / "shared" / "data" / "amazon2014-musical-instruments-5core"
      / "reviews_Musical_Instruments_5.json.gz")
KEYWORDS = ("string", "cable", "pedal", "tuner", "strap", "mic", "amp", "pick", "stand", "capo",
            "case", "drum", "bass", "acoustic", "sound", "price", "quality", "cord", "clip",
            "volume", "noise", "battery", "fret", "bridge")
SPECS = [{"builder": "interaction_graph"}, {"builder": "rating_graph"},
         {"builder": "user_topic_hypergraph"}, {"builder": "item_topic_hypergraph"}]


def keyword_topics(train: Interactions, dim: int = 384, seed: int = 0) -> TopicAssignments:
    """Topic g = reviews of ``train`` mentioning KEYWORDS[g], counted per user and item."""
    text = np.char.lower(np.asarray(train.review if train.review is not None else
                                    np.full(len(train), ""), dtype=str))
    hits = np.stack([np.char.find(text, w) >= 0 for w in KEYWORDS], axis=1).astype(np.float32)
    rows = sp.csr_matrix(hits)  # (N, k)
    to_user = sp.csr_matrix((np.ones(len(train)), (train.user, np.arange(len(train)))),
                            shape=(train.num_users, len(train)))
    to_item = sp.csr_matrix((np.ones(len(train)), (train.item, np.arange(len(train)))),
                            shape=(train.num_items, len(train)))
    emb = np.random.default_rng(seed).standard_normal((len(KEYWORDS), dim)).astype(np.float32)
    return TopicAssignments(emb, (to_user @ rows).tocsr(), (to_item @ rows).tocsr(),
                            tuple(f"{g}_{w}" for g, w in enumerate(KEYWORDS)),
                            tuple((w,) for w in KEYWORDS), meta={"source": "keyword stand-in"})


def one_epoch(model: Recommender, inputs: ModelInputs, optimizer: torch.optim.Optimizer,
              generator: torch.Generator) -> float:
    """Wall seconds of one training epoch (batches of 1024, Adam)."""
    model.train()
    start = time.perf_counter()
    for batch in model.training_batches(inputs, 1024, generator):
        out = model.loss(batch, inputs)
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        optimizer.step()
    if inputs.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", default=str(MI))
    parser.add_argument("--config", default=None,
                        help="experiment config: its data and built graph bundle (real topics)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(0)
    if args.config:
        cfg = load_experiment(args.config)
        split = prepare_data(cfg).split
        fit = split.fit
        path = graph_bundle_file(cfg, split)
        if not path.is_file():
            raise SystemExit(f"No graph bundle at {path}: run scripts/build_graphs.py "
                             f"--config {args.config} first")
        bundle = GraphBundle.load(path)
    else:
        data = load_dataset(DataConfig(path=args.data, format="amazon", kcore=5), Path(args.data))
        fit = split_interactions(data, "ratio-80-20").fit
        bundle = build_all(SPECS, fit, artifacts={"topics": keyword_topics(fit)}, cache_dir=None)
    inputs = build_model_inputs(fit, max_len=50, graphs=dict(bundle.parts)).to(args.device)
    runs = {}
    for name in ("lightgcn", "sdmtmp"):
        cls = MODELS.get(name)
        torch.manual_seed(0)
        model = cls(cls.config_class(), fit.num_users, fit.num_items).to(args.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        runs[name] = (model, optimizer, make_generator(0, inputs.device), [])
    # Epochs alternate between the two models so that load changes on a shared machine hit both.
    for _ in range(args.epochs + 1):
        for model, optimizer, generator, times in runs.values():
            times.append(one_epoch(model, inputs, optimizer, generator))
    result: dict[str, float | int | str] = {}
    for name, (_, _, _, times) in runs.items():
        result[f"{name}_s_per_epoch"] = round(statistics.median(times[1:]), 4)
        print(f"{name}: warm-up {times[0]:.3f} s, epochs {[round(t, 3) for t in times[1:]]}",
              flush=True)
    result["ratio"] = round(float(result["sdmtmp_s_per_epoch"]) /
                            float(result["lightgcn_s_per_epoch"]), 3)
    topics = bundle["user_topic_hypergraph"].shape[1]
    result.update(fit_rows=len(fit), users=fit.num_users, items=fit.num_items, topics=topics,
                  threads=args.threads, device=args.device)
    print(json.dumps({"sdmtmp_s_per_epoch": result.pop("sdmtmp_s_per_epoch"),
                      "lightgcn_s_per_epoch": result.pop("lightgcn_s_per_epoch"),
                      "ratio": result.pop("ratio"), **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
