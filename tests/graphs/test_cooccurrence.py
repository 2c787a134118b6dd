"""graphs/cooccurrence.py: item co-occurrence graph and item-attribute hypergraph, by hand."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphs.cooccurrence import ItemCooccurrenceBuilder, ItemCooccurrenceConfig
from graphs.item_attribute import ItemAttributeHypergraphBuilder
from mmseq.config import from_dict
from mmseq.data.schema import Interactions
from mmseq.errors import ConfigError, DataError


def _dense(part) -> torch.Tensor:
    dense = torch.zeros(part.shape)
    dense[part.edge_index[0], part.edge_index[1]] = part.edge_weight
    return dense


# Chronological training sequences of the tiny table (ties in time keep file order):
#   u0: 0 1 2 3    u1: 1 2 3    u2: 0 2 3 (items 0 and 2 share a day; file order puts 0 first)
# window 1 pairs: (0,1) x1, (1,2) x2, (2,3) x3, (0,2) x1 -> degrees i0 = 2, i1 = 3, i2 = 6, i3 = 3.


def test_cooccurrence_window_1_normalised_by_hand(tiny_interactions: Interactions) -> None:
    part = ItemCooccurrenceBuilder().build(tiny_interactions)
    expected = torch.zeros(4, 4)
    for (a, b), value in {
        (0, 1): 1 / math.sqrt(2 * 3),
        (1, 2): 2 / math.sqrt(3 * 6),
        (2, 3): 3 / math.sqrt(6 * 3),
        (0, 2): 1 / math.sqrt(2 * 6),
    }.items():
        expected[a, b] = expected[b, a] = value
    assert part.kind == "graph" and part.shape == (4, 4) and dict(part.node_offsets) == {"item": 0}
    torch.testing.assert_close(_dense(part), expected)
    assert part.meta["transitions"] == 7 and part.meta["edges"] == 4


def test_cooccurrence_window_2_raw_counts_by_hand(tiny_interactions: Interactions) -> None:
    cfg = from_dict(ItemCooccurrenceConfig, {"window": 2, "normalize": False})
    dense = _dense(ItemCooccurrenceBuilder().build(tiny_interactions, config=cfg))
    expected = torch.zeros(4, 4)
    for (a, b), count in {(0, 1): 1, (1, 2): 2, (2, 3): 3, (0, 2): 2, (1, 3): 2, (0, 3): 1}.items():
        expected[a, b] = expected[b, a] = count
    torch.testing.assert_close(dense, expected)


def test_cooccurrence_skips_repeats_and_applies_min_count(tiny_interactions: Interactions) -> None:
    extra = dataclasses.replace(
        tiny_interactions.select(np.array([6])),  # u1 buys item 3 again
        timestamp=np.array([7 * 86400]),
    )
    data = tiny_interactions.concat(extra)
    cfg = from_dict(ItemCooccurrenceConfig, {"min_count": 2, "normalize": False})
    part = ItemCooccurrenceBuilder().build(data, config=cfg)
    assert part.meta["repeat_transitions_skipped"] == 1
    assert part.meta["pairs_below_min_count"] == 2  # (0,1) and (0,2) were seen once
    expected = torch.zeros(4, 4)
    expected[1, 2] = expected[2, 1] = 2
    expected[2, 3] = expected[3, 2] = 3
    torch.testing.assert_close(_dense(part), expected)
    with pytest.raises(ConfigError, match="window"):
        from_dict(ItemCooccurrenceConfig, {"window": 0})


def test_item_attribute_hypergraph_by_hand(tiny_interactions: Interactions) -> None:
    attrs = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]], np.float32))
    data = dataclasses.replace(tiny_interactions, item_attributes=attrs)
    part = ItemAttributeHypergraphBuilder().build(data)
    assert part.kind == "hypergraph" and part.shape == (4, 3)
    np.testing.assert_array_equal(_dense(part).numpy(), attrs.toarray())
    assert part.meta["items_without_attribute"] == 1 and part.meta["empty_attributes"] == 1


def test_item_attribute_hypergraph_needs_attributes(tiny_interactions: Interactions) -> None:
    with pytest.raises(DataError, match="no item attributes"):
        ItemAttributeHypergraphBuilder().build(tiny_interactions)
