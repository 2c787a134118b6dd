"""The artifact types that flow between stages: interactions and topic assignments.

They live in ``mmseq.data`` so that ``topics`` and ``graphs`` can exchange them without importing
each other. All are columnar (NumPy arrays), immutable, and carry a content hash for caches/results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from mmseq.errors import DataError


def _hash_array(h: Any, arr: np.ndarray | None) -> None:
    if arr is None:
        h.update(b"<none>")
        return
    if arr.dtype == object:
        for s in arr:
            b = str(s).encode("utf-8", "surrogatepass")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
    else:
        a = np.ascontiguousarray(arr)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())


@dataclass(frozen=True, eq=False)
class Interactions:
    """A table of user-item interactions in one id space (row order = file order).

    Attributes:
        user: (N,) int64 user index in ``[0, num_users)``.
        item: (N,) int64 item index in ``[0, num_items)``.
        rating: (N,) float32 explicit rating; 1.0 where the source has none
            (``meta['has_rating']``).
        timestamp: (N,) int64 seconds since the Unix epoch; where the source has no time (S3-Rec
            sequences) the position in the user's sequence (``meta['has_time']`` is False).
        user_ids: (num_users,) raw user ids as str; index = user index.
        item_ids: (num_items,) raw item ids as str.
        review: (N,) object array of review text ("" where missing), or None for data without text.
        summary: (N,) object array of review summaries, or None.
        item_attributes: (num_items, num_attributes) CSR 0/1 matrix, or None.
        meta: provenance and counts: source path, format, rows read, rows skipped by reason,
            duplicates removed, k-core rounds, ``has_rating``, ``has_time``, ``has_text``.
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    review: np.ndarray | None = None
    summary: np.ndarray | None = None
    item_attributes: sp.csr_matrix | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.user)
        for name in ("item", "rating", "timestamp"):
            if len(getattr(self, name)) != n:
                raise DataError(
                    f"Expected '{name}' to have {n} rows like 'user' "
                    f"(got {len(getattr(self, name))})"
                )
        for name in ("review", "summary"):
            col = getattr(self, name)
            if col is not None and len(col) != n:
                raise DataError(f"Expected '{name}' to have {n} rows like 'user' (got {len(col)})")
        if n:
            if self.user.min() < 0 or self.user.max() >= len(self.user_ids):
                raise DataError(
                    f"Expected user indices in [0, {len(self.user_ids)}) "
                    f"(got range [{self.user.min()}, {self.user.max()}])"
                )
            if self.item.min() < 0 or self.item.max() >= len(self.item_ids):
                raise DataError(
                    f"Expected item indices in [0, {len(self.item_ids)}) "
                    f"(got range [{self.item.min()}, {self.item.max()}])"
                )
        if self.item_attributes is not None and self.item_attributes.shape[0] != len(self.item_ids):
            raise DataError(
                f"Expected 'item_attributes' to have {len(self.item_ids)} rows "
                f"(got {self.item_attributes.shape[0]})"
            )

    # ---------------------------------------------------------------- sizes
    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.user)

    @property
    def has_text(self) -> bool:
        return self.review is not None

    # ---------------------------------------------------------------- derived tables
    def select(self, rows: np.ndarray) -> Interactions:
        """The rows ``rows`` (bool mask or int index, order kept) in the SAME id space."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return dataclasses.replace(
            self,
            user=self.user[rows],
            item=self.item[rows],
            rating=self.rating[rows],
            timestamp=self.timestamp[rows],
            review=None if self.review is None else self.review[rows],
            summary=None if self.summary is None else self.summary[rows],
        )

    def concat(self, other: Interactions) -> Interactions:
        """Rows of ``self`` then ``other`` (both must share the id space)."""
        if other.num_users != self.num_users or other.num_items != self.num_items:
            raise DataError("Expected both tables to share one id space (user/item counts differ)")

        def cat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            return None if a is None or b is None else np.concatenate([a, b])

        return dataclasses.replace(
            self,
            user=np.concatenate([self.user, other.user]),
            item=np.concatenate([self.item, other.item]),
            rating=np.concatenate([self.rating, other.rating]),
            timestamp=np.concatenate([self.timestamp, other.timestamp]),
            review=cat(self.review, other.review),
            summary=cat(self.summary, other.summary),
        )

    def chronological_order(self) -> np.ndarray:
        """Row indices sorted by (user, timestamp), stable: ties keep file order."""
        return np.lexsort((np.arange(len(self)), self.timestamp, self.user))

    def compact(self) -> Interactions:
        """Drop users/items with no rows and re-index densely (order of first index kept)."""
        used_u = np.unique(self.user)
        used_i = np.unique(self.item)
        umap = np.full(self.num_users, -1, dtype=np.int64)
        umap[used_u] = np.arange(len(used_u))
        imap = np.full(self.num_items, -1, dtype=np.int64)
        imap[used_i] = np.arange(len(used_i))
        attrs = None if self.item_attributes is None else self.item_attributes[used_i]
        return dataclasses.replace(
            self,
            user=umap[self.user],
            item=imap[self.item],
            user_ids=self.user_ids[used_u],
            item_ids=self.item_ids[used_i],
            item_attributes=attrs,
        )

    def with_meta(self, **updates: Any) -> Interactions:
        return dataclasses.replace(self, meta={**dict(self.meta), **updates})

    # ---------------------------------------------------------------- identity
    def content_hash(self) -> str:
        """sha256 (hex, 16 chars) of every column and id map; meta is not part of the identity."""
        h = hashlib.sha256()
        for arr in (
            self.user,
            self.item,
            self.rating,
            self.timestamp,
            self.user_ids,
            self.item_ids,
            self.review,
            self.summary,
        ):
            _hash_array(h, arr)
        if self.item_attributes is not None:
            a = self.item_attributes.tocsr()
            for arr in (a.indptr, a.indices, a.data):
                _hash_array(h, np.asarray(arr))
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """Counts for reports: interactions, users, items, density, rating histogram."""
        n, m, k = len(self), self.num_users, self.num_items
        ratings, counts = np.unique(self.rating, return_counts=True)
        return {
            "interactions": int(n),
            "users": int(m),
            "items": int(k),
            "density": float(n / (m * k)) if m and k else 0.0,
            "rating_histogram": {float(r): int(c) for r, c in zip(ratings, counts)},
        }


@dataclass(frozen=True, eq=False)
class TopicAssignments:
    """What the topic stage hands to the graph builders (methods.md section 1.1).

    Attributes:
        topic_embeddings: (k, d_enc) float32, mean of member sentence embeddings per topic.
        user_topic: (num_users, k) CSR, count of the user's TRAINING sentences in each topic.
        item_topic: (num_items, k) CSR, same for items.
        labels: k human-readable labels (c-TF-IDF keywords).
        keywords: k tuples of top keywords.
        meta: encoder id, settings, input content hash, sentence count, outlier share.
    """

    topic_embeddings: np.ndarray
    user_topic: sp.csr_matrix
    item_topic: sp.csr_matrix
    labels: tuple[str, ...]
    keywords: tuple[tuple[str, ...], ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = self.topic_embeddings.shape[0]
        for name in ("user_topic", "item_topic"):
            mat = getattr(self, name)
            if mat.shape[1] != k:
                raise DataError(f"Expected '{name}' to have {k} columns (got {mat.shape[1]})")
        if len(self.labels) != k:
            raise DataError(f"Expected {k} topic labels (got {len(self.labels)})")

    @property
    def num_topics(self) -> int:
        return int(self.topic_embeddings.shape[0])


def canonical_json(obj: Any) -> str:
    """Stable JSON (sorted keys) used to hash settings."""
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def settings_hash(*parts: Any) -> str:
    """sha256 (16 hex chars) over JSON-able parts: content hashes, settings, versions."""
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:16]


def user_item_matrix(data: Interactions, values: np.ndarray | None = None) -> sp.csr_matrix:
    """(num_users, num_items) CSR; duplicates are summed. ``values`` default to 1."""
    vals = np.ones(len(data), dtype=np.float32) if values is None else values
    return sp.csr_matrix((vals, (data.user, data.item)), shape=(data.num_users, data.num_items))
