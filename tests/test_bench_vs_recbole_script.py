"""scripts/bench_vs_recbole.py, export step: RecBole pre-split files hold exactly the split.

No RecBole needed: the files are read back with mmseq's own RecBole reader.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from mmseq.data.readers.recbole import read_recbole
from mmseq.data.split import split_interactions
from mmseq.data.synthetic import SyntheticConfig, generate_synthetic

REPO = Path(__file__).resolve().parents[1]


def _module():
    path = REPO / "scripts" / "bench_vs_recbole.py"
    spec = importlib.util.spec_from_file_location("bench_vs_recbole_script", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _raw_pairs(table) -> list[tuple[str, str, int]]:  # noqa: ANN001
    users = table.user_ids[table.user].tolist()
    items = table.item_ids[table.item].tolist()
    return list(zip(users, items, table.timestamp.astype(np.int64).tolist()))


@pytest.fixture(scope="module")
def split():  # noqa: ANN201
    cfg = SyntheticConfig(num_users=30, num_items=40, mean_interactions=7.0, with_text=False)
    return split_interactions(generate_synthetic(cfg), "ratio-80-20")


@pytest.mark.parametrize("max_len", [None, 3])
def test_plain_files_read_back_as_the_same_interactions(split, tmp_path: Path, max_len) -> None:  # noqa: ANN001
    bench = _module()
    folder = bench.export_split(split, tmp_path / "tiny", "tiny", max_len=max_len)
    names = ["train", "valid", "test"]
    for part, rows in zip(names, (split.fit, split.valid, split.test)):
        back = read_recbole(folder / f"tiny.plain.{part}.inter")
        assert _raw_pairs(back) == _raw_pairs(rows), part
        if max_len is None:  # general models load the plain rows themselves
            again = read_recbole(folder / f"tiny.{part}.inter")
            assert _raw_pairs(again) == _raw_pairs(rows), part


def test_sequence_files_hold_every_target_after_its_history(split, tmp_path: Path) -> None:  # noqa: ANN001
    bench = _module()
    folder = bench.export_split(split, tmp_path / "seq", "seq", max_len=3)
    users, items = split.fit.user_ids, split.fit.item_ids
    fit = {}
    for u, i in zip(split.fit.user.tolist(), split.fit.item.tolist()):
        fit.setdefault(users[u], []).append(items[i])
    valid = {}
    for u, i in zip(split.valid.user.tolist(), split.valid.item.tolist()):
        valid.setdefault(users[u], []).append(items[i])

    def rows(part: str) -> list[list[str]]:
        lines = (folder / f"seq.{part}.inter").read_text().splitlines()
        assert lines[0] == "user_id:token\titem_id_list:token_seq\titem_id:token"
        return [line.split("\t") for line in lines[1:]]

    train = rows("train")
    # every fit item but each user's first is a training target, after its own prefix
    assert len(train) == len(split.fit) - len(fit)
    expected = [
        [u, " ".join(seq[max(0, t - 3) : t]), seq[t]]
        for u, seq in fit.items()
        for t in range(1, len(seq))
    ]
    assert sorted(map(tuple, train)) == sorted(map(tuple, expected))
    for u, history, target in rows("valid"):
        assert history.split(" ") == fit[u][-3:] and target in valid[u]
    test = rows("test")
    assert len(test) == len(split.test)
    for u, history, _ in test:
        assert history.split(" ") == (fit[u] + valid.get(u, []))[-3:]
