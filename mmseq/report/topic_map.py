"""The 2-D topic map: a PCA of the topic embeddings (the same map the topic stage writes).

Pure NumPy; ``topics/report.py`` uses :func:`topic_map_2d` from here, and the run report draws it
from the topic embeddings saved in the graph bundle (``features["topic"]`` of a topic hypergraph).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def topic_map_2d(topic_embeddings: np.ndarray) -> np.ndarray:
    """PCA of the topic embeddings to 2-D (deterministic signs: largest |loading| positive).

    Shapes:
        topic_embeddings: (k, d). Returns (k, 2) float64; zeros where k < 2.
    """
    x = np.asarray(topic_embeddings, dtype=np.float64)
    k = x.shape[0]
    out = np.zeros((k, 2))
    if k < 2:
        return out
    centred = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # vt: (min(k, d), d)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    proj = centred @ (comps * signs[:, None]).T  # (k, n_comp)
    out[:, : proj.shape[1]] = proj
    return out


@dataclass(frozen=True)
class TopicMap:
    """What the map figure shows, one row per topic.

    Attributes:
        xy: (k, 2) PCA coordinates.
        labels: k labels.
        users: (k,) users in each topic (hyperedge degree in the user-topic hypergraph).
        items: (k,) items in each topic.
        keywords: k tuples of top keywords (empty when unknown).
    """

    xy: np.ndarray
    labels: tuple[str, ...]
    users: np.ndarray
    items: np.ndarray
    keywords: tuple[tuple[str, ...], ...] = ()


def topic_members(edge_index: np.ndarray, num_members: int, num_topics: int) -> np.ndarray:
    """Members per hyperedge of a topic hypergraph (the topic nodes' own rows not counted).

    Shapes:
        edge_index: (2, nnz) as ``[node; hyperedge]``. Returns (num_topics,) int64.
    """
    members = edge_index[1][edge_index[0] < num_members]
    return np.bincount(members, minlength=num_topics).astype(np.int64)


__all__ = ["TopicMap", "topic_map_2d", "topic_members"]
