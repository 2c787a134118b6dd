"""A process killed at ANY step of a checkpoint write leaves a checkpoint that loads.

``save_checkpoint`` replaces two files (the data and its ``.sha256``) by renames. The test stops
the write before each rename in turn (as SIGKILL would: nothing after it runs) and checks that
the folder then holds a complete checkpoint that verifies: the previous epoch or the new one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mmseq.errors import ArtifactError
from mmseq.train import checkpoint as ckpt


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no ``except Exception`` swallows it."""


def _state(epoch: int) -> dict:
    return {"epoch": epoch, "weights": torch.full((64, 16), float(epoch))}


def _renames_in_one_save(tmp_path: Path, monkeypatch) -> int:
    ckpt.save_checkpoint(tmp_path / "count", _state(1))
    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(b), real(a, b))[1])
    ckpt.save_checkpoint(tmp_path / "count", _state(2))
    monkeypatch.setattr(os, "replace", real)
    return len(calls)


def test_every_kill_point_leaves_a_loadable_checkpoint(tmp_path: Path, monkeypatch) -> None:
    renames = _renames_in_one_save(tmp_path, monkeypatch)
    assert renames >= 2  # the data file and its side file at least
    real = os.replace
    for kill_at in range(renames + 1):  # before rename 0, 1, ..., and after the last one
        folder = tmp_path / f"kill{kill_at}"
        ckpt.save_checkpoint(folder, _state(1))
        count = [0]

        def replace(a, b, count=count, kill_at=kill_at):
            if count[0] == kill_at:
                raise Killed
            count[0] += 1
            return real(a, b)

        monkeypatch.setattr(os, "replace", replace)
        try:
            ckpt.save_checkpoint(folder, _state(2))
        except Killed:
            pass
        finally:
            monkeypatch.setattr(os, "replace", real)
        state = ckpt.load_checkpoint(folder)
        assert state is not None, f"kill before rename {kill_at}: checkpoint vanished"
        assert state["epoch"] in (1, 2), kill_at
        assert torch.equal(state["weights"], torch.full((64, 16), float(state["epoch"])))
        if kill_at == renames:
            assert state["epoch"] == 2
        # And the next save after the "crash" works and is clean.
        ckpt.save_checkpoint(folder, _state(3))
        assert ckpt.load_checkpoint(folder)["epoch"] == 3
        assert (folder / "last.pt.sha256").read_text().split() == [
            ckpt.file_sha256(folder / "last.pt")
        ]


def test_two_saves_killed_in_a_row_still_leave_a_loadable_checkpoint(tmp_path: Path,
                                                                      monkeypatch) -> None:
    """Killed after the side file widened but before the data rename, twice: epoch 1 survives."""
    ckpt.save_checkpoint(tmp_path, _state(1))
    real = os.replace
    for epoch in (2, 3):
        count = [0]

        def replace(a, b, count=count):
            if count[0] == 1:  # rename 0 = the widened side file, rename 1 = the data file
                raise Killed
            count[0] += 1
            return real(a, b)

        monkeypatch.setattr(os, "replace", replace)
        try:
            ckpt.save_checkpoint(tmp_path, _state(epoch))
        except Killed:
            pass
        finally:
            monkeypatch.setattr(os, "replace", real)
    assert ckpt.load_checkpoint(tmp_path)["epoch"] == 1


def test_a_corrupt_checkpoint_still_fails_loudly(tmp_path: Path) -> None:
    ckpt.save_checkpoint(tmp_path, _state(1))
    ckpt.save_checkpoint(tmp_path, _state(2))
    path = tmp_path / "last.pt"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="Checksum mismatch.*last.pt"):
        ckpt.load_checkpoint(tmp_path)


def test_the_previous_checkpoint_is_not_accepted_after_a_clean_save(tmp_path: Path) -> None:
    """Only a crash window widens the accepted digests: afterwards, an old file is rejected."""
    ckpt.save_checkpoint(tmp_path, _state(1))
    old = (tmp_path / "last.pt").read_bytes()
    ckpt.save_checkpoint(tmp_path, _state(2))
    (tmp_path / "last.pt").write_bytes(old)
    with pytest.raises(ArtifactError, match="Checksum mismatch"):
        ckpt.load_checkpoint(tmp_path)


def test_a_missing_side_file_is_an_error_naming_it(tmp_path: Path) -> None:
    ckpt.save_checkpoint(tmp_path, _state(1))
    (tmp_path / "last.pt.sha256").unlink()
    with pytest.raises(ArtifactError, match=r"Missing checksum .*last.pt.sha256"):
        ckpt.load_checkpoint(tmp_path)
