"""Training reviews -> sentences, keeping the link sentence -> review row (methods.md 1.1 step 1).

The splitter is a small regular expression (no NLTK data, nothing downloaded). It is vectorised: all
reviews are joined into ONE string with a NUL separator and split in one ``re.split`` pass; the
review of each sentence is then found with ``np.searchsorted`` over the review start offsets. The
only per-review Python work is turning odd values (None, NaN, numbers) into "".

Only the rows handed in are read. The caller passes the TRAINING split (``split.fit``), which
keeps validation/test reviews away from the topic model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmseq.data.schema import Interactions
from mmseq.errors import DataError

_SEP = "\x00"

# Sentence boundaries, for ONE ``re.split`` over all reviews joined by the NUL separator. Group 1 is
# the whole boundary; group 2 the terminal punctuation (and closing quotes/brackets), which goes
# back onto its sentence. Boundaries: the review separator; line breaks; a run of . ! ? followed by
# whitespace, except after a few abbreviations and single capital initials ("J. S. Bach"); and the
# missing-space case "great.The" common in Amazon reviews. Every alternative starts by consuming a
# character, so the engine skips most positions fast (a leading look-behind made it 3x slower).
_BOUNDARY = re.compile(
    "("
    + _SEP
    + r"|[\r\n]\s*"
    + r"|([.!?]+(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bvs\.)"
    + r"(?<!e\.g\.)(?<!i\.e\.)(?<!\b[A-Z]\.)"
    + r"(?:[\"')\]]*(?=\s)|(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])))\s*"
    + ")"
)
_SPACES = re.compile(r"[^\S\r\n]+")  # whitespace runs other than line breaks
_WORD = re.compile(r"\w")


@dataclass(frozen=True, eq=False)
class SentenceTable:
    """Sentences of a set of reviews, each linked to the row of its review.

    Attributes:
        text: (S,) object array of sentences (whitespace collapsed, stripped), review order.
        row: (S,) int64 row of the sentence's review in the table that was split.
        num_reviews: rows read.
        empty_reviews: rows that gave no sentence (empty, blank, punctuation only or not text).
        non_text_reviews: rows whose review was not a string (None, NaN, a number); counted in
            ``empty_reviews`` as well.
        dropped_sentences: pieces dropped as too short or without a letter or digit.
    """

    text: np.ndarray
    row: np.ndarray
    num_reviews: int
    empty_reviews: int
    non_text_reviews: int
    dropped_sentences: int

    def __len__(self) -> int:
        return len(self.text)

    def counts(self) -> dict[str, int]:
        """The bookkeeping counts, for ``meta`` and logs."""
        return {
            "reviews": self.num_reviews,
            "sentences": len(self),
            "empty_reviews": self.empty_reviews,
            "non_text_reviews": self.non_text_reviews,
            "dropped_sentences": self.dropped_sentences,
        }


def split_sentences(reviews: np.ndarray | list, *, min_chars: int = 2) -> SentenceTable:
    """Split each review into sentences with a regex splitter (offline, vectorised).

    Args:
        reviews: (N,) review texts; values that are not strings count as empty reviews.
        min_chars: shortest sentence kept, in characters after stripping (default: 2). Pieces
            without any letter or digit ("!!!", ":-)") are dropped as well; both are counted.

    Returns:
        A :class:`SentenceTable` whose ``row`` indexes ``reviews``.
    """
    n = len(reviews)
    texts = [r if isinstance(r, str) else "" for r in reviews]
    non_text = sum(1 for r in reviews if not isinstance(r, str))
    joined = _SEP.join(texts)
    if joined.count(_SEP) != max(n - 1, 0):  # a review holds the separator itself (very rare)
        joined = _SEP.join(t.replace(_SEP, " ") for t in texts)
    parts = _BOUNDARY.split(_SPACES.sub(" ", joined))  # [text, boundary, punct, text, ...]
    boundaries = parts[1::3]
    # The review of piece j = number of review separators among the boundaries before it.
    piece_row = np.zeros(len(boundaries) + 1, dtype=np.int64)
    is_sep = np.fromiter((b == _SEP for b in boundaries), dtype=bool, count=len(boundaries))
    np.cumsum(is_sep, out=piece_row[1:])
    pieces = [t + p if p else t for t, p in zip(parts[0::3], [*parts[2::3], None])]
    pieces = list(map(str.strip, pieces))

    plen = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    has_word = np.fromiter(
        (m is not None for m in map(_WORD.search, pieces)), dtype=bool, count=len(pieces)
    )
    keep = (plen >= max(min_chars, 1)) & has_word
    dropped = int(((plen > 0) & ~keep).sum())

    text = np.empty(int(keep.sum()), dtype=object)
    text[:] = [p for p, k in zip(pieces, keep) if k]
    row = piece_row[keep]
    reviews_with_sentences = len(np.unique(row))
    return SentenceTable(
        text=text,
        row=row,
        num_reviews=n,
        empty_reviews=n - reviews_with_sentences,
        non_text_reviews=non_text,
        dropped_sentences=dropped,
    )


def training_sentences(train: Interactions, *, min_chars: int = 2) -> SentenceTable:
    """Sentences of the reviews in ``train`` (pass the TRAINING rows only, e.g. ``split.fit``).

    Raises:
        DataError: if ``train`` has no review column, has no rows, or no review yields a sentence.
    """
    source = train.meta.get("source", train.meta.get("path", "<in-memory table>"))
    if train.review is None:
        raise DataError(
            f"The data set {source!s} has no review text (Interactions.review is None); "
            "topic extraction needs reviews: use a data set with text or drop the topic graphs"
        )
    if len(train) == 0:
        raise DataError(
            f"Expected training interactions for topic extraction (got 0 rows from {source!s})"
        )
    table = split_sentences(train.review, min_chars=min_chars)
    if len(table) == 0:
        raise DataError(
            f"Expected review text in the {len(train)} training rows of {source!s} "
            f"(got no sentence: {table.empty_reviews} empty or non-text reviews)"
        )
    return table


def unique_sentences(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Identical sentences once, by hashing: ``(unique, inverse)``, ``unique[inverse] == texts``.

    ``unique`` keeps first-occurrence order.

    Shapes:
        inverse: (S,) int64 in [0, U).
    """
    position: dict[str, int] = {}
    for t in texts:
        position.setdefault(t, len(position))
    inverse = np.fromiter(map(position.__getitem__, texts), dtype=np.int64, count=len(texts))
    return list(position), inverse
