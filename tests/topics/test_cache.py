"""topics/cache.py through extract_topics: hits, misses, embedding reuse, corrupt files."""

from __future__ import annotations

import logging

import numpy as np
from topic_helpers import TOY_ROWS, KeywordEncoder, make_interactions

from topics import TopicConfig, TopicExtractor

CFG = TopicConfig(min_topic_size=3)


def _run(data, cache_dir, pca, cfg=CFG):
    enc = KeywordEncoder()
    ex = TopicExtractor(cfg, encoder=enc, reducer=pca, progress=False)
    return ex.fit(data, cache_dir=cache_dir), ex, enc


def _same(a, b) -> None:
    assert a.topic_embeddings.tobytes() == b.topic_embeddings.tobytes()
    for name in ("user_topic", "item_topic"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x != y).nnz == 0 and x.dtype == y.dtype and x.shape == y.shape
    assert a.labels == b.labels and a.keywords == b.keywords and a.meta == b.meta


def test_second_run_loads_the_cache(toy, pca, tmp_path) -> None:
    first, ex1, enc1 = _run(toy, tmp_path, pca)
    assert not ex1.cache_hit_ and len(enc1.calls) == 1
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert [f.split("/")[0] for f in files] == ["embeddings"] * 2 + ["topics"] * 2
    assert all(f.endswith((".npy", ".npz", ".sha256")) for f in files)
    second, ex2, enc2 = _run(toy, tmp_path, pca)
    assert ex2.cache_hit_ and enc2.calls == [] and ex2.topic_model_ is None
    _same(first, second)
    np.testing.assert_array_equal(ex1.result_.sentence_topic, ex2.result_.sentence_topic)


def test_clustering_change_reuses_embeddings(toy, pca, tmp_path) -> None:
    first, _, _ = _run(toy, tmp_path, pca)
    other, ex, enc = _run(toy, tmp_path, pca, TopicConfig(min_topic_size=4))
    assert not ex.cache_hit_ and not ex.embeddings_computed_ and enc.calls == []
    assert other.meta["cache_key"] != first.meta["cache_key"]


def test_text_change_rebuilds_everything(toy, pca, tmp_path) -> None:
    first, _, _ = _run(toy, tmp_path, pca)
    rows = list(TOY_ROWS)
    rows[0] = (0, 0, "The strings sound warm. The cable is long.")
    changed, ex, enc = _run(make_interactions(rows), tmp_path, pca)
    assert not ex.cache_hit_ and ex.embeddings_computed_ and len(enc.calls) == 1
    assert changed.meta["input_hash"] != first.meta["input_hash"]


def test_corrupt_result_is_rebuilt_with_a_warning(toy, pca, tmp_path, caplog) -> None:
    first, ex, _ = _run(toy, tmp_path, pca)
    path = next((tmp_path / "topics").glob("*.npz"))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="topics.cache"):
        again, ex2, enc2 = _run(toy, tmp_path, pca)
    assert "cannot be used" in caplog.text and "Checksum mismatch" in caplog.text
    assert not ex2.cache_hit_ and enc2.calls == []  # embeddings still good: not re-embedded
    _same(first, again)
    assert _run(toy, tmp_path, pca)[1].cache_hit_  # the rebuilt file is valid again


def test_corrupt_or_unchecked_embeddings_are_recomputed(toy, pca, tmp_path, caplog) -> None:
    _run(toy, tmp_path, pca)
    for result in (tmp_path / "topics").glob("*"):
        result.unlink()
    emb = next((tmp_path / "embeddings").glob("*.npy"))
    np.save(emb, np.zeros((17, 4), dtype=np.float32))  # valid file, stale checksum
    with caplog.at_level(logging.WARNING, logger="topics.cache"):
        _, ex, enc = _run(toy, tmp_path, pca)
    assert ex.embeddings_computed_ and len(enc.calls) == 1 and "Checksum mismatch" in caplog.text
    for result in (tmp_path / "topics").glob("*"):
        result.unlink()
    emb.with_name(emb.name + ".sha256").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="topics.cache"):
        _, ex, enc = _run(toy, tmp_path, pca)
    assert ex.embeddings_computed_ and "Missing checksum" in caplog.text
