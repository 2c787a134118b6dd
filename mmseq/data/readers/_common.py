"""Helpers shared by the reader modules: the registry, the bad-row policy, raw text, columns.

The reader modules import these from here, never from the package ``__init__``, so that
``mmseq.data.readers`` has no import cycle: ``__init__`` imports the reader modules (which
register themselves in :data:`READERS`), and they import only this module.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from mmseq.data.schema import Interactions
from mmseq.errors import ConfigError, DataError
from mmseq.registry import Registry

logger = logging.getLogger("mmseq.data.readers")

READERS: Registry[Callable[..., Interactions]] = Registry("data format")
BAD_ROW_POLICIES = ("error", "skip")
#: Latest Unix time accepted (9999-12-31T23:59:59Z): later ones overflow dates and int64 maths.
MAX_SECONDS = 253_402_300_799


# ------------------------------------------------------------------------------------ bad rows
def _show(value: Any, limit: int = 60) -> str:
    text = repr(value if not isinstance(value, np.generic) else value.item())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BadRows:
    """Applies the ``on_bad_row`` policy of one read.

    ``"error"`` raises :class:`DataError` at the first bad row; ``"skip"`` counts bad rows by reason
    and :meth:`summary` logs one warning per reason.
    """

    def __init__(self, path: Path, policy: str) -> None:
        if policy not in BAD_ROW_POLICIES:
            raise ConfigError(
                f"Expected 'on_bad_row' to be one of {list(BAD_ROW_POLICIES)} (got {policy!r})"
            )
        self.path = path
        self.policy = policy
        self.counts: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def message(self, line: int, field: str | None, problem: str) -> str:
        where = f"{self.path}, line {line}" + (f", field '{field}'" if field else "")
        return f"{where}: {problem}"

    def add(self, line: int, field: str | None, problem: str, reason: str, count: int = 1) -> None:
        """Report one bad row (or ``count`` rows of one reason, ``line`` being the first)."""
        msg = self.message(line, field, problem)
        if self.policy == "error":
            raise DataError(msg)
        self.counts[reason] = self.counts.get(reason, 0) + count
        self.examples.setdefault(reason, msg)

    def flag(
        self,
        keep: np.ndarray,
        bad: np.ndarray,
        line_nos: np.ndarray,
        field: str | None,
        problem: str,
        values: np.ndarray | list | None,
        reason: str,
    ) -> np.ndarray:
        """Rows still kept where ``bad`` holds are bad; returns the updated keep mask."""
        hit = keep & bad
        if not hit.any():
            return keep
        first = int(np.flatnonzero(hit)[0])
        got = "" if values is None else f" (got {_show(values[first])})"
        self.add(int(line_nos[first]), field, problem + got, reason, count=int(hit.sum()))
        return keep & ~bad

    def summary(self) -> dict[str, int]:
        """Skipped counts by reason; logs a warning per reason (skips are never silent)."""
        for reason in sorted(self.counts):
            logger.warning(
                "%s: skipped %d bad row(s) (%s); first: %s",
                self.path,
                self.counts[reason],
                reason,
                self.examples[reason],
            )
        return dict(sorted(self.counts.items()))


# ------------------------------------------------------------------------------------ raw text
def check_file(path: Path) -> None:
    """A data path must be an existing regular file; a directory or a missing path says so."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a data file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic bytes."""
    check_file(path)
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        if path.name.endswith(".gz") and raw:
            raise DataError(f"{path}, line 1: not a gzip file (no gzip header) although named .gz")
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        problem = str(exc) or type(exc).__name__
    # Decompress again chunk by chunk only to find how far the good data reaches (the line).
    parts: list[bytes] = []
    dec = zlib.decompressobj(31)
    try:
        for start in range(0, len(raw), 1 << 16):
            parts.append(dec.decompress(raw[start : start + (1 << 16)]))
            if dec.eof:
                break
    except zlib.error:
        pass
    line = b"".join(parts).count(b"\n") + 1
    raise DataError(
        f"{path}, line {line}: truncated or corrupt gzip data ({problem}); "
        "re-download or re-compress the file"
    ) from None


def decode_utf8(path: Path, data: bytes) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped); bad bytes -> DataError naming the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}, line {line}: bytes {data[exc.start : exc.start + 4]!r} are not valid UTF-8; "
            "re-encode the file as UTF-8"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def read_lines(path: Path, bad: BadRows) -> tuple[list[str], np.ndarray, int]:
    """Non-empty lines, their 1-based line numbers, and the count of empty lines inside the file.

    Undecodable lines are bad rows (reason ``non_utf8``) under the ``skip`` policy.
    """
    data = read_bytes(path)
    try:
        text = decode_utf8(path, data)
        lines = (text.replace("\r\n", "\n") if "\r" in text else text).split("\n")
        undecodable: list[int] = []
    except DataError:
        if bad.policy == "error":
            raise
        lines, undecodable = [], []
        for number, chunk in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
            try:
                lines.append(chunk.removesuffix(b"\r").decode("utf-8"))
            except UnicodeDecodeError:
                bad.add(number, None, "bytes are not valid UTF-8", "non_utf8")
                lines.append("")
                undecodable.append(number - 1)
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    keep = np.flatnonzero(lengths > 0)
    if len(keep) == 0:
        if undecodable:
            raise DataError(f"{path}: no valid rows left (skipped by reason: {bad.counts})")
        raise DataError(f"{path}, line 1: file is empty (no data rows)")
    blank = lengths == 0
    blank[undecodable] = False
    inner_blank = int(blank[: keep[-1]].sum())
    kept = lines if len(keep) == len(lines) else [lines[i] for i in keep]
    return kept, keep + 1, inner_blank


def split_fields(
    lines: list[str], line_nos: np.ndarray, sep: str, ncols: int, bad: BadRows
) -> tuple[np.ndarray, np.ndarray]:
    """Split each line into ``ncols`` fields by ``sep``: a (N, ncols) str array and line numbers."""
    counts = np.fromiter(map(str.count, lines, repeat(sep)), dtype=np.int64, count=len(lines))
    keep = bad.flag(
        np.ones(len(lines), dtype=bool),
        counts != ncols - 1,
        line_nos,
        None,
        f"expected {ncols} fields separated by {sep!r}",
        counts + 1,
        "wrong_field_count",
    )
    if not keep.all():
        lines = [line for line, k in zip(lines, keep) if k]
        line_nos = line_nos[keep]
    if not lines:
        return np.empty((0, ncols), dtype=str), line_nos
    tokens = "\n".join(lines).replace(sep, "\n").split("\n")
    return np.array(tokens, dtype=str).reshape(-1, ncols), line_nos


# ------------------------------------------------------------------------------------ columns
def parse_numbers(
    keep: np.ndarray, values: np.ndarray, line_nos: np.ndarray, field: str, bad: BadRows
) -> tuple[np.ndarray, np.ndarray]:
    """Parse a str column as finite float64; returns (values, keep) with bad rows flagged."""
    values = np.asarray(values)
    missing = values == ""
    keep = bad.flag(keep, missing, line_nos, field, "missing value", None, f"missing_{field}")
    filled = np.where(missing, "nan", values)
    try:
        out = filled.astype(np.float64)
    except ValueError:
        out = None
    if out is None:  # slow path, only for a file with a bad value: find which rows
        out = np.full(len(values), np.nan)
        non_numeric = np.zeros(len(values), dtype=bool)
        for j, value in enumerate(filled.tolist()):
            try:
                out[j] = float(value)
            except ValueError:
                non_numeric[j] = True
        keep = bad.flag(
            keep, non_numeric, line_nos, field, "expected a number", values, f"non_numeric_{field}"
        )
    keep = bad.flag(
        keep,
        ~np.isfinite(out),
        line_nos,
        field,
        "expected a finite number",
        values,
        f"non_finite_{field}",
    )
    return out, keep


def parse_seconds(
    keep: np.ndarray, values: np.ndarray, line_nos: np.ndarray, field: str, bad: BadRows
) -> tuple[np.ndarray, np.ndarray]:
    """Parse a str column of Unix seconds (>= 0; fractions are floored) as int64."""
    seconds, keep = parse_numbers(keep, values, line_nos, field, bad)
    keep = bad.flag(
        keep, seconds < 0, line_nos, field, "expected seconds >= 0", values, f"negative_{field}"
    )
    keep = bad.flag(
        keep,
        seconds > MAX_SECONDS,
        line_nos,
        field,
        f"expected seconds <= {MAX_SECONDS} (year 9999)",
        values,
        f"too_late_{field}",
    )
    return np.floor(np.where(keep, seconds, 0.0)).astype(np.int64), keep


def check_integer_ids(
    keep: np.ndarray, values: np.ndarray, line_nos: np.ndarray, field: str, bad: BadRows
) -> np.ndarray:
    """Flag ids that are not non-negative decimal integers (ASCII digits, at most 18 of them)."""
    values = np.asarray(values, dtype=str)
    not_digits = (np.char.strip(values, "0123456789") != "") | (values == "")
    too_long = np.char.str_len(values) > 18
    return bad.flag(
        keep,
        not_digits | too_long,
        line_nos,
        field,
        "expected an integer id",
        values,
        f"non_integer_{field}",
    )


def check_rating_range(rating_range: tuple[float, float] | None) -> tuple[float, float] | None:
    """``rating_range`` as (low, high) floats, finite with low <= high (None passes)."""
    if rating_range is None:
        return None
    try:
        low, high = (float(v) for v in rating_range)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Expected 'rating_range' to be [low, high] numbers (got {rating_range!r})"
        ) from None
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ConfigError(
            f"Expected 'rating_range' [low, high] finite with low <= high (got {rating_range!r})"
        )
    return low, high


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense int64 codes in order of first appearance, and the raw values (as str) in that order."""
    values = np.asarray(values)
    if values.dtype == object:
        values = values.astype(str)
    uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[inverse.reshape(-1)], uniq[order].astype(str).astype(object)


def positions_in_user(user: np.ndarray) -> np.ndarray:
    """0-based position of each row among its user's rows, in row order (S3-Rec pseudo-time)."""
    order = np.argsort(user, kind="stable")
    counts = np.bincount(user)
    starts = np.cumsum(counts) - counts
    pos = np.empty(len(user), dtype=np.int64)
    pos[order] = np.arange(len(user)) - starts[user[order]]
    return pos


def build_interactions(
    *,
    path: Path,
    fmt: str,
    bad: BadRows,
    line_nos: np.ndarray,
    keep: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    rating: np.ndarray | None = None,
    timestamp: np.ndarray | None = None,
    review: np.ndarray | None = None,
    summary: np.ndarray | None = None,
    rating_name: str = "rating",
    rating_range: tuple[float, float] | None = None,
    rows_read: int | None = None,
    blank_lines: int = 0,
    extra_meta: dict[str, Any] | None = None,
) -> Interactions:
    """Apply ``keep``, densify ids, fill rating 1.0 / positions where absent, and record meta.

    ``rows_read`` is the number of data rows in the file (default: ``len(keep)``);
    ``rating_name`` names the rating field in messages; a rating outside ``rating_range``
    (``[low, high]``, None = any finite number) is a bad row.
    """
    for field, ids in (("user", users), ("item", items)):
        if ids.dtype.kind in "UO":
            keep = bad.flag(
                keep, ids == "", line_nos, field, "missing id", None, f"missing_{field}"
            )
    if rating is not None:  # finite as float64 but beyond float32 would silently become inf
        with np.errstate(over="ignore"):
            too_big = ~np.isfinite(np.asarray(rating, dtype=np.float64).astype(np.float32))
        keep = bad.flag(
            keep,
            too_big,
            line_nos,
            rating_name,
            "expected a value within float32 range",
            rating,
            "rating_out_of_range",
        )
        if rating_range is not None:
            low, high = rating_range
            values = np.asarray(rating, dtype=np.float64)
            keep = bad.flag(
                keep,
                (values < low) | (values > high),
                line_nos,
                rating_name,
                f"expected a rating in [{low:g}, {high:g}]",
                rating,
                "rating_outside_scale",
            )
    skipped = bad.summary()
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise DataError(f"{path}: no valid rows left (skipped by reason: {skipped})")
    user, user_ids = factorize(users[rows])
    item, item_ids = factorize(items[rows])
    n = len(rows)
    meta: dict[str, Any] = {
        "source": str(path),
        "format": fmt,
        "rows_read": int(len(keep) if rows_read is None else rows_read),
        "skipped": skipped,
        "blank_lines": int(blank_lines),
        "has_rating": rating is not None,
        "has_time": timestamp is not None,
        "has_text": review is not None,
    }
    meta.update(extra_meta or {})
    return Interactions(
        user=user,
        item=item,
        rating=np.ones(n, np.float32)
        if rating is None
        else np.asarray(rating)[rows].astype(np.float32),
        timestamp=(
            positions_in_user(user)
            if timestamp is None
            else np.asarray(timestamp)[rows].astype(np.int64)
        ),
        user_ids=user_ids,
        item_ids=item_ids,
        review=None if review is None else np.asarray(review, dtype=object)[rows],
        summary=None if summary is None else np.asarray(summary, dtype=object)[rows],
        meta=meta,
    )
