"""Item text embeddings (``STAGES["item_text"]``): mean of each item's training-sentence embeddings.

The frozen item-item graphs of LATTICE (Zhang et al., MM 2021) and FREEDOM (Zhou & Shen, MM 2023)
start from one text feature per item. Here it is ``x_i = mean_{s in S_i} e(s)``, with ``S_i`` the
sentences of item i's reviews in the FIT rows and ``e`` the topic stage's sentence encoder. The
stage shares the ``topics:`` section with the topic stage and reads the very same embedding cache
(``<artifacts>/topics/embeddings``), so sentences the topic stage embedded are not re-encoded.

Leak-free by construction: only the rows handed in (``split.fit``) are read. An item without a
training sentence gets the zero vector (the graph builder leaves it isolated).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from mmseq.data.schema import Interactions
from mmseq.stages import STAGES, Stage
from topics.cache import TopicCache
from topics.config import TopicConfig
from topics.extract import TopicExtractor
from topics.sentences import training_sentences


def sentence_embeddings(
    fit: Interactions,
    config: TopicConfig,
    *,
    cache_dir: Path | None = None,
    progress: bool = False,
    encoder: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings (S, d), row (S,))`` of the fit rows' sentences, through the topic cache.

    Uses the topic stage's own embedding step (same key: encoder id + unique sentence list), so a
    topic run over the same rows and encoder settings has already filled the cache.
    """
    sentences = training_sentences(fit, min_chars=config.min_sentence_chars)
    extractor = TopicExtractor(config, encoder=encoder, progress=progress)
    extractor.timings_ = {}
    cache = TopicCache(cache_dir) if cache_dir is not None else None
    emb = extractor._embed(sentences, extractor.encoder.encoder_id, cache)  # (S, d)
    return emb, np.asarray(sentences.row, dtype=np.int64)


def mean_pool(values: np.ndarray, owner: np.ndarray, num_owners: int) -> np.ndarray:
    """Row means of ``values`` grouped by ``owner``; owners without a row get zeros.

    Shapes:
        values: (S, d); owner: (S,) in [0, num_owners) -> (num_owners, d) float32.
    """
    counts = np.bincount(owner, minlength=num_owners).astype(np.float64)
    inv = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    pool = sp.csr_matrix(
        (inv[owner], (owner, np.arange(len(owner)))), shape=(num_owners, len(owner))
    )
    return np.asarray(pool @ values.astype(np.float64), dtype=np.float32)


@STAGES.register("item_text")
class ItemTextStage(Stage):
    """(num_items, d) float32: each item's mean training-sentence embedding (zeros if none)."""

    name = "item_text"
    config_class = TopicConfig
    section = "topics"  # the encoder settings of the topic stage, hence its embedding cache
    cache_folder = "topics"

    def settings(self, config: TopicConfig) -> Any:
        return {"encoder": config.encoder_settings(), "min_chars": config.min_sentence_chars}

    def run(
        self,
        fit: Interactions,
        config: TopicConfig,
        *,
        cache_dir: Path | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        emb, row = sentence_embeddings(fit, config, cache_dir=cache_dir, progress=progress)
        return mean_pool(emb, fit.item[row].astype(np.int64), fit.num_items)

    def describe(self, artifact: np.ndarray) -> str:
        with_text = int(np.any(artifact != 0, axis=1).sum())
        rows, dims = artifact.shape
        return f"item_text: {rows} items x {dims} dims, {with_text} with text"
