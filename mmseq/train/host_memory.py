"""Reuse freed host memory for large tensors instead of handing it back to the OS (glibc malloc).

glibc serves every allocation above its mmap threshold (at most 32 MiB on 64-bit) with a fresh
``mmap`` and returns it with ``munmap`` when freed. A fresh mapping's pages are faulted in and
zeroed by the kernel on first write, so a training step that allocates a few (peers, positions,
items) float tensors of 40 MB each (PeerRec on Toys: 2 x 426 x 11,924) pays for page faults in
every one of them, every step. :func:`reuse_freed_memory` tells malloc to serve large blocks from
its heap (``M_MMAP_MAX = 0``) and to keep freed memory for the next allocation instead of trimming
it (``M_TRIM_THRESHOLD``). Tensors get the same 64-byte-aligned storage, so every value is the
same bit for bit (tested); only the page faults go (measured in ``docs/benchmarks.md``).

The cost: a process keeps the memory of its largest moment until it ends (up to
``keep_bytes`` above the heap's top), so a short spike is not given back. Runs turn it off with
``train.reuse_memory: false``. Nothing happens off glibc (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger(__name__)

# glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: freed memory kept at the heap's top before malloc trims it: 2 GiB (mallopt's largest, a C int)
DEFAULT_KEEP_BYTES = (1 << 31) - 1

_applied: dict[str, int] = {}


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def reuse_freed_memory(keep_bytes: int = DEFAULT_KEEP_BYTES) -> bool:
    """Serve large allocations from malloc's heap and keep freed memory for reuse (this process).

    Idempotent. Returns True when glibc accepted both settings (now or before), False elsewhere.
    Affects allocations made after the call; results do not change, only speed and memory kept.
    """
    if _applied:
        return True
    libc = _glibc()
    if libc is None:
        return False
    keep = min(int(keep_bytes), DEFAULT_KEEP_BYTES)  # mallopt takes a C int
    ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, keep) == 1
    if ok:
        _applied.update(mmap_max=0, trim_threshold=keep)
        log.debug("malloc: large blocks from the heap, %d bytes kept at its top", keep)
    return ok
