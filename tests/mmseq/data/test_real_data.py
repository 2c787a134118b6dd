"""The readers and filters against the exact statistics in ../shared/data/*/MANIFEST.md."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from mmseq.config import DataConfig
from mmseq.data.dedup import deduplicate
from mmseq.data.kcore import kcore_filter
from mmseq.data.load import load_dataset
from mmseq.data.readers import detect_format, load_interactions
from mmseq.data.stats import format_stats
from mmseq.errors import DataError

pytestmark = pytest.mark.data

MUSICAL = "amazon2014-musical-instruments-5core/reviews_Musical_Instruments_5.json.gz"
GIFT = "amazon2018-gift-cards-5core/Gift_Cards_5.json.gz"
FASHION = "amazon2018-fashion-5core/AMAZON_FASHION_5.json.gz"
APPLIANCES = "amazon2018-appliances-5core/Appliances_5.json.gz"
TOYS = "s3rec-toys-and-games/Toys_and_Games.txt.gz"
MOVIELENS = "movielens-1m-subset-users1-2999/ratings.dat.gz"


def histogram(data):
    values, counts = np.unique(data.rating, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def day(seconds):
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%d")


def test_musical_instruments_2014(shared_data):
    data = load_interactions(shared_data / MUSICAL)
    assert data.meta["format"] == "amazon"
    assert (len(data), data.num_users, data.num_items) == (10261, 1429, 900)
    assert histogram(data) == {1.0: 217, 2.0: 250, 3.0: 772, 4.0: 2084, 5.0: 6938}
    assert int((data.review != "").sum()) == 10254
    assert (day(data.timestamp.min()), day(data.timestamp.max())) == ("2004-09-18", "2014-07-22")
    assert deduplicate(data).meta["duplicates_removed"] == 0
    assert data.user_ids[0] == "A2IBPI20UZIR0U" and data.item_ids[0] == "1384719342"


def test_gift_cards_2018_dedup_then_5core(shared_data):
    data = load_interactions(shared_data / GIFT)
    assert (len(data), data.num_users, data.num_items) == (2972, 458, 148)
    assert histogram(data) == {1.0: 22, 2.0: 11, 3.0: 33, 4.0: 154, 5.0: 2752}
    assert int((data.review != "").sum()) == 2966
    unique = deduplicate(data)
    assert len(unique) == 2965 and unique.meta["duplicates_removed"] == 7
    core = kcore_filter(unique, 5)
    assert (len(core), core.num_users, core.num_items) == (2941, 453, 147)


def test_fashion_2018_dedup_then_5core(shared_data):
    data = load_dataset(DataConfig(kcore=5), shared_data / FASHION)
    assert data.meta["duplicates_removed"] == 134
    assert (len(data), data.num_users, data.num_items) == (2962, 374, 8)
    read = data.meta["steps"][0]["after"]
    assert read == {"interactions": 3176, "users": 406, "items": 31}
    assert data.meta["steps"][0]["step"] == "read"


def test_appliances_2018_5core_is_empty_and_says_so(shared_data):
    with pytest.raises(
        DataError, match=r"5-core .*Appliances_5.*183 interactions.*47 users, 48 items"
    ):
        load_dataset(DataConfig(kcore=5), shared_data / APPLIANCES)
    data = deduplicate(load_interactions(shared_data / APPLIANCES))
    assert len(data) == 183 and data.meta["duplicates_removed"] == 2094


def test_toys_s3rec_with_attributes(shared_data):
    data = load_interactions(shared_data / TOYS)
    assert detect_format(shared_data / TOYS) == "s3rec"
    assert (len(data), data.num_users, data.num_items) == (167597, 19412, 11924)
    attrs = data.item_attributes
    assert attrs.shape == (11924, 1027)
    assert data.meta["num_attributes"] == 1027
    assert data.meta["items_with_attributes"] == 11924
    assert int((attrs.getnnz(axis=1) > 0).sum()) == 11924
    lengths = np.bincount(data.user)
    assert (lengths.min(), lengths.max()) == (5, 550)
    # first line "1 1 2 3 4 5": user "1" saw items 1..5 at positions 0..4
    assert data.item_ids[data.item[:5]].tolist() == ["1", "2", "3", "4", "5"]
    assert data.timestamp[:5].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("path", "users", "items", "interactions", "attributes", "listed"),
    [
        ("s3rec-lastfm/LastFM.txt.gz", 1090, 3646, 52551, 388, 3646),
        ("s3rec-beauty/Beauty.txt.gz", 22363, 12101, 198502, 637, 12101),
        ("s3rec-sports-and-outdoors/Sports_and_Outdoors.txt.gz", 35598, 18357, 296337, 2277, 18357),
        ("s3rec-yelp/Yelp.txt.gz", 30431, 20033, 316354, 1001, 20033),
    ],
)
def test_other_s3rec_counts(shared_data, path, users, items, interactions, attributes, listed):
    data = load_interactions(shared_data / path)
    assert (data.num_users, data.num_items, len(data)) == (users, items, interactions)
    assert data.meta["num_attributes"] == attributes
    assert data.meta["items_with_attributes"] == listed


def test_movielens_subset(shared_data):
    data = load_interactions(shared_data / MOVIELENS)
    assert data.meta["format"] == "movielens"
    assert (len(data), data.num_users, data.num_items) == (487650, 2999, 3615)
    assert histogram(data) == {1.0: 27472, 2.0: 53838, 3.0: 127216, 4.0: 170579, 5.0: 108545}
    assert (day(data.timestamp.min()), day(data.timestamp.max())) == ("2000-10-04", "2003-02-27")
    assert data.user_ids[0] == "1" and data.item_ids[0] == "1193"


def test_stats_of_a_real_file(shared_data):
    text = format_stats(load_dataset(DataConfig(kcore=5), shared_data / GIFT))
    assert "2,941" in text and "7 removed before this table" in text and "k=5" in text
    assert "2012-01-31 .. 2018-08-22" in text
