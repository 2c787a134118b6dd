"""Large tensors from malloc's heap: the setting takes, training gives the same bits, and it
never enters a run's identity. Process-wide, so the checks run in child processes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from mmseq.config import ExperimentConfig, TrainConfig
from mmseq.identity import config_identity

REPO = Path(__file__).resolve().parents[3]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

CHILD = r"""
import ctypes, ctypes.util, json, sys
import torch
from mmseq.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmseq.train.host_memory import reuse_freed_memory

libc = ctypes.CDLL(ctypes.util.find_library("c"))
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = MallInfo2

def mapped_after_big_tensor():
    before = libc.mallinfo2().hblkhd
    x = torch.ones(16 << 20)  # 64 MiB, above any mmap threshold glibc allows
    grew = libc.mallinfo2().hblkhd - before
    del x
    return grew

def train(steps=4):
    torch.manual_seed(0)
    model = BERT4Rec(BERT4RecConfig(embedding_dim=32, ffn_dim=64, max_len=20), 1, 3000)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        tokens = torch.randint(1, 3001, (128, 20), generator=g)
        tokens[:, -1] = model.mask_token
        states = model.encode(tokens)  # (B, T, d)
        logits = model.item_logits(states.reshape(-1, 32))  # (B T, items): 49 MB
        loss = torch.nn.functional.cross_entropy(logits, tokens.reshape(-1).clamp(max=3000) - 1)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item().hex())
    return losses, [p.detach().double().sum().item().hex() for p in model.parameters()]

out = {"mapped_before": mapped_after_big_tensor(), "default": train()}
out["applied"] = reuse_freed_memory()
out["again"] = reuse_freed_memory()
out["mapped_after"] = mapped_after_big_tensor()
out["reused"] = train()
print(json.dumps(out))
"""


@pytest.mark.skipif(not GLIBC, reason="glibc malloc only")
def test_large_tensors_come_from_the_heap_and_training_is_bit_identical() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["mapped_before"] >= 64 << 20  # glibc's default: a fresh mapping per big block
    assert out["applied"] and out["again"]
    assert out["mapped_after"] == 0  # now served from (and freed back to) the heap
    assert out["reused"] == out["default"]  # same losses and parameters, bit for bit


def test_the_setting_is_not_part_of_a_run_identity() -> None:
    on = ExperimentConfig(train=TrainConfig(reuse_memory=True))
    off = ExperimentConfig(train=TrainConfig(reuse_memory=False))
    assert config_identity(on) == config_identity(off)
    other = ExperimentConfig(train=TrainConfig(threads=1))  # a field that can change results
    assert config_identity(other) != config_identity(on)
