"""Data-parallel training and evaluation with PyTorch DDP, launched by ``torchrun``.

    torchrun --nproc_per_node 2 -m mmseq train --config X.yaml

``torchrun`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` and the env:// rendezvous;
:func:`init_from_env` joins the process group (gloo on CPU, nccl on CUDA). Then:

- every rank builds the same data, graphs (replicated) and model, and draws the same global
  batches from the same seeded generator; :func:`shard_batch` keeps this rank's contiguous slice
  of each, so the config's batch size is the GLOBAL batch;
- :func:`wrap_for_loss` puts the model's ``loss`` behind ``DistributedDataParallel``, which
  averages gradients over ranks; the loop scales each rank's loss by ``world * n_rank / n``
  (:func:`loss_scale`), so the averaged gradient equals the 1-process gradient of a loss that is
  a mean over the batch's examples (plus any example-independent term), also when ``n`` does not
  divide evenly;
- :func:`sharded_evaluate` scores a contiguous block of the users on each rank and all-reduces
  metric SUMS and user counts (float64), so metrics are exact global means, not means of means;
- only rank 0 writes checkpoints, logs and results (:func:`is_main`); every rank resumes from
  the same checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from mmseq.errors import ConfigError, TrainingError


def world_size() -> int:
    """Processes in the job (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes checkpoints, logs and results (rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if world_size() > 1:
        dist.barrier()


def init_from_env(device: str) -> int:
    """Join the process group that ``torchrun`` described in the environment, once.

    Args:
        device: ``train.device`` (``"auto"``, ``"cpu"``, ``"cuda"``, ...): CUDA -> nccl, else gloo.

    Returns:
        the world size (1 when not launched by torchrun: nothing is initialised).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or dist.is_initialized():
        return world_size()
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo", init_method="env://")
    return world_size()


def rank_device(device: torch.device) -> torch.device:
    """``cuda`` becomes this rank's GPU (``cuda:LOCAL_RANK``) under DDP; else unchanged."""
    if device.type == "cuda" and world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shard_bounds(n: int, parts: int, index: int) -> tuple[int, int]:
    """``[start, stop)`` of part ``index`` of ``n`` rows cut into ``parts`` contiguous blocks whose
    sizes differ by at most one (the first ``n % parts`` blocks get the extra row)."""
    base, extra = divmod(n, parts)
    start = index * base + min(index, extra)
    return start, start + base + (index < extra)


def shard_batch(batch: dict[str, Tensor], parts: int, index: int) -> tuple[dict[str, Tensor], int]:
    """This rank's slice of a global training batch, and the global batch size ``n``.

    ``n`` is the leading size of ``batch["user"]`` (else of the first tensor). A tensor whose
    leading size is ``k * n`` is read as ``k`` stacked copies of the batch (``x.repeat(k, 1)``,
    as in multi-view models) and sliced in each copy. A 0-d or one-row tensor (a stage flag, a
    noise seed) is a per-batch value and kept whole (for ``n`` > 1). Any other leading size
    cannot be sharded and is an error naming the key.

    Shapes:
        every non-scalar tensor (k * n, ...) -> (k * n_rank, ...).
    """
    first = batch["user"] if "user" in batch else next(iter(batch.values()))
    n = int(first.shape[0])
    start, stop = shard_bounds(n, parts, index)
    out: dict[str, Tensor] = {}
    for key, value in batch.items():
        lead = int(value.shape[0]) if isinstance(value, Tensor) and value.dim() else 0
        if lead == 0 or (lead == 1 and n != 1):  # a per-batch value (a stage flag, a seed)
            out[key] = value
            continue
        if n == 0 or lead % n != 0:
            raise TrainingError(
                f"Cannot shard training batch key '{key}' across {parts} ranks: leading size "
                f"{lead} is not a multiple of the batch size {n}"
            )
        k = lead // n
        blocks = value.reshape(k, n, *value.shape[1:])  # (k, n, ...)
        out[key] = blocks[:, start:stop].reshape(k * (stop - start), *value.shape[1:])
    return out, n


def loss_scale(n_rank: int, n: int) -> float:
    """Factor on a rank's mean loss so that DDP's gradient AVERAGE is the global mean's gradient:
    ``world * n_rank / n`` (sum over ranks of ``n_rank / n`` is 1)."""
    return world_size() * n_rank / n


class _LossModule(torch.nn.Module):
    """``forward(batch, inputs) -> (total, terms)`` = ``model.loss``: what DDP wraps."""

    def __init__(self, model: Any) -> None:  # a Recommender (models/ is not imported here)
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor], inputs: Any) -> tuple[Tensor, dict[str, Tensor]]:
        out = self.model.loss(batch, inputs)
        return out.total, dict(out.terms)


def wrap_for_loss(model: torch.nn.Module) -> torch.nn.Module | None:
    """``DistributedDataParallel`` around ``model.loss`` under a process group, else None.

    ``find_unused_parameters``: some models leave parameters out of some losses (ablations,
    stage-dependent terms), which plain DDP would wait for forever.
    """
    if world_size() <= 1:
        return None
    param = next(model.parameters(), None)
    device_ids = [param.device] if param is not None and param.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(
        _LossModule(model), device_ids=device_ids, find_unused_parameters=True
    )


def all_reduce_sum(values: Tensor) -> Tensor:
    """Sum ``values`` over ranks (a copy; unchanged without a process group)."""
    if world_size() <= 1:
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def shard_task(task: Any, parts: int, index: int) -> Any:
    """The users ``[start, stop)`` of an ``EvalTask`` (its CSR rows re-based)."""
    start, stop = shard_bounds(task.num_users, parts, index)

    def rows(indptr: Tensor, indices: Tensor) -> tuple[Tensor, Tensor]:
        lo, hi = int(indptr[start]), int(indptr[stop])
        return indptr[start : stop + 1] - lo, indices[lo:hi]

    target_indptr, target_indices = rows(task.target_indptr, task.target_indices)
    history_indptr, history_indices = rows(task.history_indptr, task.history_indices)
    return dataclasses.replace(
        task,
        users=task.users[start:stop],
        target_indptr=target_indptr,
        target_indices=target_indices,
        history_indptr=history_indptr,
        history_indices=history_indices,
        candidates=None if task.candidates is None else task.candidates[start:stop],
    )


def sharded_evaluate(
    model: Any, inputs: Any, task: Any, *, batch_size: int = 1024
) -> dict[str, float]:
    """``mmseq.eval.protocol.evaluate`` with the users split across ranks: per-rank metric sums
    and user counts are all-reduced (float64), so the result is the exact global mean."""
    from mmseq.eval.protocol import evaluate, evaluate_per_user

    parts = world_size()
    if parts <= 1:
        return evaluate(model, inputs, task, batch_size=batch_size)
    if task.num_users == 0:
        raise ConfigError(f"Expected at least one user to evaluate ({task.protocol}/{task.stage})")
    per_user = evaluate_per_user(
        model, inputs, shard_task(task, parts, rank()), batch_size=batch_size
    )
    names = list(task.metrics)
    count = next(iter(per_user.values())).numel() if per_user else 0
    sums = torch.tensor(
        [float(per_user[m].sum()) for m in names] + [float(count)], dtype=torch.float64
    )
    backend_device = inputs.device if dist.get_backend() == "nccl" else torch.device("cpu")
    total = all_reduce_sum(sums.to(backend_device)).cpu()
    return {m: float(total[j] / total[-1]) for j, m in enumerate(names)}
