"""An on-disk cache for the numba code UMAP and pynndescent compile in every new process.

UMAP's first fit in a process compiles its numba kernels (nearest-neighbour descent, fuzzy
simplicial set, layout epochs); on Musical Instruments that took 50-60 s of a 100 s UMAP under
load, against 6.5 s for the nearest-neighbour search itself once compiled. Most of those kernels
are declared without ``cache=True``, so numba compiles them again in every process.
:func:`enable_jit_cache` turns numba's own file cache on for them (``Dispatcher.enable_caching``),
in a folder of mmseq's, keyed by the versions of the libraries whose code is compiled. The cached
machine code is the code numba would compile, so results do not change (tested: the UMAP layout
of MI's embeddings is bitwise equal with and without the cache).

Not cached: ``nn_descent`` and ``nn_descent_internal`` (numba refuses: they call a distance
function passed as an argument through a pointer). Their compile, about 15 s under load, stays
in every process.

The folder: ``$MMSEQ_JIT_CACHE`` if set (``off`` disables the cache), else
``~/.cache/mmseq/numba``; inside it ``<sha of library versions>/``. numba checks each entry
against its source file's size and mtime too, and writes entries atomically, so concurrent runs
are safe. It is a cache of compiled library code, not of any result: deleting it costs only the
compile time again.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import logging
import os
import sys
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

ENV_VAR = "MMSEQ_JIT_CACHE"
# Modules whose numba functions UMAP's fit compiles (their own, not the ones they import).
JIT_MODULES = (
    "umap.umap_",
    "umap.layouts",
    "umap.utils",
    "pynndescent.pynndescent_",
    "pynndescent.utils",
)
# numba cannot cache these (they call a function passed as an argument); it would warn each time.
UNCACHEABLE = frozenset({"nn_descent", "nn_descent_internal"})
_VERSIONED = ("numba", "llvmlite", "numpy", "umap-learn", "pynndescent")

_enabled: dict[str, Path] = {}  # "root" -> the folder in use in this process


def default_root() -> Path | None:
    """The cache folder from ``$MMSEQ_JIT_CACHE`` (``off``/``0``/empty-string = None), else
    ``~/.cache/mmseq/numba``."""
    value = os.environ.get(ENV_VAR)
    if value is None:
        return Path.home() / ".cache" / "mmseq" / "numba"
    if value.strip().lower() in ("", "0", "off", "none", "false"):
        return None
    return Path(value).expanduser()


def versions_key() -> str:
    """sha256 (12 hex) of the Python and library versions whose compiled code is cached."""
    parts = [sys.version.split()[0]]
    for pkg in _VERSIONED:
        try:
            parts.append(f"{pkg}=={importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{pkg}==none")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def enable_jit_cache(root: str | Path | None = None) -> Path | None:
    """Cache the numba functions of :data:`JIT_MODULES` under ``root/<versions_key()>``.

    Idempotent: the first call in a process decides the folder; later calls return it. Functions
    already cached by their library (``cache=True``) keep their own cache.

    Args:
        root: the cache folder (default: :func:`default_root`).

    Returns:
        The folder in use, or None when the cache is off, numba is not installed or the folder
        cannot be written (then a warning is logged and every function compiles as before).
    """
    if "root" in _enabled:
        return _enabled["root"]
    base = default_root() if root is None else Path(root).expanduser()
    if base is None:
        return None
    try:
        import numba
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return None
    folder = base / versions_key()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        logger.warning("JIT cache folder %s is not writable (%s); UMAP compiles as before", folder,
                       exc)
        return None
    functions = []
    for name in JIT_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        functions += [
            f
            for key, f in vars(module).items()
            if isinstance(f, Dispatcher)
            and f.py_func.__module__ == name  # defined here, not imported
            and key not in UNCACHEABLE
            and isinstance(f._cache, NullCache)
        ]
    before = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(folder)  # read once, when each function's cache is built
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for f in functions:
                f.enable_caching()
    finally:
        numba.config.CACHE_DIR = before
    _enabled["root"] = folder
    logger.debug("JIT cache %s: %d numba functions", folder, len(functions))
    return folder
