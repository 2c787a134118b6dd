"""Bad input -> one-line DataError naming the file, the 1-based line and the field."""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest

from mmseq.data.kcore import kcore_filter
from mmseq.data.readers import load_interactions
from mmseq.data.schema import Interactions
from mmseq.errors import DataError


def fails(path, line=None, *, field=None, match=None, names=None, **options):
    """Load ``path``, expect a DataError and check its message; return the message.

    ``names`` is the file the message must name (default: ``path``).
    """
    with pytest.raises(DataError) as info:
        load_interactions(path, **options)
    msg = str(info.value)
    assert "\n" not in msg, msg
    # no library traceback chained to ours ("raise ... from None" inside except blocks)
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert str(names or path) in msg, msg
    if line is not None:
        assert f", line {line}" in msg, msg
    if field is not None:
        assert f"field '{field}'" in msg, msg
    if match is not None:
        assert re.search(match, msg), msg
    return msg


def good(review, n=1):
    return "\n".join(review(f"U{k}", f"I{k}", 5.0, 100 + k) for k in range(n))


def test_truncated_gzip(tmp_path, review):
    packed = gzip.compress((good(review, 400) + "\n").encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(packed[: len(packed) // 2])
    msg = fails(path, format="amazon", match="truncated or corrupt gzip")
    line = int(re.search(r"line (\d+)", msg).group(1))
    assert 1 < line < 400


def test_corrupt_gzip_and_missing_header(tmp_path, write_file, review):
    packed = bytearray(gzip.compress((good(review, 50) + "\n").encode()))
    packed[40:60] = b"\xff" * 20
    path = tmp_path / "bad.json.gz"
    path.write_bytes(bytes(packed))
    fails(path, format="amazon", match="gzip")
    fails(write_file("plain.json.gz2", "x"), match="cannot detect the format")
    named = tmp_path / "not.json.gz"
    named.write_text(good(review))
    fails(named, 1, format="amazon", match="not a gzip file")


def test_invalid_json(write_file, review):
    fails(
        write_file("r.json", good(review) + '\n{"reviewerID": "A", "asin": \n'),
        2,
        match="invalid JSON",
    )


def test_json_line_that_is_not_an_object(write_file, review):
    fails(
        write_file("r.json", good(review) + "\n[1, 2]\n"),
        2,
        format="amazon",
        match="expected a JSON object",
    )


def test_missing_required_field(write_file, review):
    path = write_file("r.json", good(review, 2) + "\n" + review("A", None, 4.0, 5) + "\n")
    fails(path, 3, field="asin", match="missing required field")


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("five", "expected a number"),
        (True, "expected a number"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (1e39, "float32 range"),
    ],
)
def test_bad_rating(write_file, review, value, pattern):
    path = write_file("r.json.gz", good(review, 3) + "\n" + review("A", "x", value, 5) + "\n")
    fails(path, 4, field="overall", match=pattern)


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (None, "missing required field"),
        (-5, "seconds >= 0"),
        (1.5, "whole seconds"),
        ("2014-01-01", "whole seconds"),
    ],
)
def test_bad_timestamp(write_file, review, value, pattern):
    path = write_file("r.json", review("A", "x", 5.0, value) + "\n")
    fails(path, 1, field="unixReviewTime", match=pattern)


def test_non_utf8_bytes(write_file, review):
    data = (good(review, 2) + "\n").encode() + b'{"reviewerID": "\xff\xfe"}\n'
    fails(write_file("r.json", data), 3, format="amazon", match="not valid UTF-8")


def test_non_utf8_line_is_counted_when_skipping(write_file, review):
    data = (good(review, 2) + "\n").encode() + b'{"reviewerID": "\xff"}\n'
    loaded = load_interactions(write_file("r.json", data), on_bad_row="skip")
    assert len(loaded) == 2 and loaded.meta["skipped"] == {"non_utf8": 1}


@pytest.mark.parametrize("content", [b"", b"\n\n", gzip.compress(b"", mtime=0)])
def test_empty_file(write_file, content):
    fails(write_file("empty.json", content), 1, format="amazon", match="empty")
    fails(write_file("empty2.json", content), 1, match="empty")  # auto detection too


def test_unknown_and_undetectable_format(write_file):
    path = write_file("data.bin", "hello world\n")
    msg = fails(path, format="parquet", match="unknown format 'parquet'")
    assert "'amazon'" in msg and "'s3rec'" in msg and "'recbole'" in msg
    msg = fails(path, match="cannot detect the format")
    assert "known formats" in msg and "'movielens'" in msg


def test_missing_file(tmp_path):
    fails(tmp_path / "nope.json", match="file not found")


def test_s3rec_bad_token_and_empty_sequence(write_file):
    fails(write_file("a.txt", "1 2 3\n2 4 x5\n"), 2, format="s3rec", match="integer ids")
    fails(write_file("b.txt", "1 2 3\n\n7\n"), 3, format="s3rec", match="at least one item")
    skipped = load_interactions(write_file("c.txt", "1 2 3\n2 4 x5\n9\n"), on_bad_row="skip")
    assert skipped.meta["skipped"] == {"empty_sequence": 1, "non_integer_id": 1}
    assert skipped.item_ids.tolist() == ["2", "3"]


def test_s3rec_bad_attribute_file(write_file):
    path = write_file("T.txt", "1 2 3\n")
    side = write_file("T_item2attributes.json", '{"2": [1],\n "3": [2\n')
    fails(path, 3, names=side, match="invalid JSON")
    write_file("T_item2attributes.json", '{"2": [1, "a"]}')
    fails(path, names=side, match=r"item '2': expected a list of integer attribute ids")


def test_movielens_field_count_and_values(write_file):
    fails(write_file("ratings.dat", "1::2::3::4\n1::2::3\n"), 2, match="expected 4 fields")
    fails(
        write_file("ratings.dat", "1::2::3::4\n1::5::x::4\n"),
        2,
        field="rating",
        match="expected a number",
    )
    fails(write_file("ratings.dat", "1::2::nan::4\n"), 1, field="rating", match="finite")
    fails(
        write_file("ratings.dat", "1::2::3::4\n\n1::3::3::-9\n"), 3, field="timestamp", match=">= 0"
    )
    fails(write_file("ratings.dat", "1::2::3::\n"), 1, field="timestamp", match="missing")


def test_csv_missing_column_and_bad_row(write_file):
    fails(write_file("a.csv", "user,item_id\nu,i\n"), 1, match="no column 'user_id'")
    fails(
        write_file("b.csv", "user_id,item_id\nu,i\n"),
        1,
        rating_col="stars",
        match="no column 'stars'",
    )
    text = 'user_id,item_id,review\nu,i,"two\nlines"\nu,j\n'
    fails(write_file("c.csv", text), 4, match="expected 3 fields")
    fails(
        write_file("d.csv", "user_id,item_id,timestamp\nu,i,1\n,j,2\n"),
        3,
        field="user",
        match="missing id",
    )


def test_recbole_bad_header_and_no_rows(write_file):
    fails(write_file("a.inter", "user_id\titem_id:token\nu\ti\n"), 1, match="not 'name:type'")
    fails(
        write_file("b.inter", "user:token\titem_id:token\nu\ti\n"), 1, match="no 'user_id' column"
    )
    fails(write_file("c.inter", "user_id:token\titem_id:token\n"), 2, match="no data rows")


def test_skip_everything_leaves_nothing(write_file):
    fails(write_file("ratings.dat", "1::2::x::4\n"), on_bad_row="skip", match="no valid rows")


def test_kcore_that_empties_the_data_says_so():
    # a path 0-0, 0-1, 1-1: no 2-core survives once user 1 (degree 1) goes.
    data = Interactions(
        user=np.array([0, 0, 1]),
        item=np.array([0, 1, 1]),
        rating=np.ones(3, np.float32),
        timestamp=np.zeros(3, np.int64),
        user_ids=np.array(["a", "b"], dtype=object),
        item_ids=np.array(["x", "y"], dtype=object),
        meta={"source": "toy.json"},
    )
    with pytest.raises(DataError) as info:
        kcore_filter(data, 2)
    msg = str(info.value)
    assert "2-core" in msg and "toy.json" in msg
    assert "3 interactions" in msg and "2 users" in msg and "2 items" in msg


def test_amazon_text_field_of_wrong_type(write_file, review):
    fails(
        write_file("r.json", review("A", "x", 5.0, 1, reviewText=["a"]) + "\n"),
        1,
        field="reviewText",
        match="expected a string",
    )
    fails(
        write_file("r2.json", json.dumps({"reviewerID": 7, "asin": "x"}) + "\n"),
        1,
        field="reviewerID",
        format="amazon",
        match="non-empty string",
    )
