"""Full-ranking evaluation passes against the floor, in one process.

    python scripts/bench_eval.py [--config configs/experiments/toys_loo.yaml] [--stage test]
        [--models sasrec,gru4rec,s4rec,emkd,bert4rec,peerrec,bprmf,lightgcn] [--repeats 5]

For every model (default config, untrained: speed does not depend on the weights) one pass of
``mmseq.eval.protocol.evaluate`` over the stage's users (batch 1024) is timed against the FLOOR on
the same batches: ``U @ I.T`` (U: (B, d) user vectors, I: (num_items, d), d = 64), the history set
to ``-inf`` and ``topk`` at the largest cut-off, with nothing else (no model, no metrics). The
``padded`` column times the same pass with every sequence encoded at the full ``max_len`` width
(the scoring path before length buckets) and checks that its metrics are bit-identical.
Passes alternate (floor, then each model's bucketed and padded pass) and each figure is the median
of ``--repeats`` passes after one warm-up. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from mmseq.config import ExperimentConfig, load_experiment, resolve_data_path
from mmseq.data.prepare import make_inputs, prepare_data
from mmseq.eval.protocol import EvalTask, evaluate, make_eval_task
from mmseq.models import MODELS
from mmseq.models.base import Recommender

REPO = Path(__file__).resolve().parents[1]
SEQUENTIAL = ("sasrec", "gru4rec", "s4rec", "emkd", "bert4rec", "peerrec")
BATCH = 1024


def floor_pass(task: EvalTask, dim: int = 64, seed: int = 0) -> None:
    """Bare scoring of every batch: ``U @ I.T``, history masked, ``topk`` at the largest K."""
    gen = torch.Generator().manual_seed(seed)
    items = torch.randn(task.num_items, dim, generator=gen)
    users = torch.randn(task.num_users, dim, generator=gen)
    k = max(task.ks)
    indptr, indices = task.history_indptr, task.history_indices
    for start in range(0, task.num_users, BATCH):
        stop = min(start + BATCH, task.num_users)
        scores = users[start:stop] @ items.T  # (B, num_items)
        lo, hi = int(indptr[start]), int(indptr[stop])
        rows = torch.repeat_interleave(
            torch.arange(stop - start), indptr[start + 1 : stop + 1] - indptr[start:stop]
        )
        scores.index_put_((rows, indices[lo:hi]), torch.tensor(float("-inf")))
        scores.topk(k, dim=1)


@contextmanager
def padded(model: Recommender):
    """Score with every row encoded at the full width, users in id order (the path before)."""
    modules = [
        m
        for m in (__import__(f"mmseq.models.{n}", fromlist=["x"]) for n in SEQUENTIAL)
        if hasattr(m, "last_states_by_length")
    ]
    saved = {m: m.last_states_by_length for m in modules}

    def full_width(encode: Any, tokens: torch.Tensor, **_: Any) -> torch.Tensor:
        return encode(tokens)[..., -1, :]

    try:
        for m in modules:
            m.last_states_by_length = full_width
        model.eval_by_length = False  # type: ignore[attr-defined]  # in user id order
        yield model
    finally:
        del model.eval_by_length
        for m, f in saved.items():
            m.last_states_by_length = f


def rebase_data(cfg: ExperimentConfig) -> ExperimentConfig:
    """Read ``.../shared/data/...`` from ``$MMSEQ_SHARED_DATA`` (default: ``../shared/data``)
    when the config's relative path does not reach it (a checkout elsewhere)."""
    path = resolve_data_path(cfg)
    if path is None or path.exists() or "shared/data/" not in cfg.data.path:
        return cfg
    root = Path(os.environ.get("MMSEQ_SHARED_DATA", REPO.parent / "shared" / "data"))
    rebased = root / cfg.data.path.split("shared/data/", 1)[1]
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=str(rebased)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs/experiments/toys_loo.yaml"))
    parser.add_argument("--stage", default="test", choices=("valid", "test"))
    parser.add_argument("--models", default=",".join(SEQUENTIAL + ("bprmf", "lightgcn")))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = rebase_data(load_experiment(args.config))
    prepared = prepare_data(cfg)
    parts: dict[str, Any] = {}
    names = args.models.split(",")
    if "lightgcn" in names:
        from graphs.compose import build_all  # scripts wire graphs into mmseq

        bundle = build_all(
            [{"builder": "interaction_graph"}], prepared.split.fit, cache_dir=None
        )
        parts = dict(bundle.parts)
    fit_inputs, test_inputs = make_inputs(cfg, prepared, parts)
    inputs = fit_inputs if args.stage == "valid" else test_inputs
    task = make_eval_task(prepared.split, args.stage)
    lengths = inputs.seq_lengths[task.users].double()
    fill = float(lengths.clamp(max=cfg.train.max_len).mean()) / cfg.train.max_len
    models = {name: MODELS.get(name) for name in names}
    built = {}
    for name, cls in models.items():
        torch.manual_seed(0)
        built[name] = cls(cls.config_class(), inputs.num_users, inputs.num_items)

    steps: dict[str, Any] = {"floor": lambda: floor_pass(task)}
    results: dict[str, dict[str, float]] = {}
    for name, model in built.items():
        steps[name] = lambda m=model, n=name: results.__setitem__(n, evaluate(m, inputs, task))
        if name in SEQUENTIAL:

            def run_padded(m: Recommender = model, n: str = name) -> None:
                with padded(m):
                    results[n + ":padded"] = evaluate(m, inputs, task)

            steps[name + ":padded"] = run_padded
    times: dict[str, list[float]] = {k: [] for k in steps}
    for i in range(args.repeats + 1):  # the first round warms up
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            if i:
                times[key].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{cfg.data.path} {args.stage}: {task.num_users} users x {task.num_items} items, "
        f"batch {BATCH}, threads {args.threads}, sequence fill {fill:.1%} of "
        f"{cfg.train.max_len}; floor {med['floor']:.3f} s"
    )
    out: dict[str, Any] = {
        "bench": "eval_floor",
        "config": args.config,
        "stage": args.stage,
        "users": task.num_users,
        "items": task.num_items,
        "threads": args.threads,
        "repeats": args.repeats,
        "floor_s": round(med["floor"], 4),
        "models": {},
    }
    for name in built:
        row: dict[str, Any] = {
            "eval_s": round(med[name], 4),
            "ratio_to_floor": round(med[name] / med["floor"], 3),
        }
        line = f"{name:9s} eval {med[name]:.3f} s = {row['ratio_to_floor']:.2f}x floor"
        if name + ":padded" in med:
            row["padded_s"] = round(med[name + ":padded"], 4)
            row["padded_ratio_to_floor"] = round(med[name + ":padded"] / med["floor"], 3)
            row["bit_identical"] = results[name] == results[name + ":padded"]
            line += (
                f"; padded {med[name + ':padded']:.3f} s = {row['padded_ratio_to_floor']:.2f}x"
                f"; metrics bit-identical: {row['bit_identical']}"
            )
        print(line)
        out["models"][name] = row
    print(json.dumps(out))


if __name__ == "__main__":
    main()
