"""Sentence topics -> topic embeddings and user/item x topic counts (methods.md 1.1 steps 4-5).

Pure, vectorised functions: every reduction is one sparse product or one sparse construction.
Outlier sentences (topic -1) belong to no topic and are left out of every output.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mmseq.errors import DataError


def _check_topics(sentence_topic: np.ndarray, num_topics: int) -> None:
    if len(sentence_topic) and (sentence_topic.min() < -1 or sentence_topic.max() >= num_topics):
        raise DataError(
            f"Expected sentence topics in [-1, {num_topics}) "
            f"(got range [{sentence_topic.min()}, {sentence_topic.max()}])"
        )


def topic_membership(sentence_topic: np.ndarray, num_topics: int) -> sp.csr_matrix:
    """One-hot (k, S) matrix: entry (g, s) = 1 iff sentence s is in topic g (outliers: no entry).

    Shapes:
        sentence_topic: (S,) int, -1 = outlier. Returns (k, S) float32 CSR.
    """
    sentence_topic = np.asarray(sentence_topic, dtype=np.int64)
    _check_topics(sentence_topic, num_topics)
    member = np.flatnonzero(sentence_topic >= 0)
    data = np.ones(len(member), dtype=np.float32)
    return sp.csr_matrix(
        (data, (sentence_topic[member], member)), shape=(num_topics, len(sentence_topic))
    )


def topic_embeddings(
    embeddings: np.ndarray, sentence_topic: np.ndarray, num_topics: int
) -> np.ndarray:
    """Mean sentence embedding per topic: e(T_g) = (1 / |T_g|) sum_{s in T_g} x_s.

    Computed in float64, returned as float32. A topic without sentences raises (BERTopic never
    emits one; a hand-made assignment might).

    Shapes:
        embeddings: (S, d); sentence_topic: (S,) int, -1 = outlier. Returns (k, d) float32.
    """
    if len(embeddings) != len(sentence_topic):
        raise DataError(
            f"Expected one topic per sentence embedding ({len(embeddings)}) "
            f"(got {len(sentence_topic)} topics)"
        )
    onehot = topic_membership(sentence_topic, num_topics)  # (k, S)
    sizes = np.asarray(onehot.sum(axis=1)).ravel()  # (k,)
    if (sizes == 0).any():
        raise DataError(
            f"Expected every topic to hold a sentence (topic {int(np.argmin(sizes))} is empty)"
        )
    sums = onehot.astype(np.float64) @ np.asarray(embeddings, dtype=np.float64)  # (k, d)
    return (sums / sizes[:, None]).astype(np.float32)


def owner_topic_counts(
    owner: np.ndarray, sentence_topic: np.ndarray, num_owners: int, num_topics: int
) -> sp.csr_matrix:
    """(num_owners, k) counts: entry (o, g) = number of o's sentences in topic g.

    ``owner`` is the user (or item) of each sentence. Membership of methods.md 1.1 step 5 is
    ``counts > 0``; the counts themselves are optional hyperedge weights.

    Shapes:
        owner: (S,) int in [0, num_owners); sentence_topic: (S,). Returns float32 CSR, entries
        summed and sorted (canonical form).
    """
    owner = np.asarray(owner, dtype=np.int64)
    sentence_topic = np.asarray(sentence_topic, dtype=np.int64)
    if len(owner) != len(sentence_topic):
        raise DataError(
            f"Expected one owner per sentence ({len(sentence_topic)}) (got {len(owner)})"
        )
    _check_topics(sentence_topic, num_topics)
    keep = sentence_topic >= 0
    mat = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (owner[keep], sentence_topic[keep])),
        shape=(num_owners, num_topics),
    )
    mat.sum_duplicates()
    mat.sort_indices()
    return mat


def topic_sizes(sentence_topic: np.ndarray, num_topics: int) -> np.ndarray:
    """(k,) int64 number of sentences per topic (outliers not counted)."""
    st = np.asarray(sentence_topic, dtype=np.int64)
    return np.bincount(st[st >= 0], minlength=num_topics).astype(np.int64)
