"""topics/report.py: table, JSON with the 2-D map, PNG only with matplotlib."""

from __future__ import annotations

import json

import numpy as np
import scipy.sparse as sp

import topics.report as report
from mmseq.data.schema import TopicAssignments


def _assignments() -> TopicAssignments:
    return TopicAssignments(
        topic_embeddings=np.array([[1, 0, 0], [-1, 0, 0]], dtype=np.float32),
        user_topic=sp.csr_matrix(np.array([[2, 0], [1, 1], [0, 0]], dtype=np.float32)),
        item_topic=sp.csr_matrix(np.array([[3, 1]], dtype=np.float32)),
        labels=("0_strings_tone", "1_cable_hum"),
        keywords=(("strings", "tone"), ("cable", "hum")),
        meta={
            "topic_sizes": [3, 1],
            "outliers": 1,
            "outlier_share": 0.2,
            "sentences": {"sentences": 5},
        },
    )


def test_topic_map_2d_by_hand() -> None:
    # two topics at x = +-1: centred they stay at +-1 on the first component, 0 on the second
    np.testing.assert_allclose(
        report.topic_map_2d(_assignments().topic_embeddings), [[1, 0], [-1, 0]], atol=1e-12
    )
    assert report.topic_map_2d(np.ones((1, 4))).tolist() == [[0.0, 0.0]]


def test_table_lists_sizes_users_items_keywords() -> None:
    text = report.format_topic_table(_assignments())
    assert text.startswith("2 topics from 5 training sentences; outliers: 1 (20.0%)")
    assert "| 0 | 3 | 2 | 1 | strings, tone |" in text
    assert "| 1 | 1 | 1 | 1 | cable, hum |" in text


def test_write_report_without_matplotlib(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(report, "is_available", lambda name: False)
    written = report.write_topic_report(_assignments(), tmp_path)
    assert set(written) == {"table", "json"} and not (tmp_path / "topic_map.png").exists()
    data = json.loads((tmp_path / "topics.json").read_text())
    assert data["png"] == "skipped: matplotlib is not installed"
    assert data["topics"][0]["map_xy"] == [1.0, 0.0] and data["topics"][1]["users"] == 1
    assert "matplotlib is not installed" in caplog.text


def test_coverage_counts_users_and_items_with_a_topic() -> None:
    import numpy as np
    import scipy.sparse as sp

    from mmseq.data.schema import TopicAssignments
    from topics.report import format_topic_table, topic_coverage

    # 4 users: users 0 and 2 have topics; 2 items: only item 1 has one.
    user_topic = sp.csr_matrix(np.array([[1, 0], [0, 0], [0, 3], [0, 0]], dtype=np.float32))
    item_topic = sp.csr_matrix(np.array([[0, 0], [2, 1]], dtype=np.float32))
    ta = TopicAssignments(np.zeros((2, 3), np.float32), user_topic, item_topic, ("a", "b"))
    assert topic_coverage(ta) == {"users": 0.5, "items": 0.5}
    assert "50.0% of users, 50.0% of items" in format_topic_table(ta)
