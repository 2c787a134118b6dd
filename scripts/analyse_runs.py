"""Diagnostics of finished runs: test NDCG@10 by user history length, and the gates over training.

    python scripts/analyse_runs.py runs/sasrec_mi runs/sdmtmp_mi runs/fused_mi --labels SASRec \
        SD-MTMP fused

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
import dataclasses
import json
import sys
from pathlib import Path

import torch

from mmseq.config import ExperimentConfig, from_dict
from mmseq.data.prepare import load_graph_parts, make_inputs, prepare_data
from mmseq.eval.protocol import evaluate_per_user, make_eval_task
from mmseq.models.build import build_model
from mmseq.seed import seed_everything

#: Upper ends (inclusive) of the history-length buckets; the last bucket is open.
BUCKETS = (5, 7, 10, 15)


def bucket_labels(edges: tuple[int, ...] = BUCKETS) -> list[str]:
    """``["<=5", "6-7", ..., ">15"]`` for the bucket edges."""
    labels, low = [], 1
    for high in edges:
        labels.append(f"<={high}" if low == 1 else f"{low}-{high}")
        low = high + 1
    return [*labels, f">{edges[-1]}"]


def per_user_test(run_dir: Path, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(history length (U,), metric (U,))`` of a run's test users."""
    state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    cfg = from_dict(ExperimentConfig, state["config"], where=str(run_dir / "model.pt"))
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, progress=False))
    seed_everything(cfg.seed)
    prepared = prepare_data(cfg)
    model = build_model(cfg, prepared.data.num_users, prepared.data.num_items)
    model.load_state_dict(state["state_dict"])
    fit_inputs, test_inputs = make_inputs(
        cfg, prepared, load_graph_parts(cfg, prepared.split, model.requires_graphs)
    )
    if not model.trainable:
        model.fit_closed_form(fit_inputs)
    task = make_eval_task(prepared.split, "test", ks=cfg.ks or None, seed=cfg.split.seed)
    values = evaluate_per_user(model, test_inputs, task)[metric]  # (U,)
    lengths = torch.bincount(test_inputs.user, minlength=prepared.data.num_users)[task.users]
    return lengths.cpu(), values


def breakdown(lengths: torch.Tensor, values: torch.Tensor) -> list[tuple[int, float]]:
    """``(users, mean metric)`` per bucket of :data:`BUCKETS` (history length, inclusive)."""
    bucket = torch.bucketize(lengths, torch.tensor(BUCKETS))  # (U,) 0..len(BUCKETS)
    out = []
    for b in range(len(BUCKETS) + 1):  # a loop over buckets, not users
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
    parser.add_argument("--metric", default="ndcg@10")
    args = parser.parse_args(argv)
    labels = args.labels or [p.name for p in args.runs]
    if len(labels) != len(args.runs):
        parser.error(f"expected {len(args.runs)} labels (got {len(labels)})")
    header = ["model", "all", *(f"hist {b}" for b in bucket_labels())]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    counts: list[int] = []
    for label, run in zip(labels, args.runs):
        lengths, values = per_user_test(run, args.metric)
        rows = breakdown(lengths, values)
        counts = [n for n, _ in rows]
        cells = [label, f"{float(values.mean()):.4f}", *(f"{v:.4f}" for _, v in rows)]
        lines.append("| " + " | ".join(cells) + " |")
        print(f"{label}: gates {gates(run)}", file=sys.stderr)
    lines.append("| users | " + " | ".join(map(str, [sum(counts), *counts])) + " |")
    print(f"Test {args.metric} by history length (fit + valid interactions)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
