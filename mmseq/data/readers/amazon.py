"""Amazon review data, 2014 (McAuley et al.) and 2018 (Ni et al.) JSON lines, plain or gzip.

One JSON object per line. Required keys: ``reviewerID`` and ``asin`` (non-empty strings),
``overall`` (a JSON number on the 1..5 star scale) and ``unixReviewTime`` (whole seconds >= 0).
``reviewText`` and
``summary`` are optional: a missing or null value becomes "" and is counted in
``meta["text_missing"]`` / ``meta["summary_missing"]``. Other keys (2014: ``helpful``,
``reviewTime``, ``reviewerName``; 2018: ``vote``, ``style``, ``verified``, ``image``) are ignored.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mmseq.data.readers._common import MAX_SECONDS, READERS, BadRows, build_interactions, read_lines
from mmseq.data.schema import Interactions

#: Amazon reviews give 1 to 5 stars.
RATING_RANGE = (1.0, 5.0)


class _Invalid:
    def __init__(self, problem: str) -> None:
        self.problem = problem


def _problem(record: dict[str, Any], key: str, expected: str) -> str:
    if key not in record:
        return "missing required field"
    return f"expected {expected} (got {json.dumps(record[key])[:60]})"


@READERS.register("amazon")
def read_amazon(path: str | Path, *, on_bad_row: str = "error") -> Interactions:
    """Read an Amazon 2014 or 2018 review file (``*.json`` or ``*.json.gz``).

    Args:
        path: the JSON-lines file.
        on_bad_row: "error" raises at the first bad line; "skip" drops and counts it
            (default: "error").

    Returns:
        Interactions with ``review`` and ``summary`` text; ``meta`` adds ``text_missing``,
        ``summary_missing`` and ``text_empty`` (rows whose review text is "").
    """
    path = Path(path)
    bad = BadRows(path, on_bad_row)
    lines, line_nos, blank = read_lines(path, bad)
    users: list[str] = []
    items: list[str] = []
    ratings: list[float] = []
    times: list[int] = []
    reviews: list[str] = []
    summaries: list[str] = []
    kept: list[int] = []
    missing = {"reviewText": 0, "summary": 0}
    loads = json.loads
    for number, line in zip(line_nos.tolist(), lines):
        try:
            rec = loads(line)
        except json.JSONDecodeError as exc:
            rec = _Invalid(f"invalid JSON ({exc.msg} at column {exc.colno})")
        except RecursionError:
            rec = _Invalid("invalid JSON (nested too deeply)")
        if isinstance(rec, _Invalid):  # reported outside the except block: no chained traceback
            bad.add(number, None, rec.problem, "invalid_json")
            continue
        if not isinstance(rec, dict):
            bad.add(
                number, None, f"expected a JSON object (got {type(rec).__name__})", "not_an_object"
            )
            continue
        user, item = rec.get("reviewerID"), rec.get("asin")
        if not isinstance(user, str) or not user:
            bad.add(
                number,
                "reviewerID",
                _problem(rec, "reviewerID", "a non-empty string"),
                "bad_reviewerID",
            )
            continue
        if not isinstance(item, str) or not item:
            bad.add(number, "asin", _problem(rec, "asin", "a non-empty string"), "bad_asin")
            continue
        rating: Any = rec.get("overall")
        if type(rating) not in (int, float):  # bool is excluded on purpose
            bad.add(number, "overall", _problem(rec, "overall", "a number"), "bad_overall")
            continue
        if not math.isfinite(rating):
            bad.add(number, "overall", f"expected a finite number (got {rating})", "bad_overall")
            continue
        seconds = rec.get("unixReviewTime")
        if type(seconds) is float and seconds.is_integer():
            seconds = int(seconds)
        if type(seconds) is not int:
            bad.add(
                number,
                "unixReviewTime",
                _problem(rec, "unixReviewTime", "whole seconds (an integer)"),
                "bad_unixReviewTime",
            )
            continue
        if not 0 <= seconds <= MAX_SECONDS:
            limit = "seconds >= 0" if seconds < 0 else f"seconds <= {MAX_SECONDS} (year 9999)"
            bad.add(
                number, "unixReviewTime", f"expected {limit} (got {seconds})", "bad_unixReviewTime"
            )
            continue
        text, summary = rec.get("reviewText"), rec.get("summary")
        if text is not None and not isinstance(text, str):
            bad.add(number, "reviewText", _problem(rec, "reviewText", "a string"), "bad_reviewText")
            continue
        if summary is not None and not isinstance(summary, str):
            bad.add(number, "summary", _problem(rec, "summary", "a string"), "bad_summary")
            continue
        if text is None:
            missing["reviewText"] += 1
            text = ""
        if summary is None:
            missing["summary"] += 1
            summary = ""
        users.append(user)
        items.append(item)
        ratings.append(rating)
        times.append(seconds)
        reviews.append(text)
        summaries.append(summary)
        kept.append(number)
    review = np.array(reviews, dtype=object)
    return build_interactions(
        path=path,
        fmt="amazon",
        bad=bad,
        line_nos=np.array(kept, dtype=np.int64),
        keep=np.ones(len(kept), dtype=bool),
        users=np.array(users, dtype=object),
        items=np.array(items, dtype=object),
        rating=np.array(ratings, dtype=np.float64),
        timestamp=np.array(times, dtype=np.int64),
        review=review,
        summary=np.array(summaries, dtype=object),
        rating_name="overall",
        rating_range=RATING_RANGE,
        rows_read=len(lines),
        blank_lines=blank,
        extra_meta={
            "text_missing": missing["reviewText"],
            "summary_missing": missing["summary"],
            "text_empty": int((review == "").sum()) if len(review) else 0,
        },
    )
