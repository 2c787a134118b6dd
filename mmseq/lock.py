"""An advisory, inter-process file lock for cache folders (``fcntl.flock``, POSIX only).

Two ``scripts/build_graphs.py`` runs on one artifacts folder must not interleave their cache
writes: each artifact is a file plus a ``.sha256`` side file written by two separate atomic renames,
so two writers could leave the checksum of one beside the bytes of the other. Holding
:func:`file_lock` on the folder around "look up, build if missing, write" makes the second process
wait, then find the first one's artifact in the cache.

The lock is taken on the folder itself (``flock`` on a directory descriptor, Linux/macOS local
file systems), so no lock file is left in the cache. The kernel releases it when its holder dies
(even by SIGKILL): a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from mmseq.errors import ArtifactError

log = logging.getLogger(__name__)

class LockTimeoutError(ArtifactError):
    """The lock was not acquired within the timeout (another process holds it)."""


@contextlib.contextmanager
def file_lock(directory: str | Path, *, timeout: float = 3600.0,
              poll: float = 0.05) -> Iterator[Path]:
    """Hold an exclusive lock on the folder ``directory`` for the body of a ``with`` block.

    Not re-entrant: a second ``file_lock`` on the same folder in the same process waits too.

    Args:
        directory: the folder to guard (created if missing).
        timeout: seconds to wait for another holder before giving up (default 3600: a topic
            model on a large data set can hold the lock for many minutes). 0 = try once.
        poll: seconds between attempts while waiting.

    Yields:
        The locked folder.

    Raises:
        LockTimeoutError: if another process still holds the lock after ``timeout`` seconds;
            the message names the folder.
        ValueError: if ``timeout`` or ``poll`` is negative.
    """
    if timeout < 0 or poll < 0:
        raise ValueError(f"Expected timeout >= 0 and poll >= 0 (got {timeout}, {poll})")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"Could not lock {path} within {timeout:g} s: another process is writing "
                        f"this cache; wait for it to finish or stop it"
                    ) from None
                if not waited:
                    log.info("waiting for the lock %s (held by another process)", path)
                    waited = True
                time.sleep(poll)
        try:
            yield path
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
