"""Topic extraction (methods.md 1.1): sentences -> embeddings -> BERTopic -> TopicAssignments.

:class:`TopicExtractor` is a pipeline of injected steps (encoder, reducer, clusterer, vectorizer),
each built by a small factory from :class:`TopicConfig` when not given. BERTopic receives the
PRECOMPUTED embeddings, so it never loads a model itself; its UMAP step is our reducer (real UMAP
with a fixed ``random_state`` by default) and its HDBSCAN step our clusterer.

Leak-free by construction: the only input is ``train`` (the caller passes ``split.fit``), and only
its ``user``, ``item`` and ``review`` columns and id-space sizes are read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mmseq.data.schema import Interactions, TopicAssignments, canonical_json, settings_hash
from mmseq.errors import DataError
from mmseq.optional import require
from topics.aggregate import owner_topic_counts, topic_embeddings, topic_sizes
from topics.cache import (
    TopicCache,
    TopicResult,
    component_id,
    library_versions,
    sentences_hash,
    topic_input_hash,
)
from topics.config import TopicConfig
from topics.encoder import EncodeFn, SentenceEncoder, build_encoder, check_embeddings
from topics.jit_cache import enable_jit_cache
from topics.sentences import SentenceTable, training_sentences, unique_sentences

logger = logging.getLogger(__name__)

CACHE_VERSION = "topics-v1"  # bump when the stored format or the pipeline's meaning changes
# Bump when clustering changes its numbers but embeddings do not (v2: one thread, see
# single_threaded_numerics); part of the topic key only, so embeddings stay cached.
CLUSTER_VERSION = "cluster-v2"


# ---------------------------------------------------------------------------- default components
@contextlib.contextmanager
def single_threaded_numerics() -> Iterator[None]:
    """Run the block with one BLAS/OpenMP thread (threadpoolctl) and one numba thread, so that
    the topic model's floating-point reductions do not depend on the machine's core count."""
    from threadpoolctl import threadpool_limits

    numba_threads = None
    try:
        import numba

        numba_threads = numba.get_num_threads()
        numba.set_num_threads(1)
    except ImportError:  # numba comes with UMAP; without it there is nothing to limit
        pass
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        if numba_threads is not None:
            numba.set_num_threads(numba_threads)


def default_reducer(cfg: TopicConfig) -> Any:
    """UMAP as BERTopic configures it, but with a fixed ``random_state`` (UMAP then runs serially)
    and a PCA initial layout (reproducible; see ``TopicConfig.umap_init``)."""
    require("umap", feature="topic extraction (UMAP reducer)")
    from umap import UMAP

    return UMAP(
        n_neighbors=cfg.umap_n_neighbors,
        n_components=cfg.umap_n_components,
        min_dist=cfg.umap_min_dist,
        metric=cfg.umap_metric,
        init=cfg.umap_init,
        low_memory=False,
        random_state=cfg.seed,
        n_jobs=1,
    )


def default_clusterer(cfg: TopicConfig) -> Any:
    """HDBSCAN (euclidean, excess-of-mass) with ``min_cluster_size = min_topic_size``."""
    require("hdbscan", feature="topic extraction (HDBSCAN clusterer)")
    from hdbscan import HDBSCAN

    return HDBSCAN(
        min_cluster_size=cfg.min_topic_size,
        # One process for the core distances (hdbscan's default is 4, each a fresh joblib
        # worker with a copy of the data). They are exact k-NN distances, so the count changes
        # no topic; on MI (36k points, 5-d) the first fit in a process took 8-9 s with 2
        # worker processes (their start-up) and 1.1 s with none, same labels.
        core_dist_n_jobs=1,
        min_samples=cfg.min_samples or None,
        metric="euclidean",
        cluster_selection_method="eom",
        prediction_data=False,
    )


def default_vectorizer(cfg: TopicConfig) -> Any:
    """Bag of words for the c-TF-IDF keywords (stop words removed)."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(stop_words=cfg.stop_words or None)


class _StageReducer:
    """Delegates to the reducer and ticks the stage progress bar when the reduction is done;
    ``seconds`` is the time its ``fit_transform`` took."""

    def __init__(self, inner: Any, done: Callable[[], None]) -> None:
        self.inner = inner
        self._done = done
        self.seconds = 0.0

    def fit(self, X: np.ndarray, y: Any = None) -> _StageReducer:
        self.inner.fit(X, y=y) if y is not None else self.inner.fit(X)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.inner.transform(X)

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        t0 = time.perf_counter()
        if hasattr(self.inner, "fit_transform"):
            out = self.inner.fit_transform(X) if y is None else self.inner.fit_transform(X, y=y)
        else:
            self.fit(X, y)
            out = self.inner.transform(X)
        self.seconds = time.perf_counter() - t0
        self._done()
        return out


class _StageClusterer:
    """Delegates to the clusterer (attributes included: ``labels_``, ``probabilities_``) and
    records the time its ``fit`` took in ``seconds``. Taken out of the topic model after fitting
    (``_fit_bertopic``), so BERTopic's own type checks later see the clusterer itself."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def fit(self, X: np.ndarray, y: Any = None) -> _StageClusterer:
        t0 = time.perf_counter()
        self.inner.fit(X) if y is None else self.inner.fit(X, y=y)
        self.seconds = time.perf_counter() - t0
        return self

    def __getattr__(self, name: str) -> Any:  # only for names not found on the wrapper
        if name == "inner":  # not set yet (a copy in progress): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


# ---------------------------------------------------------------------------- the pipeline
class TopicExtractor:
    """Review topics of the training interactions (SD-MTMP, methods.md 1.1).

    Sentences are split (:mod:`topics.sentences`), identical sentences embedded once, the
    embeddings reduced (UMAP) and clustered (HDBSCAN) by BERTopic, topics labelled by c-TF-IDF
    keywords; e(T_g) = mean of the member sentence embeddings; user/item x topic = sentence counts.

    Args:
        cfg: the settings (default: ``TopicConfig()``).
        encoder: a :class:`SentenceEncoder`, a callable ``list[str] -> np.ndarray``, a name in
            ``TOPIC_ENCODERS``, or None for ``cfg.encoder``.
        reducer: object with ``fit``/``transform`` (default: UMAP from ``cfg``).
        clusterer: object with ``fit`` and ``labels_`` (default: HDBSCAN from ``cfg``).
        vectorizer: a scikit-learn ``CountVectorizer``-like object (default: from ``cfg``).
        progress: show tqdm bars for embedding and clustering (default: ``True``).

    Fitted attributes: ``result_`` (:class:`TopicResult`), ``sentences_`` (:class:`SentenceTable`),
    ``cache_hit_``, ``embeddings_computed_`` (False when the embedding cache served them),
    ``topic_model_`` (the BERTopic object; None on a cache hit), ``timings_`` (seconds per stage:
    ``split``, ``embed``, ``cluster`` = everything after embedding, and inside it ``reduce``
    (UMAP), ``hdbscan`` and ``represent`` (c-TF-IDF keywords and BERTopic's bookkeeping)).
    """

    def __init__(
        self,
        cfg: TopicConfig | None = None,
        *,
        encoder: SentenceEncoder | EncodeFn | str | None = None,
        reducer: Any = None,
        clusterer: Any = None,
        vectorizer: Any = None,
        progress: bool = True,
    ) -> None:
        self.cfg = cfg or TopicConfig()
        self.encoder = build_encoder(self.cfg, encoder)
        self.reducer = reducer
        self.clusterer = clusterer
        self.vectorizer = vectorizer
        self.progress = progress

    # ------------------------------------------------------------------ keys
    def _settings(self) -> dict[str, Any]:
        return {
            "encoder": self.cfg.encoder_settings(),
            "clustering": self.cfg.clustering_settings(),
            "components": {
                "reducer": component_id(self.reducer),
                "clusterer": component_id(self.clusterer),
                "vectorizer": component_id(self.vectorizer),
            },
        }

    def fit(self, train: Interactions, *, cache_dir: str | Path | None = None) -> TopicAssignments:
        """Extract topics from the reviews of ``train`` (TRAINING rows only).

        Args:
            train: training interactions with review text (``split.fit``).
            cache_dir: cache folder; None = no cache.

        Raises:
            DataError: no review text, no rows, no sentence, fewer sentences than
                ``min_topic_size``, or no topic found.
        """
        cfg = self.cfg
        t0 = time.perf_counter()
        self.timings_: dict[str, float] = {}
        sentences = training_sentences(train, min_chars=cfg.min_sentence_chars)
        self.sentences_: SentenceTable = sentences
        self.timings_["split"] = time.perf_counter() - t0
        if len(sentences) < cfg.min_topic_size:
            raise DataError(
                f"Expected at least min_topic_size={cfg.min_topic_size} training sentences for "
                f"topic extraction (got {len(sentences)} from {len(train)} reviews); "
                "lower TopicConfig.min_topic_size or use more data"
            )
        if self.reducer is None and len(sentences) <= cfg.umap_n_components + 1:
            # UMAP's spectral initialisation needs more points than n_components + 1.
            raise DataError(
                f"Expected more than umap_n_components + 1 = {cfg.umap_n_components + 1} training "
                f"sentences for UMAP (got {len(sentences)} from {len(train)} reviews)"
            )
        cache = TopicCache(cache_dir) if cache_dir is not None else None
        encoder_id = self.encoder.encoder_id
        settings = self._settings()
        input_hash = topic_input_hash(train)
        key = settings_hash(CACHE_VERSION, CLUSTER_VERSION, input_hash, encoder_id, settings,
                            library_versions())
        self.topic_model_: Any = None
        self.embeddings_computed_ = False
        if cache is not None:
            cached = cache.load_result(key)
            if cached is not None:
                logger.info("Topics loaded from cache %s", cache.result_path(key))
                self.result_, self.cache_hit_ = cached, True
                return cached.assignments
        self.cache_hit_ = False

        embeddings = self._embed(sentences, encoder_id, cache)  # (S, d); encoder closed
        result = self._cluster(train, sentences, embeddings)
        meta = {
            **dict(result.assignments.meta),
            "encoder_id": encoder_id,
            "settings": settings,
            "input_hash": input_hash,
            "cache_key": key,
            "versions": library_versions(),
        }
        # JSON round trip: a fresh result and a cached one carry the very same meta.
        meta = json.loads(canonical_json(meta))
        assignments = TopicAssignments(
            topic_embeddings=result.assignments.topic_embeddings,
            user_topic=result.assignments.user_topic,
            item_topic=result.assignments.item_topic,
            labels=result.assignments.labels,
            keywords=result.assignments.keywords,
            meta=meta,
        )
        self.result_ = TopicResult(assignments, result.sentence_topic, result.sentence_row)
        if cache is not None:
            cache.save_result(key, self.result_)
        logger.info(
            "Topics: %d topics from %d sentences (%.1f%% outliers); times %s",
            assignments.num_topics,
            len(sentences),
            100 * meta["outlier_share"],
            {k: round(v, 2) for k, v in self.timings_.items()},
        )
        return assignments

    # ------------------------------------------------------------------ stages
    def _embed(
        self, sentences: SentenceTable, encoder_id: str, cache: TopicCache | None
    ) -> np.ndarray:
        t0 = time.perf_counter()
        unique, inverse = unique_sentences(list(sentences.text))
        self.num_unique_ = len(unique)
        emb_key = settings_hash(CACHE_VERSION, "embeddings", encoder_id, sentences_hash(unique))
        self.embedding_key_ = emb_key
        emb = cache.load_embeddings(emb_key) if cache is not None else None
        if emb is not None and emb.shape[0] != len(unique):
            logger.warning(
                "Embedding cache %s has %d rows, expected %d; re-embedding",
                emb_key,
                emb.shape[0],
                len(unique),
            )
            emb = None
        if emb is None:
            logger.info("Embedding %d unique of %d sentences", len(unique), len(sentences))
            emb = np.asarray(self.encoder.encode(unique, progress=self.progress))
            # The encoder's worker processes (forked, each holding the model) are idle from
            # here on: end them before the checks, the cache write and the row expansion below
            # allocate, and before UMAP/HDBSCAN, so that no two peaks add up.
            close = getattr(self.encoder, "close", None)
            if callable(close):
                close()
            emb = check_embeddings(emb, len(unique), where=f"encoder {encoder_id}")
            self.embeddings_computed_ = True
            if cache is not None:
                cache.save_embeddings(emb_key, emb)
        self.timings_["embed"] = time.perf_counter() - t0
        return emb[inverse]

    def _cluster(
        self, train: Interactions, sentences: SentenceTable, embeddings: np.ndarray
    ) -> TopicResult:
        t0 = time.perf_counter()
        bar = tqdm(total=3, desc="topic model", unit="step", disable=not self.progress)
        try:
            bar.set_postfix_str("reduce")

            def reduced() -> None:
                bar.update(1)
                bar.set_postfix_str("cluster + keywords")

            sentence_topic, labels, keywords = self._fit_bertopic(sentences, embeddings, reduced)
            bar.update(1)
            bar.set_postfix_str("aggregate")
            k = len(labels)
            rows = sentences.row
            assignments = TopicAssignments(
                topic_embeddings=topic_embeddings(embeddings, sentence_topic, k),
                user_topic=owner_topic_counts(train.user[rows], sentence_topic, train.num_users, k),
                item_topic=owner_topic_counts(train.item[rows], sentence_topic, train.num_items, k),
                labels=labels,
                keywords=keywords,
                meta={
                    "num_topics": k,
                    "embedding_dim": int(embeddings.shape[1]),
                    "sentences": sentences.counts(),
                    "unique_sentences": self.num_unique_,
                    "outliers": int((sentence_topic < 0).sum()),
                    "outlier_share": float((sentence_topic < 0).mean()),
                    "topic_sizes": topic_sizes(sentence_topic, k).tolist(),
                },
            )
            bar.update(1)
        finally:
            bar.close()
        self.timings_["cluster"] = time.perf_counter() - t0
        return TopicResult(assignments, sentence_topic, rows.copy())

    def _fit_bertopic(
        self, sentences: SentenceTable, embeddings: np.ndarray, reduced: Callable[[], None]
    ) -> tuple[np.ndarray, tuple[str, ...], tuple[tuple[str, ...], ...]]:
        """BERTopic on precomputed embeddings -> (sentence topic (S,), labels, keywords)."""
        from bertopic import BERTopic

        cfg = self.cfg
        if self.reducer is None:
            # UMAP's numba kernels from the on-disk cache when compiled before (topics.jit_cache).
            enable_jit_cache()
        reducer = _StageReducer(
            default_reducer(cfg) if self.reducer is None else self.reducer, reduced
        )
        clusterer = _StageClusterer(
            default_clusterer(cfg) if self.clusterer is None else self.clusterer
        )
        model = BERTopic(
            umap_model=reducer,
            hdbscan_model=clusterer,
            vectorizer_model=(
                default_vectorizer(cfg) if self.vectorizer is None else self.vectorizer
            ),
            min_topic_size=cfg.min_topic_size,
            nr_topics=cfg.nr_topics or None,
            top_n_words=cfg.top_n_words,
            calculate_probabilities=False,
            verbose=False,
        )
        try:
            # One thread for BLAS/OpenMP inside UMAP (PCA layout), pynndescent and HDBSCAN: their
            # float reductions depend on the thread count, and UMAP amplifies last-bit
            # differences into other clusters (MI: 172 topics with 2 threads, 168 with 1).
            t0 = time.perf_counter()
            with single_threaded_numerics():
                raw_topics, _ = model.fit_transform(list(sentences.text), embeddings=embeddings)
            total = time.perf_counter() - t0
        except ValueError as exc:
            raise DataError(
                f"The topic model failed on {len(sentences)} training sentences: {exc} "
                "(an empty vocabulary means every word is a stop word: check the review text "
                "or TopicConfig.stop_words)"
            ) from exc
        model.hdbscan_model = clusterer.inner
        self.topic_model_ = model
        self.timings_["reduce"] = reducer.seconds
        self.timings_["hdbscan"] = clusterer.seconds
        # c-TF-IDF keywords, topic vectors, representative sentences, BERTopic's bookkeeping.
        self.timings_["represent"] = total - reducer.seconds - clusterer.seconds
        raw = np.asarray(raw_topics, dtype=np.int64)
        ids = np.unique(raw[raw >= 0])
        if len(ids) == 0:
            raise DataError(
                f"HDBSCAN found no topic among {len(sentences)} training sentences (all outliers); "
                f"lower TopicConfig.min_topic_size (now {cfg.min_topic_size}) or use more data"
            )
        # BERTopic numbers topics 0..k-1 by size; map anyway so that ids are dense whatever it did.
        lookup = np.full(int(raw.max()) + 2, -1, dtype=np.int64)
        lookup[ids + 1] = np.arange(len(ids))
        sentence_topic = lookup[raw + 1]
        # One loop over topics, once, outside any hot path.
        keywords = tuple(tuple(w for w, _ in (model.get_topic(int(t)) or []) if w) for t in ids)
        labels = tuple(f"{g}_" + "_".join(kw[: cfg.label_words]) for g, kw in enumerate(keywords))
        return sentence_topic, labels, keywords


def extract_topics(
    train: Interactions,
    cfg: TopicConfig,
    *,
    cache_dir: str | Path | None = None,
    encoder: SentenceEncoder | EncodeFn | str | None = None,
    progress: bool = True,
    reducer: Any = None,
    clusterer: Any = None,
    vectorizer: Any = None,
) -> TopicAssignments:
    """Topics of the TRAINING reviews (pass ``split.fit``), cached under ``cache_dir``.

    See :class:`TopicExtractor` for the arguments. ``reducer``/``clusterer``/``vectorizer`` are
    keyword extras beyond the cross-module contract, for tests and experiments.
    """
    extractor = TopicExtractor(
        cfg,
        encoder=encoder,
        reducer=reducer,
        clusterer=clusterer,
        vectorizer=vectorizer,
        progress=progress,
    )
    return extractor.fit(train, cache_dir=cache_dir)
