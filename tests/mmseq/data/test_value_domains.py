"""Each reader knows its format's value domains and rejects a row at read time (file, line, field).

Amazon: 1..5 stars. MovieLens: integer ids; ratings [1, 5] (u.data) and [0.5, 5] (ratings.dat,
ML-10M's half stars). CSV and RecBole: any finite rating unless ``rating_range`` is given (also
from ``data.rating_range`` in an experiment config).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmseq.config import DataConfig
from mmseq.data.load import load_dataset
from mmseq.data.readers import load_interactions
from mmseq.errors import ConfigError, DataError


def _amazon(path: Path, ratings: list) -> Path:
    rows = [
        {"reviewerID": f"u{k}", "asin": f"i{k}", "overall": r, "unixReviewTime": 10 + k}
        for k, r in enumerate(ratings)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _error(path: Path, **options) -> str:
    with pytest.raises(DataError) as info:
        load_interactions(path, **options)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


@pytest.mark.parametrize("bad", [7.0, 0.0, -1, 5.5])
def test_amazon_rating_outside_one_to_five_names_file_line_and_field(tmp_path, bad) -> None:
    path = _amazon(tmp_path / "r.json", [5.0, 1, bad, 3.0])
    message = _error(path)
    assert ", line 3, field 'overall'" in message and "[1, 5]" in message, message
    kept = load_interactions(path, on_bad_row="skip")
    assert len(kept) == 3 and kept.meta["skipped"] == {"rating_outside_scale": 1}
    assert kept.rating.tolist() == [5.0, 1.0, 3.0]


@pytest.mark.parametrize("token", ["200.5", "abc", "-3", "1e3", "\u0663", "", "1" * 19])
@pytest.mark.parametrize("column,field", [(0, "user"), (1, "item")])
def test_movielens_ids_must_be_integers(tmp_path, token, column, field) -> None:
    rows = [["1", "10", "5", "100"], ["2", "11", "4", "101"], ["3", "12", "3", "102"]]
    rows[1][column] = token
    path = tmp_path / "ratings.dat"
    path.write_text("\n".join("::".join(r) for r in rows) + "\n")
    message = _error(path, format="movielens")
    assert f", line 2, field '{field}'" in message and "integer id" in message, message
    kept = load_interactions(path, format="movielens", on_bad_row="skip")
    assert len(kept) == 2 and kept.meta["skipped"] == {f"non_integer_{field}": 1}


@pytest.mark.parametrize(
    "fmt,sep,name,rating,ok",
    [
        ("movielens-tab", "\t", "u.data", "0.5", False),
        ("movielens-tab", "\t", "u.data", "6", False),
        ("movielens-tab", "\t", "u.data", "1", True),
        ("movielens", "::", "ratings.dat", "0.5", True),
        ("movielens", "::", "ratings.dat", "0", False),
        ("movielens", "::", "ratings.dat", "5.5", False),
    ],
)
def test_movielens_rating_scale(tmp_path, fmt, sep, name, rating, ok) -> None:
    path = tmp_path / name
    path.write_text(
        sep.join(["1", "2", "5", "7"]) + "\n" + sep.join(["1", "3", rating, "8"]) + "\n"
    )
    if ok:
        assert float(load_interactions(path, format=fmt).rating[1]) == float(rating)
    else:
        assert ", line 2, field 'rating'" in _error(path, format=fmt)


def test_csv_and_recbole_take_any_finite_rating_unless_given_a_range(tmp_path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("user_id,item_id,rating\na,b,1\na,c,17.5\nb,c,-2\n")
    assert load_interactions(csv).rating.tolist() == [1.0, 17.5, -2.0]
    message = _error(csv, rating_range=(0, 10))
    assert ", line 3, field 'rating'" in message and "[0, 10]" in message
    inter = tmp_path / "x.inter"
    inter.write_text("user_id:token\titem_id:token\trating:float\na\tb\t1\na\tc\t99\n")
    assert load_interactions(inter).rating.tolist() == [1.0, 99.0]
    assert ", line 3, field 'rating'" in _error(inter, rating_range=(1, 5))
    with pytest.raises(ConfigError, match="rating_range"):
        load_interactions(csv, rating_range=(5, 1))


def test_data_rating_range_reaches_the_reader_and_is_refused_for_fixed_scales(tmp_path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("user_id,item_id,rating\na,b,1\na,c,17.5\n")
    with pytest.raises(DataError, match="line 3"):
        load_dataset(DataConfig(path=str(csv), rating_range=(1.0, 5.0)), csv)
    amazon = _amazon(tmp_path / "r.json", [5.0])
    with pytest.raises(ConfigError, match="fixed rating scale"):
        load_dataset(DataConfig(path=str(amazon), rating_range=(1.0, 5.0)), amazon)


def test_range_check_is_vectorised_over_many_rows(tmp_path) -> None:
    n = 50_000
    ratings = np.tile(np.array(["1", "5", "3"]), n // 3 + 1)[:n]
    body = "\n".join(f"{u}\t{u % 97}\t{r}\t{u}" for u, r in enumerate(ratings))
    path = tmp_path / "u.data"
    path.write_text(body + "\n")
    assert len(load_interactions(path)) == n
