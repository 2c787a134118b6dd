"""Cost curve: seconds and peak RSS of every pipeline stage against the number of interactions.

    python scripts/bench_scale.py                       # 1e4, 1e5, 1e6 interactions
    python scripts/bench_scale.py --sizes 10000 100000 --threads 2

For each size the project's synthetic generator (mmseq.data.synthetic; ~12 interactions per user,
items = 0.75 x users, no review text; blocks of 10^5 with disjoint ids above that, see
write_synthetic) writes a RecBole ``.inter`` file, and the stages run on it:

    read          load_interactions(file)             (the reader, parsing N rows)
    dedup_kcore   deduplicate + 5-core
    split         ratio-80-20
    graph_build   graphs.build_all: interaction, rating, user- and item-topic hypergraphs
    epoch_<model> one training epoch (trainer, validation stubbed) of lightgcn, sasrec, sdmtmp;
                  with --max-steps S, S batches timed and scaled to the epoch's batch count
    eval          one full-ranking validation pass of LightGCN over --eval-users users x all items

Topics: the topic stage (sentence embedding) is left out here (its cost is the encoder's, see
docs/topics.md and the Ray engine); the hypergraphs use a stand-in assignment with --topics topics
(item i in topic i mod K, users counted over their training items), so they have the real shape.
Peak RSS is the process's resident set sampled every 5 ms during the stage (psutil). The growth
exponent of a stage is the least-squares slope of log(seconds) on log(interactions); for eval,
on log(users scored x items). Last line: one JSON object with every number.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import scipy.sparse as sp
import torch

from graphs.compose import build_all
from mmseq.config import TrainConfig, from_dict
from mmseq.data.dedup import deduplicate
from mmseq.data.inputs import build_model_inputs
from mmseq.data.kcore import kcore_filter
from mmseq.data.readers import load_interactions
from mmseq.data.schema import TopicAssignments
from mmseq.data.split import split_interactions
from mmseq.data.synthetic import SyntheticConfig, generate_synthetic
from mmseq.eval.protocol import evaluate, make_eval_task
from mmseq.models import MODELS
from mmseq.train.loop import fit

GRAPHS = [
    {"builder": "interaction_graph"},
    {"builder": "rating_graph"},
    {"builder": "user_topic_hypergraph"},
    {"builder": "item_topic_hypergraph"},
]
MODEL_NAMES = ("lightgcn", "sasrec", "sdmtmp")


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak RSS in MiB while ``fn`` ran)."""
    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return result, seconds, peak[0] / 2**20


def stand_in_topics(fit_rows: Any, num_topics: int) -> TopicAssignments:
    """Item i in topic i mod K; users counted over their training items (shape of real topics)."""
    item_topic_of = np.arange(fit_rows.num_items) % num_topics
    ones = np.ones(len(fit_rows), dtype=np.float32)
    user_topic = sp.csr_matrix(
        (ones, (fit_rows.user, item_topic_of[fit_rows.item])),
        shape=(fit_rows.num_users, num_topics),
    )
    item_topic = sp.csr_matrix(
        (ones, (fit_rows.item, item_topic_of[fit_rows.item])),
        shape=(fit_rows.num_items, num_topics),
    )
    rng = np.random.default_rng(0)
    return TopicAssignments(
        topic_embeddings=rng.standard_normal((num_topics, 384)).astype(np.float32),
        user_topic=user_topic,
        item_topic=item_topic,
        labels=tuple(f"topic {k}" for k in range(num_topics)),
    )


def build(name: str, fit_rows: Any) -> Any:
    cls = MODELS.get(name)
    config = from_dict(cls.config_class, {"embedding_dim": 64}, where=name)
    return cls(config, fit_rows.num_users, fit_rows.num_items)


def epoch_steps(model: Any, inputs: Any, cfg: TrainConfig) -> int:
    """Batches in one epoch (drawn, not trained)."""
    generator = torch.Generator().manual_seed(0)
    return sum(1 for _ in model.training_batches(inputs, cfg.batch_size, generator))


def one_epoch(model: Any, inputs: Any, cfg: TrainConfig, max_steps: int) -> None:
    """One epoch through the trainer (validation stubbed), cut after ``max_steps`` batches."""
    if max_steps:
        full = model.training_batches
        model.training_batches = lambda *a: itertools.islice(full(*a), max_steps)

    def no_validation(*args: Any, **kwargs: Any) -> dict[str, float]:
        return {cfg.monitor: 0.0}

    fit(
        model,
        train_inputs=inputs,
        valid_inputs=inputs,
        valid_task=None,
        cfg=cfg,
        seed=0,
        evaluate_fn=no_validation,
    )


def write_synthetic(n: int, path: Path, *, block: int) -> None:
    """About ``n`` interactions as a RecBole ``.inter`` file: ``ceil(n / block)`` generator blocks
    (~12 interactions per user, items = 0.75 x users, seed = block number) with disjoint ids.

    Blocks, because the generator draws a dense users x items score matrix (O(U x I) memory: 39 GB
    at 10^6 interactions); the blocks keep every user's and item's degree distribution the same.
    """
    parts = -(-n // block)
    with path.open("w", encoding="utf-8") as out:
        out.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        for b in range(parts):
            users = max(50, round(n / parts / 12))
            cfg = SyntheticConfig(
                num_users=users, num_items=max(40, round(0.75 * users)), with_text=False, seed=b
            )
            d = generate_synthetic(cfg)
            rows = zip(
                d.user_ids[d.user].tolist(),
                d.item_ids[d.item].tolist(),
                d.rating.tolist(),
                d.timestamp.tolist(),
            )
            out.writelines(f"b{b}{u}\tb{b}{i}\t{r:g}\t{t}\n" for u, i, r, t in rows)


def run_size(n: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    path = folder / f"synthetic_{n}.inter"
    write_synthetic(n, path, block=args.block)
    row: dict[str, Any] = {"target_interactions": n}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        result, seconds, rss = measure(fn)
        row[name] = {"seconds": round(seconds, 4), "peak_rss_mib": round(rss, 1)}
        print(f"  {n:>9,} {name:<16} {seconds:9.3f} s {rss:9.1f} MiB", flush=True)
        return result

    data = stage("read", lambda: load_interactions(path, "recbole"))
    row["interactions"] = len(data)
    data = stage("dedup_kcore", lambda: kcore_filter(deduplicate(data, "first"), 5))
    split = stage("split", lambda: split_interactions(data, "ratio-80-20"))
    fit_rows = split.fit
    topics = stand_in_topics(fit_rows, args.topics)
    artifacts = {"topics": topics}
    bundle = stage(
        "graph_build", lambda: build_all(GRAPHS, fit_rows, artifacts=artifacts, cache_dir=None)
    )
    parts = {name: bundle[name] for name in bundle.parts}
    inputs = build_model_inputs(fit_rows, max_len=50, graphs=parts)
    cfg = TrainConfig(
        epochs=1,
        batch_size=1024,
        lr=1e-3,
        device="cpu",
        progress=False,
        threads=args.threads,
        patience=0,
    )
    for name in MODEL_NAMES:
        model = build(name, fit_rows)
        steps = epoch_steps(model, inputs, cfg)
        run = min(steps, args.max_steps) if args.max_steps else steps
        stage(f"epoch_{name}", lambda m=model: one_epoch(m, inputs, cfg, args.max_steps))
        # A cut epoch is scaled to the full one (steps cost alike: each batch is one optimiser
        # step over the same graph and tables); "measured_seconds" keeps what ran.
        record = row[f"epoch_{name}"]
        record.update(
            steps=steps,
            measured_steps=run,
            measured_seconds=record["seconds"],
            seconds=round(record["seconds"] * steps / run, 4),
        )

    model = MODELS.get("lightgcn")(
        from_dict(MODELS.get("lightgcn").config_class, {"embedding_dim": 64}, where="lightgcn"),
        fit_rows.num_users,
        fit_rows.num_items,
    )
    task = make_eval_task(split, "valid")
    if args.eval_users and task.num_users > args.eval_users:
        from mmseq.train.distributed import shard_task  # a contiguous block of users

        task = shard_task(task, -(-task.num_users // args.eval_users), 0)
    stage("eval", lambda: evaluate(model, inputs, task, batch_size=1024))
    row.update(users=data.num_users, items=data.num_items, eval_users=int(task.num_users))
    return row


def growth(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x) (None with fewer than two points)."""
    if len(xs) < 2:
        return None
    slope = np.polyfit(np.log(xs), np.log(np.maximum(ys, 1e-6)), 1)[0]
    return round(float(slope), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--block",
        type=int,
        default=100_000,
        help="interactions per generator block (default 1e5; see write_synthetic)",
    )
    parser.add_argument("--topics", type=int, default=50, help="stand-in topics K (default 50)")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=0,
        help="train at most this many batches per epoch stage and scale the time "
        "to the full epoch (0 = whole epochs)",
    )
    parser.add_argument(
        "--eval-users",
        type=int,
        default=20_000,
        help="users scored in the eval stage at most (0 = all)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print("warm-up (not recorded): first calls load kernels and allocators", flush=True)
        run_size(2_000, args, Path(tmp))
        for n in args.sizes:
            rows.append(run_size(n, args, Path(tmp)))
    stages = ["read", "dedup_kcore", "split", "graph_build", *(f"epoch_{m}" for m in MODEL_NAMES)]
    inter = [r["interactions"] for r in rows]
    exponents = {s: growth(inter, [r[s]["seconds"] for r in rows]) for s in stages}
    exponents["eval_vs_users_x_items"] = growth(
        [r["eval_users"] * r["items"] for r in rows], [r["eval"]["seconds"] for r in rows]
    )
    print("\n| stage | " + " | ".join(f"{n:,} s / MiB" for n in inter) + " | exponent |")
    print("|---|" + "---|" * (len(rows) + 1))
    for s in [*stages, "eval"]:
        cells = [f"{r[s]['seconds']:.3f} / {r[s]['peak_rss_mib']:.0f}" for r in rows]
        key = "eval_vs_users_x_items" if s == "eval" else s
        print(f"| {s} | " + " | ".join(cells) + f" | {exponents[key]} |")
    print(
        json.dumps(
            {
                "sizes": rows,
                "exponents": exponents,
                "threads": args.threads,
                "torch": torch.__version__,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
