"""Measured cost of one training epoch (+ one validation round) of a config, without training it.

    python scripts/epoch_cost.py --table 60_distill_beauty --threads 1  # every row of a table
    python scripts/epoch_cost.py --config configs/experiments/toys_loo.yaml --set train.epochs=1

Per row: the median wall time of ``--batches`` training steps (forward, backward, Adam step, batch
construction included) after one warm-up step, times the number of batches in an epoch, plus one
full validation round timed once. Runs one row after another in this process, so the ratios
between rows are comparable; absolute seconds depend on the machine's load (say which in the
docs). The last line is JSON: ``{label: {"batches": n, "s_per_batch": ..., "s_epoch_train": ...,
"s_valid": ..., "s_epoch": ...}}``. ``--alternate R`` instead times the rows' training steps in
turn for R rounds in one process (medians), the fair way to compare rows on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from mmseq.config import load_experiment
from mmseq.data.prepare import make_inputs, prepare_data
from mmseq.eval.protocol import evaluate, make_eval_task
from mmseq.models.build import build_model
from mmseq.seed import make_generator, seed_everything
from mmseq.train.host_memory import reuse_freed_memory
from mmseq.train.optim import build_optimizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def epoch_cost(config: str, overrides: list[str], batches: int) -> dict[str, float]:
    """Seconds per training batch and per validation round of one config (CPU, this process)."""
    cfg = load_experiment(REPO / config, [*overrides, "train.progress=false"])
    if cfg.train.reuse_memory:  # as run_experiment does
        reuse_freed_memory()
    seed_everything(cfg.seed)
    prepared = prepare_data(cfg)
    model = build_model(cfg, prepared.data.num_users, prepared.data.num_items)
    if model.requires_graphs:
        raise SystemExit(f"{config}: models with graphs are not measured here")
    fit_inputs, _ = make_inputs(cfg, prepared, {})
    if not model.trainable:
        return {
            "batches": 0,
            "s_per_batch": 0.0,
            "s_epoch_train": 0.0,
            "s_valid": 0.0,
            "s_epoch": 0.0,
        }
    optimizer = build_optimizer(model, cfg.train)
    generator = make_generator(cfg.seed, fit_inputs.device)
    model.train()
    n_batches = sum(1 for _ in model.training_batches(fit_inputs, cfg.train.batch_size, generator))
    times = []
    stream = model.training_batches(fit_inputs, cfg.train.batch_size, generator)
    for _ in range(min(batches + 1, n_batches)):
        start = time.perf_counter()
        batch = next(stream)
        loss = model.loss(batch, fit_inputs).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    per_batch = statistics.median(times[1:] or times)
    task = make_eval_task(prepared.split, "valid", ks=cfg.ks or None, seed=cfg.split.seed)
    start = time.perf_counter()
    evaluate(model, fit_inputs, task, batch_size=cfg.train.eval_batch_size)
    valid = time.perf_counter() - start
    return {
        "batches": n_batches,
        "s_per_batch": round(per_batch, 4),
        "s_epoch_train": round(per_batch * n_batches, 1),
        "s_valid": round(valid, 1),
        "s_epoch": round(per_batch * n_batches + valid, 1),
    }


def alternating_step_times(jobs: list[tuple[str, str, list[str]]], rounds: int) -> dict:
    """Median training-step seconds of each job, the jobs' steps taken in turn (round-robin), so
    that the machine's load changes hit every job alike: the ratios are the trustworthy part."""
    states = []
    for _, config, overrides in jobs:
        cfg = load_experiment(REPO / config, [*overrides, "train.progress=false"])
        seed_everything(cfg.seed)
        prepared = prepare_data(cfg)
        model = build_model(cfg, prepared.data.num_users, prepared.data.num_items)
        inputs, _ = make_inputs(cfg, prepared, {})
        gen = make_generator(cfg.seed, inputs.device)
        model.train()
        states.append(
            (
                model,
                inputs,
                build_optimizer(model, cfg.train),
                model.training_batches(inputs, cfg.train.batch_size, gen),
            )
        )
    times: list[list[float]] = [[] for _ in jobs]
    for _ in range(rounds + 1):  # the first round warms up
        for j, (model, inputs, optimizer, stream) in enumerate(states):
            start = time.perf_counter()
            loss = model.loss(next(stream), inputs).total
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times[j].append(time.perf_counter() - start)
    return {label: round(statistics.median(t[1:]), 4) for (label, _, _), t in zip(jobs, times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", nargs="*", default=[], help="table names (configs/results)")
    parser.add_argument("--config", help="one experiment config instead of a table")
    parser.add_argument("--set", action="append", default=[], help="key=value override")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", nargs="*", default=[], help="only these row labels")
    parser.add_argument(
        "--alternate",
        type=int,
        default=0,
        help="instead: median step seconds over this many round-robin rounds of the rows",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    jobs: list[tuple[str, str, list[str]]] = []
    if args.config:
        jobs.append((args.config, args.config, list(args.set)))
    if args.table:
        from make_results import load_tables  # noqa: PLC0415 - scripts/ is on sys.path

        tables = load_tables()
        for name in args.table:
            spec = tables[name]
            for row in spec.rows:
                if not args.rows or row.label in args.rows:
                    jobs.append((f"{name}/{row.label}", spec.config, [*row.set, *args.set]))
    if args.alternate:
        steps = alternating_step_times(jobs, args.alternate)
        print(json.dumps({"s_per_step_alternating": steps}))
        return 0
    out = {}
    for label, config, overrides in jobs:
        out[label] = epoch_cost(config, overrides, args.batches)
        print(label, out[label], flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
