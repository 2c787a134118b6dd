"""Training checkpoints: atomic, checksummed, and complete enough to resume bit-for-bit.

A checkpoint holds the model and optimiser states, the epoch, the best weights and metric, the
early-stopping state, the history and every RNG state the loop touches (the sampling generator,
torch's global CPU/CUDA generators used by dropout, NumPy's and Python's global generators), so
that a resumed run continues exactly where the interrupted one stopped. Files are written with
``torch.save`` and read back with ``weights_only=True``: only tensors and plain containers.

Crash safety: the data file and its ``.sha256`` side file are replaced by two renames, so a
process killed between them must not leave a pair that disagrees. The side file therefore first
lists the new digest together with those it already lists, then the data file is renamed into
place, then the side file is reduced to the new digest; a checkpoint is valid when its digest is
one of those listed.
At every instant ``last.pt`` is a complete old or new checkpoint that verifies.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmseq.errors import ArtifactError
from mmseq.io import atomic_write, file_sha256

CHECKPOINT_NAME = "last.pt"


def capture_rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG state that influences training, as tensors and plain values."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Inverse of :func:`capture_rng_state`."""
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state({
        "bit_generator": np_state["bit_generator"],
        "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
        "has_gauss": np_state["has_gauss"],
        "gauss": np_state["gauss"],
    })
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_plain(state: tuple) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def checkpoint_path(checkpoint_dir: str | Path) -> Path:
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def save_checkpoint(checkpoint_dir: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``<dir>/last.pt`` and its ``.sha256``; a kill at any point is safe."""
    path = checkpoint_path(checkpoint_dir)
    side = _side_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        torch.save(state, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        digest = file_sha256(tmp)
        # Valid while the data file is swapped: the new digest and every digest listed now
        # (one after a clean save; more only if an earlier save was killed mid-way).
        previous = _listed_digests(side) if side.is_file() else []
        _write_digests(side, [digest, *previous])
        os.replace(tmp, path)
        _write_digests(side, [digest])
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _side_file(path: Path) -> Path:
    return Path(str(path) + ".sha256")


def _listed_digests(side: Path) -> list[str]:
    return side.read_text().split()


def _write_digests(side: Path, digests: list[str]) -> None:
    text = "\n".join(digests) + "\n"

    def write(tmp: Path) -> None:
        tmp.write_text(text)

    atomic_write(side, write)


def load_checkpoint(checkpoint_dir: str | Path) -> dict[str, Any] | None:
    """The state saved in ``<dir>/last.pt``, or None if there is none.

    Raises:
        ArtifactError: if the file or its checksum is corrupt or unreadable.
    """
    path = checkpoint_path(checkpoint_dir)
    if not path.exists():
        return None
    side = _side_file(path)
    if not side.is_file():
        raise ArtifactError(f"Missing checksum {side} for {path}; delete {Path(checkpoint_dir)} "
                            "to start over")
    if file_sha256(path) not in _listed_digests(side):
        raise ArtifactError(f"Checksum mismatch for {path}: the file is corrupt or was modified; "
                            f"delete {Path(checkpoint_dir)} to start over")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad checkpoint
        raise ArtifactError(
            f"Cannot read checkpoint {path}: {exc}; delete {Path(checkpoint_dir)} to start over"
        ) from None
