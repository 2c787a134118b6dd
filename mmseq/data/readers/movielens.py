"""MovieLens ratings (Harper & Konstan, 2015): ``ratings.dat`` and ``u.data``, plain or gzip.

``movielens``: ML-1M/10M ``ratings.dat``, ``UserID::MovieID::Rating::Timestamp`` per line.
``movielens-tab``: ML-100K ``u.data``, ``user<TAB>item<TAB>rating<TAB>timestamp`` per line.
No header, no text; timestamps are Unix seconds. User and movie ids are non-negative integers
(an id such as "200.5" or "abc" is a bad row). Ratings: 1..5 stars in ML-100K and ML-1M; ML-10M's
``ratings.dat`` has half stars from 0.5, so ``movielens`` accepts [0.5, 5] and ``movielens-tab``
[1, 5].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmseq.data.readers._common import (
    READERS,
    BadRows,
    build_interactions,
    check_integer_ids,
    parse_numbers,
    parse_seconds,
    read_lines,
    split_fields,
)
from mmseq.data.schema import Interactions

RATING_RANGES = {"movielens": (0.5, 5.0), "movielens-tab": (1.0, 5.0)}


def _read(path: str | Path, sep: str, fmt: str, on_bad_row: str) -> Interactions:
    path = Path(path)
    bad = BadRows(path, on_bad_row)
    lines, line_nos, blank = read_lines(path, bad)
    table, line_nos = split_fields(lines, line_nos, sep, 4, bad)
    keep = np.ones(len(table), dtype=bool)
    keep = check_integer_ids(keep, table[:, 0], line_nos, "user", bad)
    keep = check_integer_ids(keep, table[:, 1], line_nos, "item", bad)
    rating, keep = parse_numbers(keep, table[:, 2], line_nos, "rating", bad)
    seconds, keep = parse_seconds(keep, table[:, 3], line_nos, "timestamp", bad)
    return build_interactions(
        path=path,
        fmt=fmt,
        bad=bad,
        line_nos=line_nos,
        keep=keep,
        users=table[:, 0],
        items=table[:, 1],
        rating=rating,
        timestamp=seconds,
        rating_range=RATING_RANGES[fmt],
        rows_read=len(lines),
        blank_lines=blank,
    )


@READERS.register("movielens")
def read_movielens(path: str | Path, *, on_bad_row: str = "error") -> Interactions:
    """Read a ``::``-separated ``ratings.dat`` (ML-1M / ML-10M).

    Args:
        path: the ratings file.
        on_bad_row: "error" or "skip" (default: "error").
    """
    return _read(path, "::", "movielens", on_bad_row)


@READERS.register("movielens-tab")
def read_movielens_tab(path: str | Path, *, on_bad_row: str = "error") -> Interactions:
    """Read a tab-separated ``u.data`` (ML-100K).

    Args:
        path: the ratings file.
        on_bad_row: "error" or "skip" (default: "error").
    """
    return _read(path, "\t", "movielens-tab", on_bad_row)
