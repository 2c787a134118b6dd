"""Readers on small hand-written files: values, id order, meta, format detection, round trips."""

from __future__ import annotations

import csv
import io
import json
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmseq.data.readers import MAX_SECONDS, READERS, detect_format, load_interactions
from mmseq.data.readers.recbole import write_recbole_inter
from mmseq.data.synthetic import SyntheticConfig, generate_synthetic
from mmseq.errors import ConfigError


def raw_rows(data):
    """(user id, item id, rating, timestamp) per row, with raw ids."""
    return list(
        zip(
            data.user_ids[data.user].tolist(),
            data.item_ids[data.item].tolist(),
            data.rating.tolist(),
            data.timestamp.tolist(),
        )
    )


# ------------------------------------------------------------------------------------ amazon
def amazon_lines(review):
    return (
        "\n".join(
            [
                review("B", "x", 5.0, 100, reviewText="Great strings.", summary="Five"),
                # 2018 extras are ignored; reviewText missing -> ""
                review(
                    "A",
                    "y",
                    3.0,
                    50,
                    summary="Meh",
                    vote="1,234",
                    style={"Size:": " M"},
                    verified=True,
                    image=["http://x"],
                ),
                review("B", "y", 4, 200, reviewText="", summary="Four"),
                review("C", "x", 1.5, 10, reviewText="Bad.", summary=None),
            ]
        )
        + "\n"
    )


@pytest.mark.parametrize("name", ["reviews.json", "reviews.json.gz"])
def test_amazon_values_ids_and_meta(write_file, review, name):
    data = load_interactions(write_file(name, amazon_lines(review)))
    # dense ids in order of first appearance, rows in file order
    assert data.user_ids.tolist() == ["B", "A", "C"]
    assert data.item_ids.tolist() == ["x", "y"]
    assert data.user.tolist() == [0, 1, 0, 2]
    assert data.item.tolist() == [0, 1, 1, 0]
    assert data.rating.dtype == np.float32 and data.rating.tolist() == [5.0, 3.0, 4.0, 1.5]
    assert data.timestamp.dtype == np.int64 and data.timestamp.tolist() == [100, 50, 200, 10]
    assert data.review.tolist() == ["Great strings.", "", "", "Bad."]
    assert data.summary.tolist() == ["Five", "Meh", "Four", ""]
    assert data.meta["format"] == "amazon"
    assert data.meta["rows_read"] == 4
    assert data.meta["text_missing"] == 1
    assert data.meta["text_empty"] == 2
    assert data.meta["summary_missing"] == 1
    assert data.meta["skipped"] == {}
    assert data.meta["has_text"] and data.meta["has_rating"] and data.meta["has_time"]


def test_amazon_gzip_and_plain_give_the_same_table(write_file, review):
    plain = load_interactions(write_file("a.json", amazon_lines(review)))
    packed = load_interactions(write_file("b.json.gz", amazon_lines(review)))
    assert plain.content_hash() == packed.content_hash()


def test_skip_policy_counts_and_logs_every_reason(write_file, review, caplog):
    text = (
        "\n".join(
            [
                review("A", "x", 5.0, 1),
                "{not json",
                review("A", "y", "five", 2),
                review("B", "y", 4.0, None),
                "",
                review("B", "x", 2.0, 3),
            ]
        )
        + "\n"
    )
    path = write_file("mixed.json", text)
    with caplog.at_level(logging.WARNING, logger="mmseq.data.readers"):
        data = load_interactions(path, on_bad_row="skip")
    assert raw_rows(data) == [("A", "x", 5.0, 1), ("B", "x", 2.0, 3)]
    assert data.meta["skipped"] == {"bad_overall": 1, "bad_unixReviewTime": 1, "invalid_json": 1}
    assert data.meta["rows_read"] == 5
    assert data.meta["blank_lines"] == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "mixed.json" in logged and "invalid_json" in logged and "line 2" in logged


def test_unknown_bad_row_policy_is_a_config_error(write_file, review):
    with pytest.raises(ConfigError, match="on_bad_row"):
        load_interactions(write_file("a.json", review("A", "x", 5.0, 1)), on_bad_row="ignore")


# ------------------------------------------------------------------------------------ s3rec
def test_s3rec_sequences_positions_and_attributes(write_file):
    path = write_file("Toys.txt", "1 5 6 7\n2 6 8\n")
    write_file(
        "Toys_item2attributes.json", json.dumps({"5": [1, 2], "6": [2, 2], "7": [], "9": [3]})
    )
    data = load_interactions(path)
    assert data.meta["format"] == "s3rec"
    assert data.user_ids.tolist() == ["1", "2"]
    assert data.item_ids.tolist() == ["5", "6", "7", "8"]
    assert data.user.tolist() == [0, 0, 0, 1, 1]
    assert data.item.tolist() == [0, 1, 2, 1, 3]
    assert data.timestamp.tolist() == [0, 1, 2, 0, 1]  # position in the sequence
    assert data.rating.tolist() == [1.0] * 5
    assert not data.meta["has_time"] and not data.meta["has_rating"] and data.review is None
    # attribute ids 1, 2 (3 belongs to item 9, absent from the sequences) -> columns 0, 1
    assert data.item_attributes.toarray().tolist() == [[1, 1], [0, 1], [0, 0], [0, 0]]
    assert data.meta["num_attributes"] == 2
    assert data.meta["items_with_attributes"] == 3
    assert data.meta["items_with_nonempty_attributes"] == 2
    assert data.meta["attribute_duplicates_dropped"] == 1
    assert data.meta["attribute_items_not_in_data"] == 1


def test_s3rec_gz_side_file_and_opt_out(write_file):
    path = write_file("Beauty.txt.gz", "7 1 2\n8 2 1\n")
    write_file("Beauty_item2attributes.json.gz", json.dumps({"1": [4], "2": [9, 4]}))
    data = load_interactions(path)
    assert data.item_attributes.toarray().tolist() == [[1, 0], [1, 1]]
    assert load_interactions(path, attributes=False).item_attributes is None


def test_s3rec_attributes_follow_compaction(write_file):
    path = write_file("T.txt", "1 5 6\n2 7\n")
    write_file("T_item2attributes.json", json.dumps({"5": [1], "6": [2], "7": [3]}))
    data = load_interactions(path)
    sub = data.select(data.user == 1).compact()
    assert sub.item_ids.tolist() == ["7"]
    assert sub.item_attributes.toarray().tolist() == [[0, 0, 1]]


# ------------------------------------------------------------------------------------ movielens
def test_movielens_double_colon_and_tab(write_file):
    dat = load_interactions(
        write_file(
            "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
        )
    )
    assert dat.meta["format"] == "movielens"
    assert raw_rows(dat) == [
        ("1", "1193", 5.0, 978300760),
        ("1", "661", 3.0, 978302109),
        ("2", "1193", 4.0, 978298413),
    ]
    tab = load_interactions(
        write_file("u.data", "196\t242\t3\t881250949\r\n186\t302\t3\t891717742\r\n")
    )
    assert tab.meta["format"] == "movielens-tab"
    assert raw_rows(tab) == [("196", "242", 3.0, 881250949), ("186", "302", 3.0, 891717742)]


# ------------------------------------------------------------------------------------ recbole
def test_recbole_reads_named_columns_in_any_order(write_file):
    text = (
        "item_id:token\tuser_id:token\ttimestamp:float\trating:float\tlabel:float\n"
        "i1\tu1\t10.0\t4\t1\n"
        "i2\tu2\t5\t2.5\t0\n"
    )
    data = load_interactions(write_file("ml.inter", text))
    assert raw_rows(data) == [("u1", "i1", 4.0, 10), ("u2", "i2", 2.5, 5)]
    assert data.meta["columns"] == ["item_id", "user_id", "timestamp", "rating", "label"]


def test_recbole_without_rating_and_time(write_file):
    data = load_interactions(write_file("x.inter", "user_id:token\titem_id:token\na\tb\na\tc\n"))
    assert data.rating.tolist() == [1.0, 1.0] and data.timestamp.tolist() == [0, 1]
    assert not data.meta["has_rating"] and not data.meta["has_time"]


@pytest.mark.parametrize("name", ["out.inter", "out.inter.gz"])
def test_recbole_round_trip(tmp_path, tiny_interactions, name):
    path = write_recbole_inter(tiny_interactions, tmp_path / name)
    back = load_interactions(path)
    assert back.meta["format"] == "recbole"
    assert back.meta["columns"] == ["user_id", "item_id", "rating", "timestamp"]
    assert raw_rows(back) == raw_rows(tiny_interactions)
    assert back.user_ids.tolist() == tiny_interactions.user_ids.tolist()


def test_recbole_round_trip_of_implicit_sequences(tmp_path, write_file):
    seq = load_interactions(write_file("S.txt", "3 1 2 3\n4 2\n"))
    back = load_interactions(write_recbole_inter(seq, tmp_path / "s.inter"))
    assert back.meta["columns"] == ["user_id", "item_id"]  # no fake ratings or times written
    assert raw_rows(back) == raw_rows(seq)


def test_recbole_round_trip_of_synthetic_ratings(tmp_path):
    data = generate_synthetic(SyntheticConfig(num_users=30, num_items=40, with_text=False))
    back = load_interactions(write_recbole_inter(data, tmp_path / "syn.inter"))
    assert raw_rows(back) == raw_rows(data)


# ------------------------------------------------------------------------------------ csv
def test_csv_with_quoted_multiline_text_and_custom_columns(write_file):
    text = 'who,what,stars,when,body\nu1,i1,4.5,100,"Nice, really\nnice"\nu2,i1,2,200,plain\n'
    data = load_interactions(
        write_file("r.csv", text),
        user_col="who",
        item_col="what",
        rating_col="stars",
        time_col="when",
        text_col="body",
    )
    assert raw_rows(data) == [("u1", "i1", 4.5, 100), ("u2", "i1", 2.0, 200)]
    assert data.review.tolist() == ["Nice, really\nnice", "plain"]


def test_csv_defaults_pick_optional_columns_when_present(write_file):
    data = load_interactions(write_file("r.csv", "user_id,item_id,rating\na,b,3\n"))
    assert data.meta["has_rating"] and not data.meta["has_time"] and data.review is None
    assert data.rating.tolist() == [3.0]


# ------------------------------------------------------------------------------------ detection
@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("r.json.gz", '{"reviewerID": "A", "asin": "x", "overall": 5.0}\n', "amazon"),
        ("reviews.jsonl", '{"asin": "x", "reviewerID": "A"}\n', "amazon"),
        ("Toys.txt.gz", "1 2 3 4\n", "s3rec"),
        ("data.txt", "1::2::3::4\n", "movielens"),
        ("ratings.dat.gz", "1::2::3::4\n", "movielens"),
        ("u.data", "1\t2\t3\t4\n", "movielens-tab"),
        ("other.tsv", "1\t2\t3\t4\n", "movielens-tab"),
        ("ml-100k.inter", "user_id:token\titem_id:token\n", "recbole"),
        ("whatever", "user_id:token\titem_id:token\n", "recbole"),
        ("table.CSV", "user_id,item_id\n", "csv"),
    ],
)
def test_detect_format(write_file, name, content, expected):
    assert detect_format(write_file(name, content)) == expected


def test_registry_lists_every_reader():
    assert READERS.names() == ["amazon", "csv", "movielens", "movielens-tab", "recbole", "s3rec"]


def test_unknown_reader_option_is_a_config_error(write_file):
    with pytest.raises(
        ConfigError, match=r"Unknown option\(s\) \['delimiter'\] for format 'amazon'"
    ):
        load_interactions(write_file("a.json", '{"reviewerID": "A", "asin": "x"}\n'), delimiter=";")


# ------------------------------------------------------------------------------------ properties
ids = st.text(alphabet="abcXYZ019-_.", min_size=1, max_size=6)
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
rows = st.lists(
    st.tuples(
        ids,
        ids,
        st.floats(1, 5, width=32),  # the Amazon star scale (the reader rejects others)
        st.integers(0, MAX_SECONDS),
        st.one_of(st.none(), texts),
    ),
    min_size=1,
    max_size=25,
)
any_rating_rows = st.lists(  # CSV takes any finite rating
    st.tuples(
        ids,
        ids,
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.integers(0, MAX_SECONDS),
        st.one_of(st.none(), texts),
    ),
    min_size=1,
    max_size=25,
)
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def expected(rows_):
    return (
        [(u, i, float(np.float32(r)), t) for u, i, r, t, _ in rows_],
        ["" if x is None else x for *_, x in rows_],
    )


@PROPERTY
@given(rows=rows)
def test_amazon_round_trip_property(write_file, review, rows):
    text = "\n".join(
        json.dumps(
            {
                "reviewerID": u,
                "asin": i,
                "overall": r,
                "unixReviewTime": t,
                **({} if x is None else {"reviewText": x}),
            },
            ensure_ascii=False,
        )
        for u, i, r, t, x in rows
    )
    data = load_interactions(write_file("prop.json.gz", text))
    want_rows, want_text = expected(rows)
    assert raw_rows(data) == want_rows
    assert data.review.tolist() == want_text
    assert data.meta["text_missing"] == sum(x is None for *_, x in rows)


@PROPERTY
@given(rows=any_rating_rows)
def test_csv_round_trip_property(write_file, rows):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["user_id", "item_id", "rating", "timestamp", "review"])
    writer.writerows([u, i, repr(r), t, "" if x is None else x] for u, i, r, t, x in rows)
    data = load_interactions(write_file("prop.csv", buffer.getvalue()))
    want_rows, want_text = expected(rows)
    assert raw_rows(data) == want_rows
    assert data.review.tolist() == want_text
