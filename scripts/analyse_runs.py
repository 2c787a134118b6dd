"""Diagnostics of finished runs: test NDCG@10 by user history length, and the gates over training.

    python scripts/analyse_runs.py runs/sasrec_mi runs/sdmtmp_mi runs/fused_mi --labels SASRec \
        SD-MTMP fused
    python scripts/analyse_runs.py runs/sasrec_mi runs/text_mi --by item-count

With ``--by item-count`` the unit is the test TARGET instead of the user: each (user, test item)
pair is a hit when the item ranks in the user's top ``--k`` (full ranking, history masked,
pessimistic ties: the protocol's own ranks), and the pairs are grouped by how many interactions
the target item has in the data the test stage trains on (fit + valid). It shows where in the
item-popularity range a model gains or loses.

Each argument is a run directory written by ``mmseq train`` (``model.pt`` + ``results.json``).
The model is reloaded with its saved config and weights, scored per user on the TEST part with the
same protocol as training, and the users are grouped by the length of the history the test stage
sees (fit + valid interactions). The table is a diagnostic of where a model wins or loses; no
choice may be made from it (choices are made on validation, scripts/tune.py). The gate terms the
models log (``alpha_*`` in the per-epoch loss) are printed at the first, the chosen and the last
epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from mmseq.eval.protocol import evaluate_per_user, make_eval_task, target_ranks
from mmseq.runs import load_trained_run

#: Upper ends (inclusive) of the history-length buckets; the last bucket is open.
BUCKETS = (5, 7, 10, 15)
#: Upper ends (inclusive) of the target items' training-count buckets; the last bucket is open.
ITEM_BUCKETS = (10, 20, 40, 80)


def bucket_labels(edges: tuple[int, ...] = BUCKETS) -> list[str]:
    """``["<=5", "6-7", ..., ">15"]`` for the bucket edges."""
    labels, low = [], 1
    for high in edges:
        labels.append(f"<={high}" if low == 1 else f"{low}-{high}")
        low = high + 1
    return [*labels, f">{edges[-1]}"]


def _load_test(run_dir: Path) -> tuple[Any, Any, Any, int]:
    """``(model, test inputs, test task, users)`` of a finished run (:func:`load_trained_run`)."""
    run = load_trained_run(run_dir, device="cpu")
    task = make_eval_task(
        run.prepared.split, "test", ks=run.cfg.ks or None, seed=run.cfg.split.seed
    )
    return run.model, run.test_inputs, task, run.prepared.data.num_users


def per_user_test(run_dir: Path, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(history length (U,), metric (U,))`` of a run's test users."""
    model, test_inputs, task, num_users = _load_test(run_dir)
    values = evaluate_per_user(model, test_inputs, task)[metric]  # (U,)
    lengths = torch.bincount(test_inputs.user, minlength=num_users)[task.users]
    return lengths.cpu(), values


def per_target_test(run_dir: Path, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(training count of each test target's item (T,), hit@k of the target (T,) bool)``.

    Full ranking only (``ratio-80-20`` / ``loo-full``): the protocol's own ranks
    (:func:`~mmseq.eval.protocol.target_ranks`: history masked, pessimistic ties).
    """
    model, inputs, task, _ = _load_test(run_dir)
    if task.candidates is not None:
        raise SystemExit(f"{run_dir}: --by item-count needs a full-ranking protocol "
                         f"(got {task.protocol})")
    item_count = torch.bincount(inputs.item.cpu(), minlength=task.num_items)  # (I,)
    return item_count[task.target_indices], target_ranks(model, inputs, task) < k


def breakdown(
    lengths: torch.Tensor, values: torch.Tensor, edges: tuple[int, ...] = BUCKETS
) -> list[tuple[int, float]]:
    """``(rows, mean value)`` per bucket of ``lengths`` (upper ``edges`` inclusive, last open).

    Shapes: lengths (N,) int, values (N,) float or bool.
    """
    bucket = torch.bucketize(lengths, torch.tensor(edges))  # (N,) 0..len(edges)
    values = values.double()
    out = []
    for b in range(len(edges) + 1):  # a loop over buckets, not users
        hit = bucket == b
        out.append((int(hit.sum()), float(values[hit].mean()) if hit.any() else float("nan")))
    return out


def gates(run_dir: Path) -> str:
    """The ``alpha_*`` loss terms at the first, chosen and last epochs, as one line."""
    results = json.loads((run_dir / "results.json").read_text())
    extra = results.get("extra", results)
    history, best = extra["history"], extra["best_epoch"]
    parts = []
    for name, entry in (
        ("first", history[0]),
        ("chosen", history[max(best, 1) - 1]),
        ("last", history[-1]),
    ):
        alphas = {k: round(float(v), 3) for k, v in entry["loss"].items() if k.startswith("alpha")}
        if alphas:
            parts.append(f"{name} (epoch {entry['epoch']}): {alphas}")
    return "; ".join(parts) or "no gates logged"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (model.pt + results)")
    parser.add_argument("--labels", nargs="*", default=None, help="one label per run")
    parser.add_argument("--metric", default="ndcg@10", help="per-user metric (--by history)")
    parser.add_argument(
        "--by",
        choices=("history", "item-count"),
        default="history",
        help="group users by history length, or test targets by their item's training count",
    )
    parser.add_argument("--k", type=int, default=10, help="cut-off of the hit (--by item-count)")
    args = parser.parse_args(argv)
    labels = args.labels or [p.name for p in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"expected {len(args.runs)} labels (got {len(labels)})")
    by_item = args.by == "item-count"
    edges = ITEM_BUCKETS if by_item else BUCKETS
    prefix = "item count" if by_item else "hist"
    header = ["model", "all", *(f"{prefix} {b}" for b in bucket_labels(edges))]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    counts: list[int] = []
    for label, run in zip(labels, args.runs):
        if by_item:
            keys, values = per_target_test(run, args.k)
        else:
            keys, values = per_user_test(run, args.metric)
        rows = breakdown(keys, values, edges)
        counts = [n for n, _ in rows]
        cells = [label, f"{float(values.double().mean()):.4f}", *(f"{v:.4f}" for _, v in rows)]
        lines.append("| " + " | ".join(cells) + " |")
        if not by_item:
            print(f"{label}: gates {gates(run)}", file=sys.stderr)
    unit = "test targets" if by_item else "users"
    lines.append(f"| {unit} | " + " | ".join(map(str, [sum(counts), *counts])) + " |")
    if by_item:
        print(f"Test HR@{args.k} per (user, target) pair by the target item's interactions in "
              "fit + valid")
    else:
        print(f"Test {args.metric} by history length (fit + valid interactions)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
