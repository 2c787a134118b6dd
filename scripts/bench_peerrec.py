"""Speed of PeerRec's batched peers against a Python loop over peers, in one process.

    python scripts/bench_peerrec.py --peers 2 --batch 256 --max-len 50 --items 3646 --threads 1

Both paths compute the same stage-1 loss on the same masked batch (checked: max |logit diff|):
``vectorised`` is ``PeerRec.peer_logits`` (stacked weights, one batched pass); ``looped`` runs the
shared embedding once, then each peer as its own mmseq ``TransformerEncoder`` in a Python loop,
then the shared head (``mmseq.models.peerrec_export.looped_peer_logits``). Times are medians of
forward + backward over ``--repeats`` runs after ``--warmup``, the two paths alternating.
The last line is JSON.

    python scripts/bench_peerrec.py --windows configs/experiments/peerrec_lastfm.yaml --threads 1

times instead the length buckets (``mmseq.nn.padding``) on a data set's real training windows:
``bucketed`` is ``PeerRec.peer_logits`` (each bucket of rows at its own width), ``padded`` encodes
the batch at full width and reads the masked positions; same stage-1 loss, same batches (the first
``--batches`` of epoch 1), forward + backward, alternating.

    python scripts/bench_peerrec.py --loss-neg --masked 2500 --items 3646 --threads 1

times stage 2's ``L_neg`` kernel: ``weighted_log_one_minus_softmax`` (closed-form gradient)
against autograd through ``-(w * log_one_minus_softmax(z)).sum(-1)`` on random logits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mmseq.config import load_experiment
from mmseq.data.sampling import cloze_mask
from mmseq.losses.peer import (
    log_one_minus_softmax,
    mutual_distillation_loss,
    weighted_log_one_minus_softmax,
)
from mmseq.models.peerrec import PeerRec, PeerRecConfig
from mmseq.models.peerrec_export import export_peer_encoders, looped_peer_logits


def _interleaved_medians(steps, warmup: int, repeats: int, device: torch.device
                         ) -> list[float]:
    """Median seconds of each step, the steps alternating so that load changes hit both."""
    times: list[list[float]] = [[] for _ in steps]
    for i in range(warmup + repeats):
        for k, step in enumerate(steps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times[k].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def bench_windows(args: argparse.Namespace) -> None:
    """Bucketed against padded encoding on the real training windows of ``args.windows``."""
    from mmseq.data.prepare import make_inputs, prepare_data
    from mmseq.models.build import build_model

    cfg = load_experiment(args.windows)
    prepared = prepare_data(cfg)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, prepared.data.num_users, prepared.data.num_items)
    if not isinstance(model, PeerRec):
        raise SystemExit(f"--windows needs a PeerRec config (got model '{cfg.model.name}')")
    inputs, _ = make_inputs(cfg, prepared, {})
    gen = torch.Generator().manual_seed(cfg.seed)
    batches = list(model.training_batches(inputs, cfg.train.batch_size, gen))[: args.batches]
    rows = sum(int(b["input"].shape[0]) for b in batches)
    fill = sum(int((b["input"] != 0).sum()) for b in batches) / sum(b["input"].numel()
                                                                    for b in batches)

    def padded_logits(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        masked = batch["target"] >= 0
        return model.item_logits(model.encode(batch["input"])[:, masked]), batch["target"][masked]

    model.eval()
    with torch.no_grad():
        diff = max((model.peer_logits(b)[0] - padded_logits(b)[0]).abs().max().item()
                   for b in batches)
    model.train()

    def run(logits_of) -> None:
        for batch in batches:
            logits, targets = logits_of(batch)
            mutual_distillation_loss(logits, targets).total.sum().backward()

    t_buck, t_pad = _interleaved_medians([lambda: run(model.peer_logits),
                                          lambda: run(padded_logits)],
                                         args.warmup, args.repeats, torch.device("cpu"))
    print(f"{args.windows}: {len(batches)} batches, {rows} windows of width "
          f"{model.config.max_len}, {fill:.1%} items; threads={args.threads}")
    print(f"bucketed fwd+bwd {t_buck:.2f} s; padded {t_pad:.2f} s; "
          f"max |logit diff| (eval) {diff:.2e}")
    print(json.dumps({"bench": "peerrec_length_buckets", "config": args.windows,
                      "batches": len(batches), "windows": rows, "fill": round(fill, 4),
                      "threads": args.threads, "bucketed_s": round(t_buck, 3),
                      "padded_s": round(t_pad, 3), "speedup": round(t_pad / t_buck, 3),
                      "max_abs_logit_diff": diff}))


def bench_loss_neg(args: argparse.Namespace) -> None:
    """The fused L_neg kernel against autograd through the reference formula."""
    gen = torch.Generator().manual_seed(0)
    shape = (args.peers, args.masked, args.items)
    z = (torch.randn(shape, generator=gen) * 3).requires_grad_(True)
    w = torch.rand(shape, generator=gen) / args.items

    def fused() -> None:
        weighted_log_one_minus_softmax(z, w).sum().backward()

    def reference() -> None:
        (-(w * log_one_minus_softmax(z)).sum(-1)).sum().backward()

    diff = (weighted_log_one_minus_softmax(z, w)
            - (-(w * log_one_minus_softmax(z)).sum(-1))).abs().max().item()
    t_fused, t_ref = _interleaved_medians([fused, reference], args.warmup, args.repeats,
                                          torch.device("cpu"))
    print(f"L_neg on (T, M, C) = {shape}, threads={args.threads}: fused fwd+bwd "
          f"{t_fused * 1e3:.0f} ms; reference {t_ref * 1e3:.0f} ms; max |diff| {diff:.2e}")
    print(json.dumps({"bench": "peerrec_loss_neg", "shape": list(shape), "threads": args.threads,
                      "fused_ms": round(t_fused * 1e3, 1), "reference_ms": round(t_ref * 1e3, 1),
                      "speedup": round(t_ref / t_fused, 3), "max_abs_diff": diff}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--items", type=int, default=3646, help="LastFM has 3,646 items")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--windows", default=None,
                        help="experiment config: time length buckets on its training windows")
    parser.add_argument("--batches", type=int, default=3, help="with --windows")
    parser.add_argument("--loss-neg", action="store_true", help="time the L_neg kernel")
    parser.add_argument("--masked", type=int, default=2500, help="with --loss-neg: M")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.loss_neg:
        bench_loss_neg(args)
        return
    if args.windows:
        bench_windows(args)
        return
    device = torch.device(args.device)

    torch.manual_seed(0)
    cfg = PeerRecConfig(num_peers=args.peers, max_len=args.max_len)
    model = PeerRec(cfg, 1, args.items).to(device).train()
    encoders = export_peer_encoders(model).train()
    gen = torch.Generator(device=device).manual_seed(0)
    seq = torch.randint(1, args.items + 1, (args.batch, args.max_len), generator=gen,
                        device=device)
    tokens, labels = cloze_mask(seq, cfg.mask_prob, model.mask_token, gen)
    masked = labels >= 0
    targets = labels[masked]

    model.eval()
    encoders.eval()
    with torch.no_grad():
        diff = (model.peer_logits({"input": tokens, "target": labels})[0]
                - looped_peer_logits(model, encoders, tokens, masked)).abs().max().item()
    model.train()
    encoders.train()

    def vectorised() -> None:
        logits, _ = model.peer_logits({"input": tokens, "target": labels})
        mutual_distillation_loss(logits, targets).total.sum().backward()

    def looped() -> None:
        logits = looped_peer_logits(model, encoders, tokens, masked)
        mutual_distillation_loss(logits, targets).total.sum().backward()

    t_vec, t_loop = _interleaved_medians([vectorised, looped], args.warmup, args.repeats, device)
    print(f"peers={args.peers} batch={args.batch} max_len={args.max_len} items={args.items} "
          f"threads={args.threads} device={device}")
    print(f"vectorised fwd+bwd {t_vec * 1e3:.1f} ms; looped {t_loop * 1e3:.1f} ms; "
          f"max |logit diff| {diff:.2e}")
    print(json.dumps({"bench": "peerrec_peers", "peers": args.peers, "batch": args.batch,
                      "max_len": args.max_len, "items": args.items, "threads": args.threads,
                      "device": str(device), "masked": int(targets.numel()),
                      "vectorised_ms": round(t_vec * 1e3, 2), "looped_ms": round(t_loop * 1e3, 2),
                      "speedup": round(t_loop / t_vec, 3), "max_abs_logit_diff": diff}))


if __name__ == "__main__":
    main()
