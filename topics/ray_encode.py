"""Sentence embedding on a Ray cluster: Ray Data ``map_batches`` over an actor pool of encoders.

Selected by ``TopicConfig.engine: ray`` (the optional ``[ray]`` extra); the single-process path
(topics/encoder.py) stays the default. The driver tokenises and cuts the sentences into the very
token-length batches the local path uses (:meth:`SentenceTransformerEncoder.token_batches`), one
Ray Data row per batch; each actor loads the encoder once, holds the same inference context (bf16
autocast as configured) and embeds whole batches with one torch thread, as a local worker does.
Same batches, same padding, same kernels: the embeddings equal the local path's (tested within
1e-5), so :class:`RayDataEncoder` keeps the wrapped encoder's ``encoder_id`` and the embedding
cache key does not change with the engine.

Scale notes: tokenisation (Rust, fast) and the final (S, d) array stay on the driver; the model
forward, which is > 95% of the time, runs on the actors: one per CPU (``num_cpus=1``) or one per
GPU (``num_gpus=1``) of the cluster, or ``TopicConfig.workers`` of them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmseq.errors import ConfigError
from mmseq.optional import require
from topics.encoder import (
    SentenceEncoder,
    SentenceTransformerEncoder,
    _Forward,
    _inference_context,
    torch_device_type,
)

logger = logging.getLogger(__name__)


def encoder_spec(encoder: SentenceTransformerEncoder) -> tuple[type, dict[str, Any]]:
    """The class and keyword arguments that rebuild ``encoder`` in an actor (1 thread, in-process).

    Shapes:
        n/a (plain values; picklable).
    """
    kwargs: dict[str, Any] = {
        "device": "cuda" if torch_device_type(encoder.device) == "cuda" else encoder.device,
        "bf16": encoder.bf16,
        "batch_tokens": encoder.batch_tokens,
        "max_batch_size": encoder.max_batch_size,
        "attn_implementation": encoder.attn_implementation,
        "threads": 1,
        "workers": 1,
    }
    cls = type(encoder)
    if cls is SentenceTransformerEncoder:  # subclasses (MiniLM) know their own model folder
        kwargs["model_path"] = str(encoder.model_path)
    return cls, kwargs


class _EncodeActor:
    """A Ray Data actor: one loaded encoder; maps rows of padded batches to sentence embeddings.

    Input batch columns: ``rows`` (n_b,) input positions, ``ids`` (n_b, L_b) int64 token ids,
    ``mask`` (n_b, L_b) int8 attention mask, one row per token batch. Output: ``row`` (N,) and
    ``embedding`` (N, d) float32, one row per sentence.
    """

    def __init__(self, cls: type, kwargs: dict[str, Any]) -> None:
        import torch

        torch.set_num_threads(1)  # as a local worker process: same kernels, same numbers
        encoder = cls(**kwargs)
        model = encoder.model
        tok = model.tokenizer
        self.forward = _Forward(
            model,
            torch.device(encoder.device),
            wants_types="token_type_ids" in getattr(tok, "model_input_names", ()),
        )
        self.device_type, self.bf16 = torch.device(encoder.device).type, encoder.bf16

    def __call__(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        rows, embeddings = [], []
        # Entered per call, not once: Ray Data may call from a thread of its own, and inference
        # mode and autocast are per-thread states.
        with _inference_context(self.device_type, self.bf16):
            for r, ids, mask in zip(batch["rows"], batch["ids"], batch["mask"]):
                rows.append(np.asarray(r, dtype=np.int64))
                ids, mask = np.asarray(ids, dtype=np.int64), np.asarray(mask) > 0
                embeddings.append(self.forward(ids, mask))  # (n_b, d)
        return {"row": np.concatenate(rows), "embedding": np.concatenate(embeddings)}


class RayDataEncoder(SentenceEncoder):
    """Embeds with ``inner``'s model and batches on a Ray cluster; same output, same id.

    Args:
        inner: the encoder whose model, settings and batches are used.
        workers: actors in the pool; -1 = one per CPU (or GPU, for a CUDA device) of the cluster.
        address: Ray cluster address; ``""`` = the running Ray, else a new local one (stopped
            again after encoding).
    """

    def __init__(
        self, inner: SentenceTransformerEncoder, *, workers: int = -1, address: str = ""
    ) -> None:
        if not isinstance(inner, SentenceTransformerEncoder):
            raise ConfigError(
                "Expected a sentence-transformers encoder for TopicConfig.engine 'ray' "
                f"(got {type(inner).__name__})"
            )
        if workers < -1:
            raise ConfigError(f"Expected 'workers' >= -1 (got {workers})")
        self.inner, self.workers, self.address = inner, max(workers, 1) if workers else 1, address

    @property
    def encoder_id(self) -> str:
        return self.inner.encoder_id  # the engine does not change the embeddings

    def encode(self, sentences: Sequence[str], *, progress: bool = False) -> np.ndarray:
        require("ray", feature="TopicConfig.engine 'ray'")
        import ray
        import ray.data

        texts = list(sentences)
        out = np.empty((len(texts), self.inner.embedding_dim()), dtype=np.float32)
        if not texts:
            return out
        batches = self.inner.token_batches(texts)
        rows = []
        for b in range(batches.num_batches):
            ids, mask = batches.padded(b)  # (n_b, L_b) each
            rows.append({"rows": batches.rows(b), "ids": ids, "mask": mask.astype(np.int8)})

        gpu = torch_device_type(self.inner.device) == "cuda"
        started = not ray.is_initialized()
        if started:
            ray.init(
                address=self.address or None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = progress
            resource = "GPU" if gpu else "CPU"
            size = self.workers
            if size == -1:
                size = max(1, int(ray.cluster_resources().get(resource, 1)))
            size = min(size, batches.num_batches)
            cls, kwargs = encoder_spec(self.inner)
            logger.info(
                "embedding %d sentences in %d batches on %d Ray actors (%s)",
                len(texts),
                batches.num_batches,
                size,
                resource,
            )
            dataset = ray.data.from_items(rows).map_batches(
                _EncodeActor,
                fn_constructor_kwargs={"cls": cls, "kwargs": kwargs},
                batch_size=1,  # one token batch per call: the local path's batches, unchanged
                batch_format="numpy",
                concurrency=size,
                num_cpus=0 if gpu else 1,
                num_gpus=1 if gpu else 0,
            )
            filled = np.zeros(len(texts), dtype=bool)
            for part in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                out[part["row"]] = part["embedding"]
                filled[part["row"]] = True
        finally:
            if started:
                ray.shutdown()
        if not filled.all():
            missing = int(np.flatnonzero(~filled)[0])
            raise RuntimeError(f"Ray embedding returned no row for sentence {missing}")
        return out
