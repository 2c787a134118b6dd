"""TopicConfig: every knob of the topic stage (methods.md 1.1), parsed strictly from YAML."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mmseq.errors import ConfigError


@dataclass(frozen=True)
class TopicConfig:
    """Settings of sentence splitting, encoding, UMAP + HDBSCAN clustering and keywords.

    Build it from YAML with ``mmseq.config.from_dict(TopicConfig, mapping, where=...)``.
    ``encoder_settings()`` and ``clustering_settings()`` are the two halves that key the caches:
    changing a clustering knob re-clusters but reuses the cached sentence embeddings.
    """

    # --- sentences
    min_sentence_chars: int = 2  # shortest sentence kept (characters, after stripping)
    # --- encoder (a key of topics.TOPIC_ENCODERS)
    encoder: str = "minilm"  # "minilm" (packaged all-MiniLM-L6-v2) or "sentence-transformers"
    model_path: str = ""  # local model folder, for encoder "sentence-transformers" only
    device: str = "cpu"  # torch device of the encoder ("cpu", "cuda", "cuda:1")
    bf16: bool = True  # bf16 autocast while encoding (cosine >= 0.9999 to fp32, about 2x on CPU)
    batch_tokens: int = 1024  # padded tokens per encoder batch (sentences sorted by token count)
    max_batch_size: int = 64  # sentences per encoder batch at most
    threads: int = 0  # encoder CPU budget: threads in-process, processes if workers=-1; 0 = all
    # Encoder processes on CPU (forked, 1 torch thread each): -1 = one per thread of `threads`,
    # 0 or 1 = in this process. Not a cache key: it changes embeddings by float noise only.
    workers: int = -1
    # Where encoding runs: "local" (this process and its forked workers) or "ray" (Ray Data actor
    # pool, `workers` actors; topics/ray_encode.py). Not a cache key: the embeddings are equal.
    engine: str = "local"
    ray_address: str = ""  # engine "ray": cluster address; "" = a running or new local Ray
    # --- reducer (UMAP)
    umap_n_neighbors: int = 15  # UMAP neighbourhood size
    umap_n_components: int = 5  # dimensions UMAP reduces to before clustering
    umap_min_dist: float = 0.0  # UMAP minimum distance (0 packs clusters tightly)
    umap_metric: str = "cosine"  # UMAP input metric
    # UMAP initial layout. "pca", not UMAP's "spectral": with repeated sentences the graph has
    # several components and the spectral layout differed between identical fits in one process
    # (measured: every 2nd fit of 1,025 synthetic sentences), breaking reproducibility.
    umap_init: str = "pca"  # "pca" | "spectral" | "random"
    # --- clusterer (HDBSCAN)
    min_topic_size: int = 10  # HDBSCAN min_cluster_size: the smallest topic, in sentences
    min_samples: int = 0  # HDBSCAN min_samples; 0 = HDBSCAN's default (= min_topic_size)
    # --- representation
    nr_topics: int = 0  # merge topics down to this many after clustering (BERTopic); 0 = keep all
    top_n_words: int = 10  # c-TF-IDF keywords kept per topic
    label_words: int = 4  # keywords joined into a topic label
    stop_words: str = "english"  # CountVectorizer stop-word list for keywords; "" = none
    seed: int = 0  # UMAP random_state (fixed seed = reproducible topics; UMAP then runs serially)

    def __post_init__(self) -> None:
        positive = (
            "batch_tokens",
            "max_batch_size",
            "umap_n_components",
            "top_n_words",
            "label_words",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"Expected TopicConfig.{name} >= 1 (got {getattr(self, name)})")
        for name in ("min_sentence_chars", "threads", "min_samples", "nr_topics", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"Expected TopicConfig.{name} >= 0 (got {getattr(self, name)})")
        if self.workers < -1:
            raise ConfigError(f"Expected TopicConfig.workers >= -1 (got {self.workers})")
        if self.workers > 1 and self.device.split(":", 1)[0] != "cpu":
            raise ConfigError(
                f"Expected TopicConfig.workers in (-1, 0, 1) with device {self.device!r} "
                f"(got {self.workers}); worker processes are for CPU encoding"
            )
        if self.engine not in ("local", "ray"):
            raise ConfigError(
                f"Expected TopicConfig.engine in ['local', 'ray'] (got {self.engine!r})"
            )
        if self.min_topic_size < 2:
            raise ConfigError(
                f"Expected TopicConfig.min_topic_size >= 2 (got {self.min_topic_size})"
            )
        if self.umap_n_neighbors < 2:
            raise ConfigError(
                f"Expected TopicConfig.umap_n_neighbors >= 2 (got {self.umap_n_neighbors})"
            )
        if not 0.0 <= self.umap_min_dist <= 1.0:
            raise ConfigError(
                f"Expected TopicConfig.umap_min_dist in [0, 1] (got {self.umap_min_dist})"
            )
        if self.umap_init not in ("pca", "spectral", "random"):
            raise ConfigError(
                "Expected TopicConfig.umap_init in ['pca', 'spectral', 'random'] "
                f"(got {self.umap_init!r})"
            )
        if self.nr_topics == 1:
            raise ConfigError("Expected TopicConfig.nr_topics to be 0 (off) or >= 2 (got 1)")
        if self.encoder == "sentence-transformers" and not self.model_path:
            raise ConfigError(
                "TopicConfig.encoder 'sentence-transformers' needs model_path "
                "(a local model folder)"
            )

    def encoder_settings(self) -> dict[str, Any]:
        """The fields that change sentence embeddings (they key the embedding cache)."""
        keys = ("encoder", "model_path", "device", "bf16", "batch_tokens", "max_batch_size")
        return {k: getattr(self, k) for k in keys}

    def clustering_settings(self) -> dict[str, Any]:
        """The fields that change topics given the embeddings (they key the topic cache)."""
        skip = set(self.encoder_settings()) | {"threads", "workers", "engine", "ray_address"}
        return {k: v for k, v in asdict(self).items() if k not in skip}
