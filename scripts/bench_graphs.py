"""Time one forward+backward of the graph layers against a bare ``torch.sparse.mm`` floor.

    python scripts/bench_graphs.py [--reps 20] [--big-reps 5] [--scale 100] [--threads 1]

Graphs: the Musical Instruments 5-core rating graph (all 10,261 reviews: a speed test, not an
experiment, so no split) with a SYNTHESISED user-topic hypergraph (k = 50 topics, about 5 topics
per user: 1 + Poisson(4), sentence counts 1 + Poisson(1)), because the topic stage is built in
parallel; and a synthetic pair ``--scale`` times larger (users, items, interactions and
memberships; k stays 50). Layers: RatingGCNConv and TopicHypergraphConv (d = 64) on each backend.
Floor: the same sparse products as bare ``torch.sparse.mm`` on a prebuilt CSR with autograd's
own backward (one product for the GCN; two, H^T then H, for the hypergraph). "cold" is the first
call, which also builds the cached operator. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.nn import HypergraphConv

from graphs.rating import RatingGraphBuilder
from graphs.topic_hypergraph import UserTopicHypergraphBuilder
from mmseq.data.graph_bundle import GraphPart
from mmseq.data.schema import Interactions, TopicAssignments
from mmseq.nn.backends import get_backend, hypergraph_norm
from mmseq.nn.backends.pyg import to_csr
from mmseq.nn.hypergraph_conv import TopicHypergraphConv
from mmseq.nn.rating_conv import RatingGCNConv
from mmseq.optional import WITH_DGL

REPO = Path(__file__).resolve().parents[1]
MI = (
    REPO.parent
    / "shared"
    / "data"
    / "amazon2014-musical-instruments-5core"
    / "reviews_Musical_Instruments_5.json.gz"
)
K_TOPICS, MEAN_TOPICS, DIM = 50, 5, 64


def load_mi(path: Path) -> tuple[Interactions, str]:
    """Musical Instruments via the data layer's reader, else a minimal JSON-lines parse."""
    try:
        from mmseq.data.readers import load_interactions

        return load_interactions(path), "mmseq.data.readers.load_interactions"
    except ImportError:
        pass
    users, items, ratings, times = [], [], [], []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            users.append(row["reviewerID"])
            items.append(row["asin"])
            ratings.append(row["overall"])
            times.append(row["unixReviewTime"])
    user_ids, user = np.unique(np.array(users, dtype=object), return_inverse=True)
    item_ids, item = np.unique(np.array(items, dtype=object), return_inverse=True)
    data = Interactions(
        user=user.astype(np.int64),
        item=item.astype(np.int64),
        rating=np.array(ratings, np.float32),
        timestamp=np.array(times, np.int64),
        user_ids=user_ids,
        item_ids=item_ids,
    )
    return data, "gzip JSON lines parsed in this script"


def synthetic_interactions(
    num_users: int, num_items: int, rows: int, rng: np.random.Generator
) -> Interactions:
    user = rng.integers(0, num_users, rows)
    item = rng.integers(0, num_items, rows)
    return Interactions(
        user=user,
        item=item,
        rating=rng.integers(1, 6, rows).astype(np.float32),
        timestamp=np.arange(rows, dtype=np.int64),
        user_ids=np.arange(num_users).astype(str).astype(object),
        item_ids=np.arange(num_items).astype(str).astype(object),
    )


def synthetic_topics(num_users: int, num_items: int, rng: np.random.Generator) -> TopicAssignments:
    """k = 50 topics; each user joins 1 + Poisson(4) distinct topics (mean 5)."""
    per_user = np.minimum(1 + rng.poisson(MEAN_TOPICS - 1, num_users), K_TOPICS)
    ranks = np.argsort(rng.random((num_users, K_TOPICS)), axis=1)  # random topic order per user
    chosen = np.arange(K_TOPICS)[None, :] < per_user[:, None]
    rows, slot = np.nonzero(chosen)
    cols = ranks[rows, slot]
    counts = (1 + rng.poisson(1.0, len(rows))).astype(np.float32)
    user_topic = sp.csr_matrix((counts, (rows, cols)), shape=(num_users, K_TOPICS))
    item_topic = sp.csr_matrix((num_items, K_TOPICS), dtype=np.float32)
    emb = rng.standard_normal((K_TOPICS, 384)).astype(np.float32)
    return TopicAssignments(emb, user_topic, item_topic, tuple(f"t{g}" for g in range(K_TOPICS)))


def timed(step: Callable[[], None], reps: int) -> tuple[float, float]:
    """(cold ms, median warm ms) of ``step``."""
    start = time.perf_counter()
    step()
    cold = (time.perf_counter() - start) * 1e3
    warm = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        warm.append((time.perf_counter() - start) * 1e3)
    return cold, statistics.median(warm)


def bench_gcn(part: GraphPart, backends: list[str], reps: int, gen: torch.Generator) -> dict:
    n = part.shape[0]
    x = torch.randn(n, DIM, generator=gen, requires_grad=True)
    grad = torch.randn(n, DIM, generator=gen)  # a dense upstream gradient, as in training
    out: dict = {"nodes": n, "nnz": part.nnz}
    adj_t = to_csr(part.edge_index[1], part.edge_index[0], part.edge_weight, part.shape)

    def floor() -> None:
        torch.sparse.mm(adj_t, x).backward(grad)

    out["floor_ms"] = timed(floor, reps)[1]
    for name in backends:
        get_backend(name).clear_cache()
        conv = RatingGCNConv(DIM, DIM, backend=name)

        def step(conv: RatingGCNConv = conv) -> None:
            conv(x, part.edge_index, part.edge_weight).backward(grad)

        cold, warm = timed(step, reps)
        out[f"{name}_cold_ms"], out[f"{name}_ms"] = cold, warm
        out[f"{name}_ratio"] = warm / out["floor_ms"]
        if name == "pyg":  # the layer's dense part alone: W1 and W2 on (N, d), no propagation

            def dense(conv: RatingGCNConv = conv) -> None:
                (conv.lin_aggregate(x) + conv.lin_interaction(x * x)).backward(grad)

            out["dense_part_ms"] = timed(dense, reps)[1]
    return out


def bench_hypergraph(part: GraphPart, backends: list[str], reps: int, gen: torch.Generator) -> dict:
    n, m = part.shape
    x = torch.randn(n, DIM, generator=gen, requires_grad=True)
    grad = torch.randn(n, DIM, generator=gen)  # a dense upstream gradient, as in training
    out: dict = {"nodes": n, "hyperedges": m, "nnz": part.nnz}
    node, edge = part.edge_index
    to_edge, to_node = hypergraph_norm(
        part.edge_index, num_nodes=n, num_hyperedges=m, incidence_weight=part.edge_weight
    )
    gather, scatter = to_csr(edge, node, to_edge, (m, n)), to_csr(node, edge, to_node, (n, m))

    def floor() -> None:
        torch.sparse.mm(scatter, torch.sparse.mm(gather, x)).backward(grad)

    out["floor_ms"] = timed(floor, reps)[1]
    for name in backends:
        get_backend(name).clear_cache()
        conv = TopicHypergraphConv(DIM, DIM, backend=name)

        def step(conv: TopicHypergraphConv = conv) -> None:
            conv(x, part.edge_index, incidence_weight=part.edge_weight, num_hyperedges=m).backward(
                grad
            )

        cold, warm = timed(step, reps)
        out[f"{name}_cold_ms"], out[f"{name}_ms"] = cold, warm
        out[f"{name}_ratio"] = warm / out["floor_ms"]
    pyg_conv = HypergraphConv(DIM, DIM)  # reference: PyG's own edge_index path
    out["pyg_HypergraphConv_ms"] = timed(
        lambda: pyg_conv(x, part.edge_index, num_edges=m).backward(grad), reps
    )[1]
    return out


def _rounded(obj: object) -> object:
    if isinstance(obj, float):
        return round(obj, 3)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=MI)
    parser.add_argument("--reps", type=int, default=20, help="timed repetitions on MI")
    parser.add_argument("--big-reps", type=int, default=5, help="timed repetitions, large graph")
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(args.threads)
    rng, gen = np.random.default_rng(args.seed), torch.Generator().manual_seed(args.seed)
    backends = ["pyg"] + (["dgl"] if WITH_DGL else [])
    print(f"threads {args.threads}; backends {backends}" + ("" if WITH_DGL else " (DGL missing)"))

    data, how = load_mi(args.data)
    print(
        f"Musical Instruments: {len(data)} rows, {data.num_users} users, {data.num_items} items "
        f"(loaded with {how}; all rows, no split: a speed test)"
    )
    print(
        f"NOTE: user-topic hypergraphs are SYNTHESISED (k={K_TOPICS}, mean {MEAN_TOPICS} "
        "topics/user), not from the topic stage"
    )
    big = synthetic_interactions(
        args.scale * data.num_users, args.scale * data.num_items, args.scale * len(data), rng
    )
    results: dict = {
        "threads": args.threads,
        "dim": DIM,
        "k_topics": K_TOPICS,
        "topics": "synthetic",
        "scale": args.scale,
    }
    for label, table, reps in (
        ("musical_instruments", data, args.reps),
        (f"synthetic_x{args.scale}", big, args.big_reps),
    ):
        rating = RatingGraphBuilder().build(table)
        topics = synthetic_topics(table.num_users, table.num_items, rng)
        hyper = UserTopicHypergraphBuilder().build(table, {"topics": topics})
        results[label] = {
            "gcn": bench_gcn(rating, backends, reps, gen),
            "hypergraph": bench_hypergraph(hyper, backends, reps, gen),
            "reps": reps,
        }
        for layer in ("gcn", "hypergraph"):
            r = results[label][layer]
            cells = "  ".join(
                f"{b} {r[f'{b}_ms']:.2f} ms (x{r[f'{b}_ratio']:.2f}, cold {r[f'{b}_cold_ms']:.1f})"
                for b in backends
            )
            print(
                f"{label:22s} {layer:10s} nnz {r['nnz']:>9d}  floor {r['floor_ms']:.2f} ms  {cells}"
            )
        print(
            f"{'':22s} GCN dense part alone (2 Linear on (N, d)) "
            f"{results[label]['gcn']['dense_part_ms']:.2f} ms; PyG HypergraphConv "
            f"(edge_index path) {results[label]['hypergraph']['pyg_HypergraphConv_ms']:.2f} ms"
        )
    print(json.dumps(_rounded(results), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
