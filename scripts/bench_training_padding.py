"""Training steps without padding against the padded batch, in one process.

    python scripts/bench_training_padding.py [--config configs/experiments/toys_loo.yaml]
        [--models sasrec,gru4rec,s4rec,emkd] [--batches 8] [--repeats 3]

For each model (default config, ``max_len`` from the experiment), the first ``--batches``
training batches of epoch 1 (batch 256) are run forward + backward twice, alternating:
``bucketed`` is the model as it is (SASRec, GRU4Rec, S4Rec: each batch encoded per length bucket;
EMKD: the columns that are padding in every row dropped), ``padded`` the same batches at the
full width (the path before). The loss difference is printed (eval mode, no dropout). Medians of
``--repeats`` after one warm-up; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch

import mmseq.models.gru4rec as gru4rec_module
import mmseq.models.s4rec as s4rec_module
import mmseq.models.sasrec as sasrec_module
from mmseq.config import load_experiment
from mmseq.data.prepare import make_inputs, prepare_data
from mmseq.models import MODELS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eval import rebase_data  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _plain_masked(encode: Any, tokens: torch.Tensor, labels: torch.Tensor) -> Any:
    h = encode(tokens)
    return h[..., labels >= 0, :], labels[labels >= 0]


def _plain_masked_and_last(encode: Any, tokens: torch.Tensor, labels: torch.Tensor) -> Any:
    h = encode(tokens)
    return h[..., labels >= 0, :], labels[labels >= 0], h[..., -1, :]


class Padded:
    """Inside the block, sequence models encode their training batches at the full width."""

    def __enter__(self) -> None:
        self.saved = [
            (m, n, getattr(m, n))
            for m in (sasrec_module, gru4rec_module, s4rec_module)
            for n in ("masked_states_by_length", "masked_and_last_states_by_length")
            if hasattr(m, n)
        ]
        for module, name, _ in self.saved:
            plain = _plain_masked_and_last if name.startswith("masked_and") else _plain_masked
            setattr(module, name, plain)

    def __exit__(self, *exc: object) -> None:
        for module, name, value in self.saved:
            setattr(module, name, value)


def pad_emkd(batch: dict[str, torch.Tensor], width: int) -> dict[str, torch.Tensor]:
    out = dict(batch)
    for key, fill in (("input", 0), ("views", 0), ("target", -100)):
        t = batch[key]
        out[key] = torch.cat([t.new_full((t.shape[0], width - t.shape[1]), fill), t], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs/experiments/toys_loo.yaml"))
    parser.add_argument("--models", default="sasrec,gru4rec,s4rec,emkd")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = rebase_data(load_experiment(args.config))
    prepared = prepare_data(cfg)
    inputs, _ = make_inputs(cfg, prepared, {})
    out: dict[str, Any] = {
        "bench": "training_padding",
        "config": args.config,
        "batches": args.batches,
        "threads": args.threads,
        "models": {},
    }
    for name in args.models.split(","):
        cls = MODELS.get(name)
        torch.manual_seed(0)
        model = cls(cls.config_class(), inputs.num_users, inputs.num_items)
        gen = torch.Generator().manual_seed(0)
        batches = []
        for batch in model.training_batches(inputs, 256, gen):
            batches.append(batch)
            if len(batches) == args.batches:
                break
        width = model.config.max_len
        padded_batches = [pad_emkd(b, width) for b in batches] if name == "emkd" else batches

        def run(bs: list, padded: bool, m: Any = model) -> float:
            total = 0.0
            with ExitStack() as stack:
                if padded:
                    stack.enter_context(Padded())
                for b in bs:
                    loss = m.loss(b, inputs).total
                    loss.backward()
                    total += float(loss.detach())
            m.zero_grad(set_to_none=True)
            return total

        model.eval()
        with torch.no_grad():
            fast = [float(model.loss(b, inputs).total) for b in batches]
            with Padded():
                slow = [float(model.loss(b, inputs).total) for b in padded_batches]
        diff = max(abs(a - b) for a, b in zip(fast, slow, strict=True))
        model.train()
        times: dict[str, list[float]] = {"bucketed": [], "padded": []}
        for i in range(args.repeats + 1):
            for key, bs, padded in (("bucketed", batches, False), ("padded", padded_batches, True)):
                start = time.perf_counter()
                run(bs, padded)
                if i:
                    times[key].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        fill = sum(int((b["input"] != 0).sum()) for b in padded_batches) / sum(
            b["input"][:, -width:].numel() for b in padded_batches
        )
        row = {
            "bucketed_s": round(med["bucketed"], 3),
            "padded_s": round(med["padded"], 3),
            "speedup": round(med["padded"] / med["bucketed"], 3),
            "fill": round(fill, 3),
            "max_abs_loss_diff_eval": diff,
        }
        print(
            f"{name:8s} {args.batches} batches fwd+bwd: bucketed {row['bucketed_s']} s, padded "
            f"{row['padded_s']} s ({row['speedup']}x); {fill:.0%} of positions are items; "
            f"max |loss diff| (eval) {diff:.1e}"
        )
        out["models"][name] = row
    print(json.dumps(out))


if __name__ == "__main__":
    main()
