"""Shared fixtures: the shared data root and a tiny hand-made interactions table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mmseq.data.schema import Interactions

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MMSEQ_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# UMAP's compiled kernels (topics/jit_cache.py) go to a folder of this test session, not to the
# user's ~/.cache (child processes started by tests inherit it).
if "MMSEQ_JIT_CACHE" not in os.environ:
    import tempfile

    os.environ["MMSEQ_JIT_CACHE"] = tempfile.mkdtemp(prefix="mmseq-test-jit-")


def _gemm_rows_exact() -> str | None:
    """None if this CPU's GEMM gives every row count the big product's rows bit for bit (what
    mmseq.nn.padding measured on Intel Xeon and its trimming relies on), else what differed."""
    import torch

    from mmseq.nn.padding import EXACT_MIN_ROWS, small_gemm_rows

    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        for inner in (64, 128, 256, 1024):
            layer = torch.nn.Linear(inner, 64)
            x = torch.randn(600, inner)
            big = layer(x)
            for rows in (small_gemm_rows(inner) + 1, EXACT_MIN_ROWS, 37):
                if not torch.equal(layer(x[:rows]), big[:rows]):
                    return f"{rows} rows of inner size {inner} differ from the 600-row product's"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("bit_exact_kernels")]
    if not marked:
        return
    differs = _gemm_rows_exact()
    if differs is None:
        return
    import platform

    skip = pytest.mark.skip(reason=(
        f"this CPU's GEMM kernels ({platform.machine()}) are not row-invariant: {differs}; the "
        "bit-identity asserted here was measured on other kernels (Intel Xeon) and does not hold"
    ))
    for item in marked:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests marked ``data`` skip (with the reason) when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def tiny_interactions() -> Interactions:
    """3 users x 4 items, 10 rows, with ratings, times (seconds) and review text.

    user 0: items 0,1,2,3 at t=1..4 days; user 1: items 1,2,3 ; user 2: items 0,2,3.
    """
    day = 86400
    user = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2], dtype=np.int64)
    item = np.array([0, 1, 2, 3, 1, 2, 3, 0, 2, 3], dtype=np.int64)
    rating = np.array([5, 4, 3, 5, 2, 5, 4, 1, 3, 5], dtype=np.float32)
    ts = np.array([1, 2, 3, 4, 1, 3, 5, 2, 2, 6], dtype=np.int64) * day
    review = np.array(
        [
            "Great strings. Bright tone.",
            "The cable hums. Poor shielding.",
            "Solid tuner. Easy to read.",
            "Lovely strings, warm tone.",
            "Cable broke after a week.",
            "Tuner clips on well.",
            "Strings feel smooth.",
            "Bad cable, buzzing.",
            "Accurate tuner.",
            "Best strings so far.",
        ],
        dtype=object,
    )
    return Interactions(
        user=user,
        item=item,
        rating=rating,
        timestamp=ts,
        user_ids=np.array(["u0", "u1", "u2"], dtype=object),
        item_ids=np.array(["i0", "i1", "i2", "i3"], dtype=object),
        review=review,
        summary=np.array(["s"] * 10, dtype=object),
        meta={"source": "tiny", "has_rating": True, "has_time": True},
    )
