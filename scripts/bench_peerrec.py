"""PeerRec speed checks, each timing two paths alternating in one process; the last line is JSON.

    python scripts/bench_peerrec.py --peers 2 --batch 256 --max-len 50 --items 3646 --threads 1

times PeerRec's loop over peers against the stacked-weights formulation it replaced
(PeerRec ``result_version`` 1, kept here as :class:`StackedPeers`): the same stage-1 loss on the
same masked batch from the same weights, forward + backward. ``looped`` is ``PeerRec.peer_logits``
(each peer an ordinary ``TransformerEncoder``, run one after the other on the whole batch);
``stacked`` runs all peers in one pass with ``torch.baddbmm`` and one attention call over
(T * B) rows. Also printed: the encoders alone (``model.encode`` vs the stacked encode and vs
``torch.func.vmap`` over the per-peer encoders' stacked parameters) and the max |differences|
(eval mode). Speed-ups are loop time / candidate time. Medians over ``--repeats`` runs after
``--warmup``.

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
import copy
import json
import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from mmseq.config import load_experiment
from mmseq.data.sampling import cloze_mask
from mmseq.losses.peer import (
    log_one_minus_softmax,
    mutual_distillation_loss,
    weighted_log_one_minus_softmax,
)
from mmseq.models.peerrec import BLOCK_PARAMETERS, PeerRec, PeerRecConfig
from mmseq.nn.padding import masked_states_by_length


class StackedPeers:
    """PeerRec's former peer encoder (``result_version`` 1): every peer's block weights stacked on
    a leading peer dimension, all peers in one batched pass. Built from (and training its own
    copies of) a :class:`PeerRec`'s per-peer weights; uses the model's shared embedding and head.

    Shapes:
        encode: tokens (B, L) -> (T, B, L, d) (or (1, B, L, d) for one peer).
    """

    def __init__(self, model: PeerRec) -> None:
        self.model = model
        c = model.config
        self.num_heads, self.dropout = c.num_heads, c.dropout
        self.layers = [
            {name: torch.stack([enc.blocks[i].get_parameter(path).detach()
                                for enc in model.peers.encoders]).requires_grad_(True)
             for name, path in BLOCK_PARAMETERS.items()}
            for i in range(c.num_layers)
        ]

    def state_dict(self) -> dict[str, Tensor]:
        """The model's state dict in the stacked (version 1) format."""
        state = {k: v for k, v in self.model.state_dict().items()
                 if not k.startswith("peers.encoders.")}
        for i, layer in enumerate(self.layers):
            state.update({f"peers.layers.{i}.{name}": v.detach() for name, v in layer.items()})
        return state

    def _block(self, x: Tensor, attend: Tensor, w: dict[str, Tensor]) -> Tensor:
        def linear(y: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
            p, b, t, i = y.shape
            out = torch.baddbmm(bias.unsqueeze(1), y.reshape(p, b * t, i), weight.transpose(1, 2))
            return out.view(p, b, t, weight.shape[1])

        def norm(y: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
            y = F.layer_norm(y, y.shape[-1:])
            return y * weight[:, None, None, :] + bias[:, None, None, :]

        training = self.model.training
        p, b, t, d = x.shape
        drop = self.dropout if training else 0.0
        q, k, v = linear(x, w["qkv_weight"], w["qkv_bias"]).split(d, dim=-1)
        q, k, v = (z.reshape(p * b, t, self.num_heads, d // self.num_heads).transpose(1, 2)
                   for z in (q, k, v))  # (P*B, h, L, d/h)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attend, dropout_p=drop)
        y = y.transpose(1, 2).reshape(p, b, t, d)
        y = F.dropout(linear(y, w["out_weight"], w["out_bias"]), drop, training)
        x = norm(x + y, w["norm1_weight"], w["norm1_bias"])
        y = F.gelu(linear(x, w["ffn_in_weight"], w["ffn_in_bias"]))
        y = F.dropout(linear(F.dropout(y, drop, training), w["ffn_out_weight"],
                             w["ffn_out_bias"]), drop, training)
        return norm(x + y, w["norm2_weight"], w["norm2_bias"])

    def encode(self, tokens: Tensor, peer: int | None = None) -> Tensor:
        m = self.model
        t = tokens.shape[1]
        positions = torch.arange(m.config.max_len - t, m.config.max_len, device=tokens.device)
        x = m.embedding_norm(m.token_embedding(tokens) + m.position_embedding(positions))
        copies = m.config.num_peers if peer is None else 1
        x = m.embedding_dropout(x.expand(copies, *x.shape))  # (P, B, L, d)
        eye = torch.eye(t, dtype=torch.bool, device=x.device)
        attend = ~(tokens == 0)[:, None, None, :] | eye  # (B, 1, L, L)
        attend = attend.expand(x.shape[0], *attend.shape).flatten(0, 1)  # (P*B, 1, L, L)
        for layer in self.layers:
            w = layer if peer is None else {n: v[peer : peer + 1] for n, v in layer.items()}
            x = self._block(x, attend, w)
        return x

    def vmap_encode(self, tokens: Tensor) -> Tensor:
        """Every peer at once by ``torch.func.vmap`` of ``functional_call`` over the per-peer
        encoders' stacked parameters (the other batched formulation tried; not in PeerRec).
        Its own dropout masks (``randomness="different"``); values equal in eval mode."""
        from torch.func import functional_call, stack_module_state, vmap

        m = self.model
        if not hasattr(self, "_vmap_params"):
            params, buffers = stack_module_state(list(m.peers.encoders))
            self._vmap_params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            self._vmap_buffers = buffers
            self._vmap_base = copy.deepcopy(m.peers.encoders[0]).to("meta")
        t = tokens.shape[1]
        positions = torch.arange(m.config.max_len - t, m.config.max_len, device=tokens.device)
        x = m.embedding_dropout(
            m.embedding_norm(m.token_embedding(tokens) + m.position_embedding(positions)))
        self._vmap_base.train(m.training)
        padding = tokens == 0

        def one(params: dict, buffers: dict) -> Tensor:
            return functional_call(self._vmap_base, (params, buffers), (x,),
                                   {"padding_mask": padding})

        return vmap(one, randomness="different")(self._vmap_params, self._vmap_buffers)

    def peer_logits(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """As ``PeerRec.peer_logits`` (full softmax) with the stacked encoder."""
        h, targets = masked_states_by_length(self.encode, batch["input"], batch["target"])
        return self.model.item_logits(h), targets


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
    stacked = StackedPeers(model)
    gen = torch.Generator(device=device).manual_seed(0)
    seq = torch.randint(1, args.items + 1, (args.batch, args.max_len), generator=gen,
                        device=device)
    tokens, labels = cloze_mask(seq, cfg.mask_prob, model.mask_token, gen)
    batch = {"input": tokens, "target": labels}
    targets = labels[labels >= 0]

    model.eval()
    with torch.no_grad():
        diff = (model.peer_logits(batch)[0] - stacked.peer_logits(batch)[0]).abs().max().item()
        with warnings.catch_warnings():  # "no batching rule for ..._flash_attention_for_cpu"
            warnings.simplefilter("ignore", UserWarning)
            vmap_diff = (model.encode(tokens) - stacked.vmap_encode(tokens)).abs().max().item()
    model.train()

    def step(peer_logits) -> None:  # noqa: ANN001
        logits, _ = peer_logits(batch)
        mutual_distillation_loss(logits, targets).total.sum().backward()

    def encoder_only(encode) -> None:  # noqa: ANN001
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            encode(tokens).sum().backward()

    t_loop, t_stack, e_loop, e_stack, e_vmap = _interleaved_medians(
        [lambda: step(model.peer_logits), lambda: step(stacked.peer_logits),
         lambda: encoder_only(model.encode), lambda: encoder_only(stacked.encode),
         lambda: encoder_only(stacked.vmap_encode)],
        args.warmup, args.repeats, device)
    print(f"peers={args.peers} batch={args.batch} max_len={args.max_len} items={args.items} "
          f"threads={args.threads} device={device}")
    print(f"stage-1 step fwd+bwd: looped (PeerRec) {t_loop * 1e3:.1f} ms; stacked "
          f"{t_stack * 1e3:.1f} ms; stacked speed-up over the loop {t_loop / t_stack:.2f}x")
    print(f"encoders only fwd+bwd: looped {e_loop * 1e3:.1f} ms; stacked {e_stack * 1e3:.1f} ms "
          f"({e_loop / e_stack:.2f}x); vmap {e_vmap * 1e3:.1f} ms ({e_loop / e_vmap:.2f}x)")
    print(f"max |logit diff| looped vs stacked (eval) {diff:.2e}; max |state diff| looped vs "
          f"vmap (eval) {vmap_diff:.2e}")
    print(json.dumps({"bench": "peerrec_peers", "peers": args.peers, "batch": args.batch,
                      "max_len": args.max_len, "items": args.items, "threads": args.threads,
                      "device": str(device), "masked": int(targets.numel()),
                      "looped_ms": round(t_loop * 1e3, 2), "stacked_ms": round(t_stack * 1e3, 2),
                      "stacked_speedup": round(t_loop / t_stack, 3),
                      "encoder_looped_ms": round(e_loop * 1e3, 2),
                      "encoder_stacked_ms": round(e_stack * 1e3, 2),
                      "encoder_vmap_ms": round(e_vmap * 1e3, 2),
                      "encoder_stacked_speedup": round(e_loop / e_stack, 3),
                      "encoder_vmap_speedup": round(e_loop / e_vmap, 3),
                      "max_abs_logit_diff": diff, "max_abs_vmap_state_diff": vmap_diff}))

if __name__ == "__main__":
    main()
