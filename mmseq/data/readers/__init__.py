"""Readers: raw interaction files -> :class:`~mmseq.data.schema.Interactions`.

Every reader is a function ``reader(path, *, on_bad_row="error", **options) -> Interactions``
registered in :data:`READERS` under its format name. Readers keep the file's row order, give users
and items dense ids in order of first appearance, and record what they read and skipped in
``meta`` (``source``, ``format``, ``rows_read``, ``skipped`` by reason, ``blank_lines``,
``has_rating``, ``has_time``, ``has_text``).

Bad input raises :class:`~mmseq.errors.DataError` with one line naming the file, the 1-based line
and the field. With ``on_bad_row="skip"`` a bad row is dropped instead, counted in
``meta["skipped"]`` by reason and logged as a warning. File-level problems (missing file, corrupt
or truncated gzip, empty file, undecodable CSV) always raise.

The helpers shared by the reader modules live in :mod:`mmseq.data.readers._common` (re-exported
here); the reader modules import only that module, so the package has no import cycle.
"""

from __future__ import annotations

import difflib
import gzip
import inspect
import json
import zlib
from pathlib import Path
from typing import Any

from mmseq.data.readers import amazon, csv, movielens, recbole, s3rec  # noqa: F401 (register)
from mmseq.data.readers._common import (
    BAD_ROW_POLICIES,
    MAX_SECONDS,
    READERS,
    BadRows,
    _show,
    build_interactions,
    check_file,
    check_integer_ids,
    check_rating_range,
    decode_utf8,
    factorize,
    parse_numbers,
    parse_seconds,
    positions_in_user,
    read_bytes,
    read_lines,
    split_fields,
)
from mmseq.data.schema import Interactions
from mmseq.errors import ConfigError, DataError, MmseqError


# ------------------------------------------------------------------------------------ entry points
def _first_line(path: Path) -> str:
    check_file(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as gz:
                head = gz.read(1 << 16)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}, line 1: truncated or corrupt gzip data ({exc})") from None
    for line in head.decode("utf-8", errors="replace").lstrip("\ufeff").split("\n"):
        if line.strip():
            return line.strip()
    raise DataError(f"{path}, line 1: file is empty (no data rows)")


def detect_format(path: str | Path) -> str:
    """The reader name for ``path``, from its name, else from its first non-empty line.

    ``*.inter`` -> ``recbole``; ``*.csv`` -> ``csv``; ``u.data`` or tab-separated lines of 4
    numbers -> ``movielens-tab``; ``ratings.dat`` or ``::``-separated lines -> ``movielens``; JSON
    lines with ``reviewerID`` and ``asin`` -> ``amazon``; whitespace-separated integers ->
    ``s3rec``.
    A trailing ``.gz`` is ignored.
    """
    path = Path(path)
    name = path.name.lower()
    base = name[:-3] if name.endswith(".gz") else name
    if base.endswith(".inter"):
        return "recbole"
    if base.endswith(".csv"):
        return "csv"
    if base == "u.data":
        return "movielens-tab"
    if base == "ratings.dat":
        return "movielens"
    first = _first_line(path)
    if base.endswith((".json", ".jsonl")) or first.startswith("{"):
        if '"reviewerID"' in first and '"asin"' in first:
            return "amazon"
        raise DataError(
            f"{path}, line 1: JSON without 'reviewerID' and 'asin' keys is no known format; "
            f"known formats: {READERS.names()}"
        )
    if "::" in first:
        return "movielens"
    fields = first.split("\t")
    if len(fields) == 4 and all(f.strip().replace(".", "", 1).isdigit() for f in fields):
        return "movielens-tab"
    if ":token" in first or ":float" in first:
        return "recbole"
    tokens = first.split()
    if len(tokens) >= 2 and all(t.isdigit() for t in tokens):
        return "s3rec"
    raise DataError(
        f"{path}: cannot detect the format from the name or line 1 ({_show(first)}); "
        f"known formats: {READERS.names()}; pass format=... explicitly"
    )


def load_interactions(path: str | Path, format: str = "auto", **options: Any) -> Interactions:
    """Read ``path`` with the reader ``format`` ("auto" = :func:`detect_format`).

    Args:
        path: the data file (plain or gzip).
        format: a name in :data:`READERS`, or "auto" (default: "auto").
        **options: reader options, e.g. ``on_bad_row="skip"`` or the CSV column names.

    Raises:
        DataError: unknown format (the message lists the known ones) or bad data.
        ConfigError: an option the reader does not take.
    """
    path = Path(path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in READERS:
        close = difflib.get_close_matches(fmt, READERS.names(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise DataError(f"{path}: unknown format '{fmt}'; known formats: {READERS.names()}{hint}")
    reader = READERS.get(fmt)
    params = inspect.signature(reader).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        valid = [p for p in params if p != "path"]
        raise ConfigError(f"Unknown option(s) {unknown} for format '{fmt}'; valid: {valid}")
    try:
        return reader(path, **options)
    except MmseqError:
        raise
    except (ValueError, OSError, EOFError, zlib.error, json.JSONDecodeError) as exc:
        # Safety net: a reader let a library error through; keep the one-line contract.
        raise DataError(f"{path}: cannot read as '{fmt}': {type(exc).__name__}: {exc}") from None


__all__ = [
    "BAD_ROW_POLICIES",
    "MAX_SECONDS",
    "READERS",
    "BadRows",
    "build_interactions",
    "check_file",
    "check_integer_ids",
    "check_rating_range",
    "decode_utf8",
    "detect_format",
    "factorize",
    "load_interactions",
    "parse_numbers",
    "parse_seconds",
    "positions_in_user",
    "read_bytes",
    "read_lines",
    "split_fields",
]
