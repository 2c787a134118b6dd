"""RecBole atomic ``.inter`` files (Zhao et al., CIKM 2021): read and write.

A header line names each tab-separated column as ``name:type`` (type one of ``token``,
``token_seq``, ``float``, ``float_seq``), e.g. ``user_id:token``, ``item_id:token``,
``rating:float``, ``timestamp:float``. The user and item columns are required; rating and
timestamp are optional (absent -> rating 1.0 / position in the user's rows, flagged in ``meta``).
Other columns are ignored.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from mmseq.data.readers._common import (
    READERS,
    BadRows,
    build_interactions,
    check_rating_range,
    parse_numbers,
    parse_seconds,
    read_lines,
    split_fields,
)
from mmseq.data.schema import Interactions
from mmseq.errors import DataError
from mmseq.io import atomic_write

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")


def _parse_header(path: Path, line: str, number: int) -> list[str]:
    names = []
    for column in line.split("\t"):
        name, _, kind = column.partition(":")
        if not name or kind not in FIELD_TYPES:
            raise DataError(
                f"{path}, line {number}: header column {column!r} is not 'name:type' "
                f"with type in {list(FIELD_TYPES)}"
            )
        names.append(name)
    return names


@READERS.register("recbole")
def read_recbole(
    path: str | Path,
    *,
    on_bad_row: str = "error",
    user_field: str = "user_id",
    item_field: str = "item_id",
    rating_field: str = "rating",
    time_field: str = "timestamp",
    rating_range: tuple[float, float] | None = None,
) -> Interactions:
    """Read a RecBole ``.inter`` file.

    Args:
        path: the ``.inter`` file (plain or gzip).
        on_bad_row: "error" or "skip" (default: "error").
        user_field: user column name (default: "user_id").
        item_field: item column name (default: "item_id").
        rating_field: rating column name, used when present (default: "rating").
        time_field: timestamp column name (seconds), used when present (default: "timestamp").
        rating_range: [low, high] of valid ratings; a rating outside is a bad row
            (default: None = any finite number).
    """
    path = Path(path)
    bad = BadRows(path, on_bad_row)
    rating_range = check_rating_range(rating_range)
    lines, line_nos, blank = read_lines(path, bad)
    names = _parse_header(path, lines[0], int(line_nos[0]))
    for field in (user_field, item_field):
        if field not in names:
            raise DataError(
                f"{path}, line {line_nos[0]}: header has no '{field}' column (columns: {names})"
            )
    if len(lines) == 1:
        raise DataError(f"{path}, line {line_nos[0] + 1}: no data rows after the header")
    table, rows = split_fields(lines[1:], line_nos[1:], "\t", len(names), bad)
    keep = np.ones(len(table), dtype=bool)
    rating = seconds = None
    if rating_field in names:
        rating, keep = parse_numbers(
            keep, table[:, names.index(rating_field)], rows, rating_field, bad
        )
    if time_field in names:
        seconds, keep = parse_seconds(
            keep, table[:, names.index(time_field)], rows, time_field, bad
        )
    return build_interactions(
        path=path,
        fmt="recbole",
        bad=bad,
        line_nos=rows,
        keep=keep,
        users=table[:, names.index(user_field)],
        items=table[:, names.index(item_field)],
        rating=rating,
        timestamp=seconds,
        rating_name=rating_field,
        rating_range=rating_range,
        rows_read=len(lines) - 1,
        blank_lines=blank,
        extra_meta={"columns": names},
    )


def write_recbole_inter(data: Interactions, path: str | Path) -> Path:
    """Write ``data`` as a RecBole ``.inter`` file (gzip when ``path`` ends in ``.gz``), atomically.

    Columns: ``user_id:token``, ``item_id:token``, then ``rating:float`` if
    ``meta["has_rating"]`` (default True) and ``timestamp:float`` if ``meta["has_time"]`` (default
    True), so that reading the file back gives the same table. Review text is not written.

    Raises:
        DataError: a raw id is empty or holds a tab or line break (it cannot be one token).
    """
    path = Path(path)
    for kind, ids in (("user", data.user_ids), ("item", data.item_ids)):
        for raw in ids.tolist():
            if not raw or any(c in raw for c in "\t\n\r"):
                raise DataError(
                    f"Cannot write {kind} id {raw!r} to {path}: empty or has a tab/newline"
                )
    header = ["user_id:token", "item_id:token"]
    columns = [data.user_ids[data.user].astype(str), data.item_ids[data.item].astype(str)]
    if data.meta.get("has_rating", True):
        header.append("rating:float")
        columns.append(data.rating.astype(np.float32).astype(str))
    if data.meta.get("has_time", True):
        header.append("timestamp:float")
        columns.append(data.timestamp.astype(np.int64).astype(str))
    body = "\n".join("\t".join(row) for row in zip(*(c.tolist() for c in columns)))
    payload = ("\t".join(header) + "\n" + body + ("\n" if len(data) else "")).encode("utf-8")
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)

    def write(tmp: Path) -> None:
        tmp.write_bytes(payload)

    return atomic_write(path, write)
