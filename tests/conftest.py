"""Shared fixtures: the shared data root and a tiny hand-made interactions table."""

from __future__ import annotations

import functools
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


@functools.cache
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


@pytest.fixture(scope="session")
def gemm_rows_differ() -> str | None:
    """What :func:`_gemm_rows_exact` found on this CPU (None: its GEMM is row-invariant)."""
    return _gemm_rows_exact()


def pytest_report_header(config: pytest.Config) -> str:
    differs = _gemm_rows_exact()
    if differs is None:
        return "GEMM rows: invariant; trimmed vs padded passes are compared bit for bit"
    return f"GEMM rows: not invariant ({differs}); trimmed vs padded passes compared to rounding"


# Where the GEMM is not row-invariant, a trimmed pass and the padded one differ by the rounding
# of their differently shaped products only. Measured on AMD EPYC with the tests that use this
# bound: at most 9.8e-7 (absolute) on last states and scores, per-user metrics identical. The
# bound leaves an order of margin and stays far below what a trimming bug changes: dropping the
# oldest of 50 keys moves every row's last state by at least 2e-2 (BERT4Rec; SASRec 1.3e-1).
ROUNDING_RTOL = 1e-5
ROUNDING_ATOL = 1e-5


@pytest.fixture
def assert_kernel_identical(gemm_rows_differ: str | None):
    """``check(actual, expected, msg)``: bit-identity where this CPU's GEMM is row-invariant
    (the kernels mmseq.nn.padding measured on Intel Xeon); elsewhere equality up to the
    rounding of differently shaped products (ROUNDING_RTOL/ATOL), with why in the message."""
    import torch

    def check(actual, expected, msg: object = "") -> None:
        if gemm_rows_differ is None:
            assert torch.equal(actual, expected), msg
            return
        torch.testing.assert_close(
            actual, expected, rtol=ROUNDING_RTOL, atol=ROUNDING_ATOL,
            msg=lambda m: f"{m}\n{msg} (compared to rounding: {gemm_rows_differ})",
        )

    return check


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
