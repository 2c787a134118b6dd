"""Property-based fuzzing of every reader and of the config loader.

The only outcomes allowed: a parsed table whose row count is accounted for (rows kept + rows
skipped by reason == data rows in the file), or the project's own error type (``MmseqError``).
Anything else (a library exception, a traceback, rows silently lost) fails.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmseq.config import ExperimentConfig, load_experiment
from mmseq.data.readers import READERS, load_interactions
from mmseq.errors import DataError, MmseqError

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["1", "5", "3.5", "0", "-1", "7", "1e308", "1e400", "nan", "", " 4"]),
)
ids = st.one_of(
    st.integers(0, 10**25).map(str),
    st.text(min_size=0, max_size=6),
    st.sampled_from(["u1", "200.5", "abc", "\u00e9t\u00e9", "\U0001f600", "\u0663", "a b"]),
)
token = st.one_of(ids, numbers)


safe_ids = st.one_of(
    st.integers(0, 10**12).map(str),
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters=',"\\'
        ),
        min_size=1,
        max_size=6,
    ),
)


def _valid_line(fmt: str, draw) -> str:
    """A row the reader must accept: unicode ids, large times, ratings on the format's scale."""
    user, item = draw(safe_ids), draw(safe_ids)
    rating = draw(st.sampled_from([1, 2, 3, 4, 5, 4.5]))
    seconds = draw(st.integers(0, 2**40))
    if fmt == "amazon":
        return json.dumps(
            {"reviewerID": user, "asin": item, "overall": rating, "unixReviewTime": seconds}
        )
    if fmt in ("movielens", "movielens-tab", "s3rec"):
        user, item = str(draw(st.integers(0, 10**12))), str(draw(st.integers(0, 10**12)))
    sep = {"movielens": "::", "movielens-tab": "\t", "csv": ",", "recbole": "\t", "s3rec": " "}
    if fmt == "s3rec":
        return " ".join([user, item, str(draw(st.integers(0, 10**6)))])
    return sep[fmt].join([user, item, str(rating), str(seconds)])


def _line(fmt: str, draw) -> str:
    if draw(st.integers(0, 2)):  # two thirds of the rows are valid
        return _valid_line(fmt, draw)
    if fmt == "amazon":
        value = st.one_of(token, st.integers(-(10**20), 10**20), st.floats(), st.none(),
                          st.booleans())  # fmt: skip
        record = {
            "reviewerID": draw(st.one_of(ids, value)),
            "asin": draw(st.one_of(ids, value)),
            "overall": draw(value),
            "unixReviewTime": draw(value),
            "reviewText": draw(st.one_of(st.text(max_size=10), st.none(), value)),
        }
        keys = draw(st.sets(st.sampled_from(sorted(record)), min_size=0))
        return json.dumps({k: v for k, v in record.items() if k not in keys or k == "overall"})
    n = draw(st.integers(1, 6))
    parts = [draw(token) for _ in range(n)]
    sep = {"movielens": "::", "movielens-tab": "\t", "csv": ",", "recbole": "\t", "s3rec": " "}
    return sep[fmt].join(parts)


HEADERS = {
    "csv": "user_id,item_id,rating,timestamp",
    "recbole": "user_id:token\titem_id:token\trating:float\ttimestamp:float",
}
NAMES = {
    "amazon": "r.json",
    "movielens": "ratings.dat",
    "movielens-tab": "u.data",
    "csv": "x.csv",
    "recbole": "x.inter",
    "s3rec": "x.txt",
}


@st.composite
def files(draw, fmt: str) -> bytes:
    """A file for ``fmt``: fuzzed rows, some in other encodings, maybe truncated or gzipped."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))  # random bytes
    lines = [_line(fmt, draw) for _ in range(draw(st.integers(0, 8)))]
    if fmt in HEADERS and draw(st.integers(0, 5)):
        lines.insert(0, HEADERS[fmt])
    chunks = []
    for line in lines:
        encoding = draw(st.sampled_from(["utf-8"] * 8 + ["latin-1", "utf-16"]))
        chunks.append(line.encode(encoding, errors="replace"))
    raw = draw(st.sampled_from([b"\n", b"\r\n"])).join(chunks)
    if draw(st.integers(0, 3)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]  # truncated mid-line
    if draw(st.integers(0, 4)) == 0:
        raw = gzip.compress(raw)
        if draw(st.booleans()):
            raw = raw[: draw(st.integers(0, len(raw)))]  # truncated gzip
    return raw


def _accounted(data, fmt: str) -> None:
    meta = data.meta
    skipped = dict(meta["skipped"])
    undecodable = skipped.pop("non_utf8", 0)  # such lines never count as data rows read
    kept = meta["sequences"] if fmt == "s3rec" else len(data)
    assert kept + sum(skipped.values()) == meta["rows_read"], (kept, skipped, meta["rows_read"])
    assert undecodable >= 0 and len(data) > 0


def _check(tmp_path: Path, fmt: str, raw: bytes, policy: str) -> None:
    path = tmp_path / NAMES[fmt]
    path.write_bytes(raw)
    try:
        data = load_interactions(path, format=fmt, on_bad_row=policy)
    except MmseqError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    _accounted(data, fmt)
    if policy == "error":
        assert not data.meta["skipped"]


def _reader_property(fmt: str):
    @FUZZ
    @given(raw=files(fmt), policy=st.sampled_from(["error", "skip"]))
    def check(tmp_path, raw, policy):
        _check(tmp_path, fmt, raw, policy)

    return check


test_fuzz_amazon = _reader_property("amazon")
test_fuzz_movielens = _reader_property("movielens")
test_fuzz_movielens_tab = _reader_property("movielens-tab")
test_fuzz_csv = _reader_property("csv")
test_fuzz_recbole = _reader_property("recbole")
test_fuzz_s3rec = _reader_property("s3rec")


def test_every_reader_is_fuzzed() -> None:
    assert set(READERS.names()) == set(NAMES)


# ---------------------------------------------------------------------------------- config loader
KEYS = ["data", "split", "model", "train", "seed", "ks", "path", "kcore", "epochs", "lr",
        "name", "params", "embedding_dim", "dropout", "protocol", "device", "monitor",
        "batch_size", "max_users", "synthetic", "rating_range", "traın", "graphs",
        "topics"]  # fmt: skip
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(), st.text(max_size=8),
    st.sampled_from(["bprmf", "sasrec", "loo-full", "cpu", "tpu", "ndcg@10", "synthetic"]),
)  # fmt: skip
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(mapping=st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_fuzz_config_loader(tmp_path, mapping) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(mapping))
    try:
        cfg = load_experiment(path)
    except MmseqError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    assert isinstance(cfg, ExperimentConfig)


@FUZZ
@given(raw=st.binary(max_size=200), overrides=st.lists(st.text(max_size=12), max_size=3))
def test_fuzz_config_bytes_and_overrides(tmp_path, raw, overrides) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(raw)
    try:
        load_experiment(path, overrides)
    except MmseqError as exc:
        assert "\n" not in str(exc), str(exc)


# What the fuzzing found (each ended in an OverflowError or OSError before): explicit cases.
FOUND = [
    ("s3rec", "1 99999999999999999999999\n", "line 1: expected integer ids"),
    (
        "amazon",
        '{"reviewerID":"u","asin":"i","overall":5,"unixReviewTime":99999999999999999999999}\n',
        "line 1, field 'unixReviewTime': expected seconds <= 253402300799 (year 9999)",
    ),
    ("csv", "user_id,item_id,timestamp\na,b,1e30\n", "line 2, field 'timestamp': expected seconds"),
]


@pytest.mark.parametrize("fmt,text,expected", FOUND, ids=[f[0] for f in FOUND])
def test_fuzz_findings_are_one_line_errors(tmp_path, fmt, text, expected) -> None:
    path = tmp_path / NAMES[fmt]
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(expected)):
        load_interactions(path, format=fmt)
