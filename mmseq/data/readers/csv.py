"""Generic delimited text with a header row (``*.csv``), plain or gzip.

Columns are chosen by name. The user and item columns are required. Rating, time and text columns
default to None = "use the column ``rating`` / ``timestamp`` / ``review`` if the header has it"; a
name given explicitly must exist. Fields may be quoted (RFC 4180), so review text may hold the
delimiter or line breaks; reported line numbers are those where a row starts.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from mmseq.data.readers._common import (
    READERS,
    BadRows,
    build_interactions,
    check_rating_range,
    decode_utf8,
    parse_numbers,
    parse_seconds,
    read_bytes,
)
from mmseq.data.schema import Interactions
from mmseq.errors import DataError

DEFAULT_COLUMNS = {"rating_col": "rating", "time_col": "timestamp", "text_col": "review"}


def _column(path: Path, line: int, header: list[str], option: str, name: str | None) -> int | None:
    """Index of the column for ``option``; None when optional and absent."""
    if name is None:
        default = DEFAULT_COLUMNS[option]
        return header.index(default) if default in header else None
    if name not in header:
        raise DataError(
            f"{path}, line {line}: no column '{name}' ({option}) in the header {header}"
        )
    return header.index(name)


@READERS.register("csv")
def read_csv(
    path: str | Path,
    *,
    on_bad_row: str = "error",
    user_col: str = "user_id",
    item_col: str = "item_id",
    rating_col: str | None = None,
    time_col: str | None = None,
    text_col: str | None = None,
    delimiter: str = ",",
    rating_range: tuple[float, float] | None = None,
) -> Interactions:
    """Read a delimited file with a header.

    Args:
        path: the file.
        on_bad_row: "error" or "skip" (default: "error"). Undecodable bytes always raise.
        user_col: user id column (default: "user_id").
        item_col: item id column (default: "item_id").
        rating_col: rating column (default: None = "rating" if present, else ratings are 1.0).
        time_col: Unix-seconds column (default: None = "timestamp" if present, else positions).
        text_col: review text column (default: None = "review" if present, else no text).
        delimiter: one-character field separator (default: ",").
        rating_range: [low, high] of valid ratings; a rating outside is a bad row
            (default: None = any finite number).
    """
    path = Path(path)
    bad = BadRows(path, on_bad_row)
    rating_range = check_rating_range(rating_range)
    text = decode_utf8(path, read_bytes(path))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    starts: list[int] = []
    blank = 0
    try:
        header = next(reader, None)
        while header is not None and not header:  # leading empty lines
            header = next(reader, None)
        if header is None:
            raise DataError(f"{path}, line 1: file is empty (no header and no data rows)")
        header_line = reader.line_num
        user_idx = header.index(user_col) if user_col in header else None
        item_idx = header.index(item_col) if item_col in header else None
        if user_idx is None or item_idx is None:
            missing = user_col if user_idx is None else item_col
            raise DataError(
                f"{path}, line {header_line}: no column '{missing}' in the header {header}"
            )
        rating_idx = _column(path, header_line, header, "rating_col", rating_col)
        time_idx = _column(path, header_line, header, "time_col", time_col)
        text_idx = _column(path, header_line, header, "text_col", text_col)
        ncols = len(header)
        previous = reader.line_num
        for row in reader:
            start, previous = previous + 1, reader.line_num
            if not row:
                blank += 1
                continue
            if len(row) != ncols:
                bad.add(
                    start, None, f"expected {ncols} fields (got {len(row)})", "wrong_field_count"
                )
                continue
            rows.append(row)
            starts.append(start)
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from None
    rows_read = len(rows) + bad.counts.get("wrong_field_count", 0)
    if rows_read == 0:
        raise DataError(f"{path}, line {header_line + 1}: no data rows after the header")
    line_nos = np.array(starts, dtype=np.int64)

    def column(j: int) -> np.ndarray:
        return np.array([row[j] for row in rows], dtype=object)

    keep = np.ones(len(rows), dtype=bool)
    rating = seconds = None
    if rating_idx is not None:
        rating, keep = parse_numbers(
            keep, column(rating_idx).astype(str), line_nos, header[rating_idx], bad
        )
    if time_idx is not None:
        seconds, keep = parse_seconds(
            keep, column(time_idx).astype(str), line_nos, header[time_idx], bad
        )
    return build_interactions(
        path=path,
        fmt="csv",
        bad=bad,
        line_nos=line_nos,
        keep=keep,
        users=column(user_idx),
        items=column(item_idx),
        rating=rating,
        timestamp=seconds,
        review=None if text_idx is None else column(text_idx),
        rating_name="rating" if rating_idx is None else header[rating_idx],
        rating_range=rating_range,
        rows_read=rows_read,
        blank_lines=blank,
        extra_meta={"columns": header},
    )
