"""Atomic, checksummed file writes shared by caches, artifacts and checkpoints."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmseq.errors import ArtifactError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checksum(path: str | Path) -> None:
    """Write ``<path>.sha256`` beside ``path`` (atomically)."""
    digest = file_sha256(path)
    atomic_write(str(path) + ".sha256", lambda p: p.write_text(digest + "\n"))


def verify_checksum(path: str | Path) -> None:
    """Raise :class:`ArtifactError` if ``path`` or its checksum is missing or they disagree."""
    path = Path(path)
    side = Path(str(path) + ".sha256")
    if not path.is_file():
        raise ArtifactError(f"Missing artifact {path}")
    if not side.is_file():
        raise ArtifactError(f"Missing checksum {side} for {path}")
    if side.read_text().strip() != file_sha256(path):
        raise ArtifactError(f"Checksum mismatch for {path}: the file is corrupt or was modified")


def write_json(path: str | Path, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
