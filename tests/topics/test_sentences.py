"""topics/sentences.py: the offline regex splitter and the sentence -> review row link."""

from __future__ import annotations

import time

import numpy as np
import pytest
from topic_helpers import make_interactions

from mmseq.errors import DataError
from topics.sentences import split_sentences, training_sentences


def test_splits_on_terminal_punctuation_and_keeps_it() -> None:
    t = split_sentences(["Great strings. Bright tone!  Worth it? Yes"])
    assert list(t.text) == ["Great strings.", "Bright tone!", "Worth it?", "Yes"]
    assert t.row.tolist() == [0, 0, 0, 0]


def test_abbreviations_initials_and_decimals_do_not_split() -> None:
    t = split_sentences(["Mr. Smith played J. S. Bach on a 3.5 mm jack, e.g. at home. Done."])
    assert list(t.text) == ["Mr. Smith played J. S. Bach on a 3.5 mm jack, e.g. at home.", "Done."]


def test_line_breaks_closing_quotes_and_missing_space() -> None:
    t = split_sentences(
        ['It "works." (Mostly.) Fine\nNext line   here', "Works great.The case is thin."]
    )
    assert list(t.text) == [
        'It "works."',
        "(Mostly.)",
        "Fine",
        "Next line here",
        "Works great.",
        "The case is thin.",
    ]
    assert t.row.tolist() == [0, 0, 0, 0, 1, 1]


def test_odd_values_and_empty_reviews_are_counted_not_dropped_silently() -> None:
    reviews = ["Hi there. Ok!", None, "", float("nan"), "!!! :)", "x", "  ", "Good\x00stuff. More."]
    t = split_sentences(reviews)
    assert list(t.text) == ["Hi there.", "Ok!", "Good stuff.", "More."]
    assert t.row.tolist() == [0, 0, 7, 7]
    # rows 1..6 give nothing; None and NaN are the non-text ones; "!!!", ":)", "x" dropped pieces
    assert (t.num_reviews, t.empty_reviews, t.non_text_reviews, t.dropped_sentences) == (8, 6, 2, 3)
    assert t.counts()["sentences"] == 4


def test_min_chars() -> None:
    assert list(split_sentences(["Ok. Good product."], min_chars=4).text) == ["Good product."]
    assert split_sentences(["Ok. Good product."], min_chars=4).dropped_sentences == 1


def test_empty_input() -> None:
    t = split_sentences([])
    assert len(t) == 0 and t.row.dtype == np.int64 and t.num_reviews == 0


def test_rows_link_sentences_to_user_item_time() -> None:
    data = make_interactions([(2, 1, "A one. A two."), (0, 0, ""), (1, 2, "B one.")])
    t = training_sentences(data)
    assert t.row.tolist() == [0, 0, 2]
    assert data.user[t.row].tolist() == [2, 2, 1]
    assert data.item[t.row].tolist() == [1, 1, 2]
    assert data.timestamp[t.row].tolist() == [0, 0, 2]


def test_data_without_text_names_the_data_set() -> None:
    data = make_interactions([(0, 0, "x")], source="ml-1m.dat")
    import dataclasses

    data = dataclasses.replace(data, review=None)
    with pytest.raises(DataError, match=r"ml-1m\.dat has no review text"):
        training_sentences(data)


def test_empty_and_all_empty_corpora_raise_data_errors() -> None:
    with pytest.raises(DataError, match="got 0 rows"):
        training_sentences(make_interactions([]))
    with pytest.raises(DataError, match="got no sentence: 3 empty or non-text reviews"):
        training_sentences(make_interactions([(0, 0, ""), (0, 1, None), (1, 0, "?!")]))


def test_ten_thousand_reviews_split_in_about_a_second() -> None:
    base = (
        "The strings sound bright. I like them a lot! Would I buy again? Yes.\n"
        "Mr. Smith said so. Shipping was quick."
    )
    reviews = [f"{base} Review number {i}." for i in range(10_000)]
    start = time.perf_counter()
    t = split_sentences(reviews)
    elapsed = time.perf_counter() - start
    assert len(t) == 70_000
    assert t.row[-1] == 9_999 and np.all(np.diff(t.row) >= 0)
    assert elapsed < 3.0, f"splitting took {elapsed:.2f}s"  # ~0.4 s here; slack for busy CI
