"""Training steps with glibc's default malloc against ``train.reuse_memory`` (freed memory kept).

    python scripts/bench_host_memory.py [--repeats 3] [--steps 6] [--only "PeerRec Toys" ...]

The setting is process-wide and cannot be undone, so each measurement is a fresh child process:
for every row, ``--repeats`` rounds of (default, reuse) children back to back. A child builds the
row's model at its table settings, runs 2 warm-up training steps and times ``--steps`` more (batch
construction, forward, backward, Adam step, one torch thread), and reports the seconds per step,
its peak RSS and the hex of the last losses. Printed: medians per row, the ratio default / reuse,
whether every child of the row saw the same losses (bit for bit), and the last line as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: (label, experiment config, overrides): rows of the results tables, at their settings.
ROWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("PeerRec Toys (61 table)", "configs/experiments/peerrec_toys_budget.yaml",
     ("model.params.stage1_epochs=50",)),
    ("SASRec full CE Toys (60 table)", "configs/experiments/s4rec_toys.yaml",
     ("model.name=sasrec", "model.params={}", "train.batch_size=256")),
    ("SASRec sampled softmax Toys (60 table)", "configs/experiments/s4rec_toys.yaml",
     ("model.name=sasrec", "model.params={loss: sampled, num_negatives: 256}",
      "train.batch_size=256")),
    ("BERT4Rec Toys (60 table)", "configs/experiments/s4rec_toys.yaml",
     ("model.name=bert4rec", "model.params={}", "train.batch_size=256")),
)

CHILD = r"""
import json, resource, sys, time
mode, config, steps, overrides = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
import torch
from mmseq.config import load_experiment
from mmseq.data.prepare import make_inputs, prepare_data
from mmseq.models.build import build_model
from mmseq.seed import make_generator, seed_everything
from mmseq.train.host_memory import reuse_freed_memory
from mmseq.train.optim import build_optimizer

if mode == "reuse" and not reuse_freed_memory():
    raise SystemExit("reuse_freed_memory() needs glibc")
torch.set_num_threads(1)
cfg = load_experiment(config, ["train.progress=false", *overrides])
seed_everything(cfg.seed)
prepared = prepare_data(cfg)
model = build_model(cfg, prepared.data.num_users, prepared.data.num_items)
inputs, _ = make_inputs(cfg, prepared, {})
optimizer = build_optimizer(model, cfg.train)
model.train()
generator = make_generator(cfg.seed, inputs.device)
batches = model.training_batches(inputs, cfg.train.batch_size, generator)
losses = []
def step():
    out = model.loss(next(batches), inputs)
    optimizer.zero_grad()
    out.total.backward()
    optimizer.step()
    losses.append(out.total.item().hex())
for _ in range(2):
    step()
start = time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"s_per_step": (time.perf_counter() - start) / steps,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "losses": losses}))
"""


def child(mode: str, config: str, overrides: tuple[str, ...], steps: int) -> dict:
    """One fresh process: ``mode`` 'default' or 'reuse'; returns its JSON report."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(REPO / config), str(steps), *overrides],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{config} ({mode}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--only", nargs="*", default=[], help="row labels (default: all)")
    args = parser.parse_args()
    out: dict = {"bench": "host_memory", "repeats": args.repeats, "steps": args.steps, "rows": {}}
    print("| row | s/step default | s/step reuse | speed-up | peak RSS MiB default / reuse "
          "| losses bit-identical |")
    print("|---|---|---|---|---|---|")
    for label, config, overrides in ROWS:
        if args.only and label not in args.only:
            continue
        runs: dict[str, list[dict]] = {"default": [], "reuse": []}
        for _ in range(args.repeats):
            for mode in runs:
                runs[mode].append(child(mode, config, overrides, args.steps))
        med = {m: statistics.median(r["s_per_step"] for r in v) for m, v in runs.items()}
        rss = {m: statistics.median(r["peak_rss_mib"] for r in v) for m, v in runs.items()}
        same = len({tuple(r["losses"]) for v in runs.values() for r in v}) == 1
        row = {"s_per_step": med, "peak_rss_mib": rss,
               "speedup": round(med["default"] / med["reuse"], 3), "bit_identical": same}
        out["rows"][label] = row
        print(f"| {label} | {med['default']:.4f} | {med['reuse']:.4f} | {row['speedup']:.2f}x | "
              f"{rss['default']:.0f} / {rss['reuse']:.0f} | {'yes' if same else 'NO'} |",
              flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
