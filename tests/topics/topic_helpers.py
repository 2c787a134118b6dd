"""Topic test helpers: a hand-designed corpus and a keyword encoder (no model, no network)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from mmseq.data.schema import Interactions
from topics.encoder import SentenceEncoder

# Hand-designed corpus: every sentence names exactly one product: strings (S), cable (C), tuner (T).
#   row user item  sentences            S  C  T
TOY_ROWS = [
    (0, 0, "The strings sound bright. The cable is long."),  # 1  1  0
    (0, 1, "New strings every month. Strings feel smooth."),  # 2  0  0
    (1, 0, "This cable hums. The tuner is accurate."),  # 0  1  1
    (1, 2, "Great strings for the price. Another cable broke."),  # 1  1  0
    (2, 1, "The tuner clips on well. My strings stay in tune."),  # 1  0  1
    (2, 2, "Cable shielding is poor. Cable jacks are loose."),  # 0  2  0
    (3, 0, "Strings are warm. The tuner screen is bright."),  # 1  0  1
    (3, 1, "Cheap strings. The cable works. Tuner battery died."),  # 1  1  1
]
# Totals: S 7, C 6, T 4 -> BERTopic numbers topics by size: 0 = strings, 1 = cable, 2 = tuner.
TOY_USER_TOPIC = [[3, 1, 0], [1, 2, 1], [1, 2, 1], [2, 1, 2]]
TOY_ITEM_TOPIC = [[2, 2, 2], [4, 1, 2], [1, 3, 0]]

THEMES = ("string", "cable", "tuner")


def keyword_vectors(sentences: Sequence[str]) -> np.ndarray:
    """(S, 4) vectors: one-hot of the theme keyword (else dim 3) plus tiny per-sentence noise.

    The noise is a pure function of the sentence text (crc32 seed), so equal sentences get equal
    vectors and every call is reproducible.
    """
    out = np.zeros((len(sentences), 4), dtype=np.float32)
    for s, text in enumerate(sentences):
        low = text.lower()
        theme = next((d for d, word in enumerate(THEMES) if word in low), 3)
        noise = np.random.default_rng(zlib.crc32(text.encode())).normal(0, 0.01, 4)
        out[s] = noise
        out[s, theme] += 1.0
    return out


class KeywordEncoder(SentenceEncoder):
    """:func:`keyword_vectors` as an encoder that records every call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    @property
    def encoder_id(self) -> str:
        return "test-keyword-v1"

    def encode(self, sentences: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.calls.append(list(sentences))
        return keyword_vectors(list(sentences))


def make_interactions(
    rows: Sequence[tuple[int, int, object]],
    *,
    num_users: int | None = None,
    num_items: int | None = None,
    source: str = "toy",
) -> Interactions:
    n = len(rows)
    user = np.array([r[0] for r in rows], dtype=np.int64)
    item = np.array([r[1] for r in rows], dtype=np.int64)
    review = np.empty(n, dtype=object)
    review[:] = [r[2] for r in rows]
    nu = num_users if num_users is not None else (int(user.max()) + 1 if n else 1)
    ni = num_items if num_items is not None else (int(item.max()) + 1 if n else 1)
    return Interactions(
        user=user,
        item=item,
        rating=np.ones(n, dtype=np.float32),
        timestamp=np.arange(n, dtype=np.int64),
        user_ids=np.array([f"u{i}" for i in range(nu)], dtype=object),
        item_ids=np.array([f"i{i}" for i in range(ni)], dtype=object),
        review=review,
        meta={"source": source},
    )
