"""S3-Rec sequence files (Zhou et al., CIKM 2020): one line per user, ``user item item ...``.

Items on a line are in chronological order; the files carry no ratings, times or text. Rows get
rating 1.0 (``meta["has_rating"]`` False) and, as timestamp, their 0-based position in the user's
sequence (``meta["has_time"]`` False). Ids are integers, stored as their decimal strings.

An ``<stem>_item2attributes.json`` (or ``.json.gz``) beside ``<stem>.txt[.gz]`` maps item id ->
list of attribute ids; it becomes ``Interactions.item_attributes``, a (num_items, num_attributes)
0/1 CSR matrix whose column ``j`` is the ``j``-th smallest attribute id (S3-Rec's ids run 1..A, so
column = id - 1 there).
"""

from __future__ import annotations

import dataclasses
import json
from itertools import chain
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mmseq.data.readers._common import (
    READERS,
    BadRows,
    build_interactions,
    decode_utf8,
    read_bytes,
    read_lines,
)
from mmseq.data.schema import Interactions
from mmseq.errors import DataError

ATTRIBUTE_SUFFIX = "_item2attributes.json"


def find_attribute_file(path: Path) -> Path | None:
    """The ``*_item2attributes.json(.gz)`` beside an S3-Rec sequence file, or None."""
    stem = path.name[:-3] if path.name.endswith(".gz") else path.name
    stem = stem[:-4] if stem.endswith(".txt") else stem
    for name in (stem + ATTRIBUTE_SUFFIX, stem + ATTRIBUTE_SUFFIX + ".gz"):
        candidate = path.parent / name
        if candidate.is_file():
            return candidate
    return None


def read_item_attributes(path: Path, item_ids: np.ndarray) -> tuple[sp.csr_matrix, dict]:
    """The (len(item_ids), A) 0/1 CSR of an item2attributes file, and counts for ``meta``.

    Items of the file absent from ``item_ids`` are ignored and counted; an attribute listed twice
    for one item is kept once and counted in ``attribute_duplicates_dropped``.
    """
    text = decode_utf8(path, read_bytes(path))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}, line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})"
        ) from None
    if not isinstance(obj, dict):
        raise DataError(
            f"{path}, line 1: expected a JSON object mapping item id -> list of attribute ids "
            f"(got {type(obj).__name__})"
        )
    index = {iid: j for j, iid in enumerate(item_ids.tolist())}
    rows: list[int] = []
    lengths: list[int] = []
    attributes: list[list[int]] = []
    unknown = 0
    for key, attrs in obj.items():
        if not isinstance(attrs, list) or any(type(a) is not int for a in attrs):
            raise DataError(
                f"{path}, item '{key}': expected a list of integer attribute ids "
                f"(got {json.dumps(attrs)[:60]})"
            )
        try:
            row = index.get(str(int(key)))
        except ValueError:
            raise DataError(f"{path}, item '{key}': expected an integer item id") from None
        if row is None:
            unknown += 1
            continue
        rows.append(row)
        lengths.append(len(attrs))
        attributes.append(attrs)
    flat = np.fromiter(chain.from_iterable(attributes), dtype=np.int64, count=sum(lengths))
    attribute_ids, cols = np.unique(flat, return_inverse=True)
    matrix = sp.csr_matrix(
        (np.ones(len(flat), dtype=np.float32), (np.repeat(rows, lengths), cols.reshape(-1))),
        shape=(len(item_ids), len(attribute_ids)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # a repeated attribute of one item is still one attribute
    counts = {
        "attribute_file": str(path),
        "num_attributes": int(len(attribute_ids)),
        "items_with_attributes": len(rows),  # listed in the file (possibly with an empty list)
        "items_with_nonempty_attributes": int((matrix.getnnz(axis=1) > 0).sum()),
        "attribute_duplicates_dropped": int(len(flat) - matrix.nnz),
        "attribute_items_not_in_data": unknown,
    }
    return matrix, counts


@READERS.register("s3rec")
def read_s3rec(
    path: str | Path,
    *,
    on_bad_row: str = "error",
    attributes: bool = True,
    attributes_path: str | Path | None = None,
) -> Interactions:
    """Read an S3-Rec ``<name>.txt(.gz)`` sequence file (and its item attributes).

    Args:
        path: the sequence file.
        on_bad_row: "error" or "skip" (a bad line is dropped whole) (default: "error").
        attributes: look for the ``*_item2attributes.json(.gz)`` side file (default: True).
        attributes_path: an explicit attribute file (default: None = the side file, if any).
    """
    path = Path(path)
    bad = BadRows(path, on_bad_row)
    lines, line_nos, blank = read_lines(path, bad)
    rows_read = len(lines)
    rows = [line.split() for line in lines]
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    keep = bad.flag(
        np.ones(len(rows), dtype=bool),
        lengths < 2,
        line_nos,
        None,
        "expected a user id followed by at least one item id",
        lines,
        "empty_sequence",
    )
    flat = np.array(list(chain.from_iterable(r for r, k in zip(rows, keep) if k)), dtype=str)
    try:
        ids = flat.astype(np.int64)
    except (ValueError, OverflowError):  # a non-integer token, or one beyond int64
        ids = None
    if ids is None:  # slow path, only for a bad file: find the lines with non-integer ids
        for j in np.flatnonzero(keep):
            token = next((t for t in rows[j] if not _is_int(t)), None)
            if token is not None:
                bad.add(
                    int(line_nos[j]),
                    None,
                    f"expected integer ids (got {token[:40]!r})",
                    "non_integer_id",
                )
                keep[j] = False
        flat = np.array(list(chain.from_iterable(r for r, k in zip(rows, keep) if k)), dtype=str)
        ids = flat.astype(np.int64)
    lengths, line_nos = lengths[keep], line_nos[keep]
    starts = np.cumsum(lengths) - lengths
    is_user = np.zeros(len(ids), dtype=bool)
    is_user[starts] = True
    data = build_interactions(
        path=path,
        fmt="s3rec",
        bad=bad,
        line_nos=np.repeat(line_nos, lengths - 1),
        keep=np.ones(int((lengths - 1).sum()), dtype=bool),
        users=np.repeat(ids[starts], lengths - 1),
        items=ids[~is_user],
        rows_read=rows_read,
        blank_lines=blank,
        extra_meta={"sequences": int(len(lengths))},
    )
    side = Path(attributes_path) if attributes_path is not None else None
    if side is None and attributes:
        side = find_attribute_file(path)
    if side is None:
        return data
    matrix, counts = read_item_attributes(side, data.item_ids)
    return dataclasses.replace(data, item_attributes=matrix, meta={**data.meta, **counts})


def _is_int(token: str) -> bool:
    """``token`` is a decimal integer within int64."""
    try:
        value = int(token)
    except ValueError:
        return False
    return -(2**63) <= value < 2**63
