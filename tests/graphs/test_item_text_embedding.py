"""graphs/item_text_embedding.py: the text feature part by hand, zero rows, options, errors, and
no held-out review reaching it through the real ``item_text`` stage (build_all on the fit rows)."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from graphs import GRAPH_BUILDERS, build_all
from graphs.item_text_embedding import ItemTextEmbeddingBuilder, ItemTextEmbeddingConfig
from mmseq.data.schema import Interactions
from mmseq.data.split import split_interactions
from mmseq.errors import ArtifactError, ConfigError, DataError
from topics.config import TopicConfig
from topics.encoder import TOPIC_ENCODERS, SentenceEncoder

# 4 items (tiny_interactions has 4); item 3 has no text.
FEATURES = np.array([[3.0, 4.0], [0.8, 0.6], [0.0, 2.0], [0.0, 0.0]], dtype=np.float32)


def test_registered_edgeless_item_part_carrying_the_features(
    tiny_interactions: Interactions,
) -> None:
    assert GRAPH_BUILDERS.get("item_text_embedding") is ItemTextEmbeddingBuilder
    part = ItemTextEmbeddingBuilder().build(tiny_interactions, {"item_text": FEATURES})
    assert part.name == "item_text_embedding" and part.kind == "graph"
    assert part.shape == (4, 4) and part.nnz == 0 and dict(part.node_offsets) == {"item": 0}
    text = part.features["text"]
    assert text.dtype == torch.float32 and tuple(text.shape) == (4, 2)
    torch.testing.assert_close(text, torch.from_numpy(FEATURES))
    assert not text[3].any()  # no training text: the zero row
    assert part.meta["items_without_text"] == 1 and part.meta["items_with_text"] == 3
    assert part.meta["text_dim"] == 2 and part.meta["num_items"] == 4


def test_l2_normalisation_by_hand_keeps_zero_rows(tiny_interactions: Interactions) -> None:
    part = ItemTextEmbeddingBuilder().build(
        tiny_interactions, {"item_text": FEATURES}, ItemTextEmbeddingConfig(normalize="l2")
    )
    expected = torch.tensor([[0.6, 0.8], [0.8, 0.6], [0.0, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(part.features["text"], expected)


def test_errors(tiny_interactions: Interactions) -> None:
    with pytest.raises(ArtifactError, match="needs the 'item_text' artifact"):
        ItemTextEmbeddingBuilder().build(tiny_interactions)
    with pytest.raises(DataError, match=r"finite \(4, d\) 'item_text'"):
        ItemTextEmbeddingBuilder().build(tiny_interactions, {"item_text": FEATURES[:3]})
    bad = FEATURES.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="finite"):
        ItemTextEmbeddingBuilder().build(tiny_interactions, {"item_text": bad})
    with pytest.raises(ConfigError, match="normalize"):
        build_all(
            [{"builder": "item_text_embedding", "params": {"normalize": "l1"}}],
            tiny_interactions,
            artifacts={"item_text": FEATURES},
            cache_dir=None,
        )


class _WordHashEncoder(SentenceEncoder):
    """(S, 8) bag of crc32-hashed words: deterministic, no model, different texts differ."""

    @property
    def encoder_id(self) -> str:
        return "test-word-hash-v1"

    def encode(self, sentences: Sequence[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(sentences), 8), dtype=np.float32)
        for s, text in enumerate(sentences):
            for word in text.lower().split():
                out[s, zlib.crc32(word.encode()) % 8] += 1.0
        return out


@pytest.fixture
def word_hash(monkeypatch: pytest.MonkeyPatch) -> TopicConfig:
    class _Registered(_WordHashEncoder):
        @classmethod
        def from_config(cls, cfg: TopicConfig) -> SentenceEncoder:
            return cls()

    monkeypatch.setitem(TOPIC_ENCODERS._entries, "word-hash", _Registered)
    return TopicConfig(encoder="word-hash")


def _text_feature(data: Interactions, cfg: TopicConfig) -> torch.Tensor:
    """The part built as build_graphs.py builds it: stage and builder on the split's fit rows."""
    fit = split_interactions(data, "ratio-80-20").fit
    bundle = build_all(
        [{"builder": "item_text_embedding"}],
        fit,
        stage_configs={"item_text": cfg},
        cache_dir=None,
    )
    return bundle["item_text_embedding"].features["text"]


def test_a_review_only_in_validation_or_test_never_changes_the_feature(
    word_hash: TopicConfig,
) -> None:
    from mmseq.data.synthetic import SyntheticConfig, generate_synthetic

    data = generate_synthetic(SyntheticConfig(num_users=30, num_items=24, num_topics=4, seed=3))
    split = split_interactions(data, "ratio-80-20")
    fit_pairs = set(zip(split.fit.user.tolist(), split.fit.item.tolist()))
    held = np.array([(u, i) not in fit_pairs for u, i in zip(data.user, data.item)])
    assert held.sum() > 0
    before = _text_feature(data, word_hash)
    assert tuple(before.shape) == (data.num_items, 8) and bool(before.any())
    leak = "Leaked review words zebra quasar! Only held out rows say this."
    review = data.review.copy()
    review[held] = leak
    after = _text_feature(dataclasses.replace(data, review=review), word_hash)
    assert torch.equal(before, after)
    # Control, so that the test can fail: the same rewrite of the FIT rows does change it.
    review[~held] = leak
    changed = _text_feature(dataclasses.replace(data, review=review), word_hash)
    assert not torch.equal(before, changed)


def test_item_without_training_text_gets_a_zero_row(word_hash: TopicConfig) -> None:
    from mmseq.data.synthetic import SyntheticConfig, generate_synthetic

    data = generate_synthetic(SyntheticConfig(num_users=30, num_items=24, num_topics=4, seed=3))
    fit = split_interactions(data, "ratio-80-20").fit
    review = fit.review.copy()
    silent = fit.item == int(fit.item[0])  # every training review of one item made empty
    review[silent] = ""
    quiet = dataclasses.replace(fit, review=review)
    part = build_all(
        [{"builder": "item_text_embedding"}],
        quiet,
        stage_configs={"item_text": word_hash},
        cache_dir=None,
    )["item_text_embedding"]
    text = part.features["text"]
    assert not text[int(fit.item[0])].any()
    rows_with_text = np.unique(quiet.item[~silent])
    assert bool(text[torch.from_numpy(rows_with_text)].abs().sum(1).gt(0).all())
    assert part.meta["items_without_text"] == fit.num_items - len(rows_with_text)
