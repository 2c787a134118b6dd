"""Ranking many targets per user (``ratio-80-20``) against a plain top-k, in one process.

    python scripts/bench_ranking.py [--users 1024] [--items 3706] [--targets 33,100] [--k 20]

On random scores (B, C) with 20% of each row masked to ``-inf`` (history) and ``--targets``
distinct target columns per row, times (medians of ``--repeats`` runs after a warm-up, the paths
alternating):

* ``topk``: ``scores.topk(k)``, the floor;
* ``capped``: ``pessimistic_rank(..., cap=k)`` (what the evaluator runs when the metrics are
  HR/NDCG/Recall at cut-offs <= k: ranks exact up to k);
* ``exact``: ``pessimistic_rank(...)`` without a cap (every target compared with its whole row,
  the evaluator's path before; also what it still runs when MRR is asked for).

It checks ``capped == min(exact, k)``. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mmseq.eval.metrics import pessimistic_rank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1024)
    parser.add_argument("--items", type=int, default=3706, help="MovieLens-1M has 3,706 items")
    parser.add_argument("--targets", default="33,100")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    b, c = args.users, args.items
    scores = torch.randn(b, c, generator=gen)
    scores[torch.rand(b, c, generator=gen) < 0.2] = float("-inf")
    out = {
        "bench": "ranking_many_targets",
        "users": b,
        "items": c,
        "k": args.k,
        "threads": args.threads,
        "repeats": args.repeats,
        "runs": [],
    }
    for per_user in (int(t) for t in args.targets.split(",")):
        cols = torch.rand(b, c, generator=gen).argsort(1)[:, :per_user].sort(1).values.flatten()
        rows = torch.arange(b).repeat_interleave(per_user)
        exact = pessimistic_rank(scores, rows, cols)
        capped = pessimistic_rank(scores, rows, cols, cap=args.k)
        same = bool(torch.equal(capped, exact.clamp_max(args.k)))
        steps = {
            "topk": lambda: scores.topk(args.k, dim=1),
            "capped": lambda r=rows, q=cols: pessimistic_rank(scores, r, q, cap=args.k),
            "exact": lambda r=rows, q=cols: pessimistic_rank(scores, r, q),
        }
        times: dict[str, list[float]] = {k: [] for k in steps}
        for i in range(args.repeats + 1):  # the first round warms up
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                if i:
                    times[name].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        run = {
            "targets_per_user": per_user,
            "topk_ms": round(med["topk"] * 1e3, 2),
            "capped_ms": round(med["capped"] * 1e3, 2),
            "exact_ms": round(med["exact"] * 1e3, 2),
            "capped_over_topk": round(med["capped"] / med["topk"], 3),
            "exact_over_topk": round(med["exact"] / med["topk"], 1),
            "capped_equals_exact_capped": same,
        }
        print(
            f"{b} users x {c} items, {per_user} targets/user, k={args.k}: topk "
            f"{run['topk_ms']} ms; capped {run['capped_ms']} ms "
            f"({run['capped_over_topk']}x); exact {run['exact_ms']} ms "
            f"({run['exact_over_topk']}x); capped == min(exact, k): {same}"
        )
        out["runs"].append(run)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
