"""topics/ray_encode.py: the Ray Data engine gives the local engine's embedding cache."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from mmseq.config import from_dict
from mmseq.errors import ConfigError
from mmseq.stages import stage_key
from topics.cache import TopicCache
from topics.config import TopicConfig
from topics.encoder import CallableEncoder, MiniLMEncoder, build_encoder
from topics.extract import TopicExtractor
from topics.ray_encode import RayDataEncoder, encoder_spec
from topics.sentences import split_sentences

MI = "amazon2014-musical-instruments-5core/reviews_Musical_Instruments_5.json.gz"


def test_engine_is_a_checked_setting_outside_every_cache_key() -> None:
    with pytest.raises(ConfigError, match=r"TopicConfig.engine in \['local', 'ray'\]"):
        TopicConfig(engine="spark")
    local, ray = TopicConfig(), TopicConfig(engine="ray", ray_address="auto")
    assert local.encoder_settings() == ray.encoder_settings()
    assert local.clustering_settings() == ray.clustering_settings()
    # ... and outside the topic stage's key, hence the graph bundle's (the bundle does not
    # change with the engine or the worker count), while a clustering setting does change it
    base = stage_key("topics", TopicConfig(min_topic_size=30))
    moved = TopicConfig(min_topic_size=30, engine="ray", workers=4, threads=2)
    assert stage_key("topics", moved) == base
    assert stage_key("topics", TopicConfig(min_topic_size=31)) != base


def test_ray_engine_wraps_the_configured_encoder_and_keeps_its_id() -> None:
    cfg = from_dict(TopicConfig, {"engine": "ray", "workers": 2}, where="test")
    enc = build_encoder(cfg)
    assert isinstance(enc, RayDataEncoder) and enc.workers == 2
    assert enc.encoder_id == build_encoder(TopicConfig()).encoder_id  # same cache key
    cls, kwargs = encoder_spec(enc.inner)
    assert cls is MiniLMEncoder and kwargs["threads"] == 1 and kwargs["workers"] == 1
    with pytest.raises(ConfigError, match="sentence-transformers encoder"):
        RayDataEncoder(CallableEncoder(lambda texts: np.zeros((len(texts), 2))))


@pytest.mark.slow  # starts a local Ray (about 10 s) and two actors that each load MiniLM
@pytest.mark.data
def test_ray_path_writes_the_local_paths_cache(minilm, shared_data, tmp_path) -> None:
    pytest.importorskip("ray")
    path = shared_data / MI
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        reviews = [json.loads(line)["reviewText"] for _, line in zip(range(60), fh)]
    table = split_sentences(np.asarray(reviews, dtype=object))
    assert len(table) > 200  # a few batches per actor

    caches = {}
    for engine in ("local", "ray"):
        cfg = TopicConfig(engine=engine, workers=2)
        extractor = TopicExtractor(cfg, encoder=None, progress=False)
        if engine == "local":  # reuse the session's loaded model: same settings, same id
            extractor.encoder = minilm
        cache = TopicCache(tmp_path / engine)
        extractor.timings_ = {}  # fit() sets it; _embed alone is driven here
        emb = extractor._embed(table, extractor.encoder.encoder_id, cache)  # (S, 384)
        caches[engine] = (extractor.embedding_key_, emb, cache)

    (key_local, emb_local, cache_local), (key_ray, emb_ray, cache_ray) = caches.values()
    assert key_ray == key_local
    stored_local = cache_local.load_embeddings(key_local)
    stored_ray = cache_ray.load_embeddings(key_ray)
    assert stored_ray.shape == stored_local.shape == (stored_local.shape[0], 384)
    np.testing.assert_allclose(stored_ray, stored_local, rtol=0, atol=1e-5)
    np.testing.assert_allclose(emb_ray, emb_local, rtol=0, atol=1e-5)
