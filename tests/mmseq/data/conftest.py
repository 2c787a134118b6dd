"""Fixtures for the data tests: writing small raw files by hand (plain or gzip)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    """``write_file(name, content)``: text (UTF-8) or bytes; gzip-compressed when name ends .gz."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        data = content.encode("utf-8") if isinstance(content, str) else content
        path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
        return path

    return write


@pytest.fixture
def review() -> Callable[..., str]:
    """``review(user, item, rating, time, **extra)``: one Amazon JSON line (None values omitted)."""

    def make(user: Any, item: Any, rating: Any, time: Any, **extra: Any) -> str:
        record = {
            "reviewerID": user,
            "asin": item,
            "overall": rating,
            "unixReviewTime": time,
            **extra,
        }
        return json.dumps({k: v for k, v in record.items() if v is not None})

    return make
