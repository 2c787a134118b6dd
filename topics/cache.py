"""On-disk cache of the topic stage: atomic writes, sha256 side files, verified on every load.

Layout under ``root``::

    embeddings/<key>.npy   (U, d) float32 embeddings of the UNIQUE training sentences, keyed by
                           (encoder id, hash of the unique sentence list): a clustering change
                           reuses them, any text or encoder change misses
    topics/<key>.npz       the stage's result, keyed by (training input hash, encoder id, every
                           setting, injected components, library versions)

Each file has a ``<file>.sha256`` beside it (``mmseq.io``). A file that fails its checksum or does
not parse is reported with a warning and rebuilt, never loaded. Writes and verified reads hold
``mmseq.lock.file_lock(root)``, so concurrent runs never see a file beside another run's checksum.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from mmseq.data.schema import Interactions, TopicAssignments, canonical_json
from mmseq.errors import ArtifactError
from mmseq.io import atomic_write, verify_checksum, write_checksum
from mmseq.lock import file_lock

logger = logging.getLogger(__name__)

_READ_ERRORS = (ArtifactError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


# ------------------------------------------------------------------ cache keys
def _hash_strings(h: Any, texts: Iterable[Any]) -> None:
    for t in texts:
        b = (t if isinstance(t, str) else f"<{type(t).__name__}:{t!r}>").encode(
            "utf-8", "surrogatepass"
        )
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)


def topic_input_hash(train: Interactions) -> str:
    """sha256 (16 hex) of exactly what the topic stage reads: user, item, review, id-space sizes."""
    h = hashlib.sha256()
    h.update(f"{train.num_users}|{train.num_items}|{len(train)}|".encode())
    h.update(np.ascontiguousarray(train.user, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(train.item, dtype=np.int64).tobytes())
    _hash_strings(h, [] if train.review is None else train.review)
    return h.hexdigest()[:16]


def sentences_hash(unique: Sequence[str]) -> str:
    """sha256 (16 hex) of a sentence list (order matters): the embedding cache key's text part."""
    h = hashlib.sha256()
    _hash_strings(h, unique)
    return h.hexdigest()[:16]


def component_id(obj: Any) -> str:
    """A stable description of an injected component, for the cache key ("default" when None)."""
    if obj is None:
        return "default"
    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if hasattr(obj, "get_params"):
        params = obj.get_params(deep=False)
        return f"{name}({canonical_json({k: repr(v) for k, v in sorted(params.items())})})"
    return f"{name}({obj!r})"


def library_versions() -> dict[str, str]:
    out = {}
    for pkg in (
        "bertopic",
        "umap-learn",
        "hdbscan",
        "scikit-learn",
        "sentence-transformers",
        "torch",
        # UMAP's numerics: a different numba/pynndescent/numpy/scipy can give other clusters.
        "numba",
        "pynndescent",
        "numpy",
        "scipy",
    ):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


@dataclass(frozen=True, eq=False)
class TopicResult:
    """What the topic cache stores: the hand-over object plus the per-sentence assignment.

    Attributes:
        assignments: the :class:`TopicAssignments` handed to the graph builders.
        sentence_topic: (S,) int64 topic of each training sentence, -1 = outlier.
        sentence_row: (S,) int64 row of each sentence's review in the training table.
    """

    assignments: TopicAssignments
    sentence_topic: np.ndarray
    sentence_row: np.ndarray


class TopicCache:
    """The topic stage's cache folder.

    Args:
        root: the cache folder (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def embeddings_path(self, key: str) -> Path:
        return self.root / "embeddings" / f"{key}.npy"

    def result_path(self, key: str) -> Path:
        return self.root / "topics" / f"{key}.npz"

    # ------------------------------------------------------------------ embeddings
    def load_embeddings(self, key: str) -> np.ndarray | None:
        """The cached unique-sentence embeddings, or None (missing, or corrupt: warned)."""
        return self._read(self.embeddings_path(key), lambda p: np.load(p, allow_pickle=False))

    def save_embeddings(self, key: str, embeddings: np.ndarray) -> Path:
        path = self.embeddings_path(key)
        arr = np.ascontiguousarray(embeddings, dtype=np.float32)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)

        with file_lock(self.root):  # the file and its checksum change together
            atomic_write(path, write)
            write_checksum(path)
        return path

    # ------------------------------------------------------------------ results
    def load_result(self, key: str) -> TopicResult | None:
        """The cached result, or None (missing, or corrupt: warned)."""
        return self._read(self.result_path(key), _load_result)

    def save_result(self, key: str, result: TopicResult) -> Path:
        path = self.result_path(key)
        a = result.assignments
        arrays: dict[str, np.ndarray] = {
            "sentence_topic": np.asarray(result.sentence_topic, dtype=np.int64),
            "sentence_row": np.asarray(result.sentence_row, dtype=np.int64),
            "topic_embeddings": np.asarray(a.topic_embeddings, dtype=np.float32),
            "labels": np.asarray(a.labels, dtype=np.str_).reshape(-1),
            "keywords_json": np.asarray(json.dumps([list(k) for k in a.keywords])),
            "meta_json": np.asarray(json.dumps(dict(a.meta), sort_keys=True)),
        }
        for name in ("user_topic", "item_topic"):
            mat = getattr(a, name).tocsr()
            arrays[f"{name}_data"] = mat.data
            arrays[f"{name}_indices"] = mat.indices
            arrays[f"{name}_indptr"] = mat.indptr
            arrays[f"{name}_shape"] = np.asarray(mat.shape, dtype=np.int64)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]

        with file_lock(self.root):  # the file and its checksum change together
            atomic_write(path, write)
            write_checksum(path)
        return path

    # ------------------------------------------------------------------ helpers
    def _read(self, path: Path, loader: Any) -> Any:
        if not path.exists():
            return None
        try:
            with file_lock(self.root):  # never between a file and its new checksum
                verify_checksum(path)
                return loader(path)
        except _READ_ERRORS as exc:
            logger.warning("Topic cache file %s cannot be used (%s); rebuilding it", path, exc)
            return None


def _load_result(path: Path) -> TopicResult:
    with np.load(path, allow_pickle=False) as z:
        mats = {}
        for name in ("user_topic", "item_topic"):
            shape = tuple(int(s) for s in z[f"{name}_shape"])
            mats[name] = sp.csr_matrix(
                (z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]), shape=shape
            )
        labels = tuple(str(s) for s in z["labels"])
        keywords = tuple(tuple(k) for k in json.loads(str(z["keywords_json"])))
        assignments = TopicAssignments(
            topic_embeddings=z["topic_embeddings"],
            user_topic=mats["user_topic"],
            item_topic=mats["item_topic"],
            labels=labels,
            keywords=keywords,
            meta=json.loads(str(z["meta_json"])),
        )
        return TopicResult(
            assignments=assignments,
            sentence_topic=z["sentence_topic"],
            sentence_row=z["sentence_row"],
        )
