"""The on-disk numba cache of UMAP's kernels (topics/jit_cache.py): where it lives, what it turns
on, and that a cached kernel gives the very numbers a fresh compile gives."""

from __future__ import annotations

import numpy as np
import pytest

from topics import jit_cache

pytest.importorskip("umap")


@pytest.fixture
def fresh(monkeypatch):
    """Forget this process's JIT cache folder (and the caches it gave UMAP's functions), and give
    the functions their old caches back afterwards (a deleted tmp folder must not receive later
    compiles)."""
    import importlib

    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    saved = {}
    for name in jit_cache.JIT_MODULES:
        for key, f in vars(importlib.import_module(name)).items():
            if isinstance(f, Dispatcher):
                saved[f] = f._cache
                # Undo an earlier enable_jit_cache of this process (a topic stage run by another
                # test): its functions would otherwise count as cached by their library.
                if f.py_func.__module__ == name and key not in jit_cache.UNCACHEABLE:
                    f._cache = NullCache()
    monkeypatch.setattr(jit_cache, "_enabled", {})
    yield
    for f, cache in saved.items():
        f._cache = cache


def test_folder_from_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(jit_cache.ENV_VAR, str(tmp_path / "jit"))
    assert jit_cache.default_root() == tmp_path / "jit"
    for off in ("off", "0", ""):
        monkeypatch.setenv(jit_cache.ENV_VAR, off)
        assert jit_cache.default_root() is None
    monkeypatch.delenv(jit_cache.ENV_VAR)
    assert jit_cache.default_root().parts[-3:] == (".cache", "mmseq", "numba")


def test_off_changes_nothing(monkeypatch, fresh) -> None:
    import umap.umap_

    monkeypatch.setenv(jit_cache.ENV_VAR, "off")
    before = umap.umap_.smooth_knn_dist._cache
    assert jit_cache.enable_jit_cache() is None
    assert umap.umap_.smooth_knn_dist._cache is before


def test_unwritable_folder_is_skipped_with_a_warning(tmp_path, fresh, caplog) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert jit_cache.enable_jit_cache(blocker / "jit") is None
    assert "not writable" in caplog.text


_CHILD = """
import sys
import numpy as np
from topics.jit_cache import enable_jit_cache
import umap.umap_
enable_jit_cache(sys.argv[1])
kernel = umap.umap_.smooth_knn_dist
dists = np.sort(np.random.default_rng(0).random((50, 6)).astype(np.float32), axis=1)
sigma, rho = kernel(dists, 6.0)
print(sum(kernel.stats.cache_hits.values()), sigma.tobytes().hex(), rho.tobytes().hex())
"""


def test_kernels_cache_under_a_versioned_folder_and_load_equal(tmp_path, fresh) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pynndescent.pynndescent_ as pnn
    import umap.umap_
    from numba.core.caching import NullCache

    kernel = umap.umap_.smooth_knn_dist
    folder = jit_cache.enable_jit_cache(tmp_path)
    assert folder == tmp_path / jit_cache.versions_key()
    assert jit_cache.enable_jit_cache(tmp_path / "elsewhere") == folder  # first call decides
    assert not isinstance(kernel._cache, NullCache)
    for name in jit_cache.UNCACHEABLE:  # numba refuses these: left alone, no warning each run
        assert isinstance(getattr(pnn, name)._cache, NullCache)

    dists = np.sort(np.random.default_rng(0).random((50, 6)).astype(np.float32), axis=1)
    sigma, rho = kernel(dists, 6.0)
    kernel.recompile()  # compiled earlier in this process? compile again, now into the cache
    assert list(folder.rglob("*smooth_knn_dist*.nbi"))

    # A new process loads the kernel from the cache (no compile) and gets the same bits.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        capture_output=True, text=True, env=env, check=True, timeout=300,
    ).stdout.split()
    assert int(out[0]) >= 1, "expected a cache hit in the child process"
    assert out[1:] == [sigma.tobytes().hex(), rho.tobytes().hex()]
