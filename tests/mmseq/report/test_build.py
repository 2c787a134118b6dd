"""mmseq/report: the demo run's HTML report is valid, self-contained and has every figure."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmseq.cli import main
from mmseq.report import figures
from mmseq.report.topic_map import topic_map_2d, topic_members

FIGURES = {"loss", "valid", "epochs", "test_metrics", "topic_map"}


class _Page(HTMLParser):
    """Collects images, section ids and checks that every opened tag is closed."""

    VOID = {"img", "meta", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[dict] = []
        self.sections: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id", ""))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def _png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.verify()
    return Image.open(io.BytesIO(data)).size


def test_report_of_the_demo_run(demo_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo_report.html"
    assert main(["report", "--run", str(demo_run), "--out", str(out), "--users", "2"]) == 0
    assert f"report: {out} (5 figures" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    assert not page.errors and page.stack == [], (page.errors, page.stack)
    assert page.sections == ["run", "training", "metrics", "topics", "recommendations"]
    # Self-contained: every image is an inline PNG, and nothing points outside the file.
    assert len(page.images) == len(FIGURES)
    for img in page.images:
        assert img["src"].startswith("data:image/png;base64,"), img["src"][:40]
        width, height = _png_size(base64.b64decode(img["src"].split(",", 1)[1]))
        assert width > 200 and height > 100
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", text)
    # The same figures as files beside the page.
    fig_dir = tmp_path / "demo_report_figures"
    assert {p.stem for p in fig_dir.glob("*.png")} == FIGURES
    for path in fig_dir.glob("*.png"):
        _png_size(path.read_bytes())
    # Content: every loss term and validation metric of the history, the test metrics, the
    # users' recommendations with topic labels.
    results = json.loads((demo_run / "results.json").read_text())
    history = results["extra"]["history"]
    assert len(history) == 3
    terms = sorted(history[0]["loss"], key=lambda n: (n != "total", n))
    assert set(terms) >= {"total", "bpr"}
    assert f"loss terms: {', '.join(terms)}" in text
    metrics = "hr@10, hr@20, ndcg@10, ndcg@20, recall@10, recall@20"  # ratio-80-20's defaults
    assert f"metrics: {metrics}; monitored: ndcg@10" in text
    for name, value in results["metrics"].items():
        assert f"<td>{name}</td>" in text and f"{value:.4f}" in text
    recs = text.split('id="recommendations"', 1)[1]
    assert recs.count("<h3>user ") == 2
    assert any(label in recs for label in ("0_strings", "1_cable", "2_tuner", "3_case"))


def test_figures_handle_closed_form_and_lr_histories() -> None:
    assert figures.loss_curves([{"epoch": 0, "loss": {}, "valid": {"hr@10": 0.1}}]) is None
    assert figures.validation_curves([{"epoch": 1, "loss": {"total": 1.0}}]) is None
    hist = [
        {"epoch": e, "loss": {"total": 1.0 / e}, "lr": 0.1 / e, "seconds": 0.5} for e in (1, 2, 3)
    ]
    width_lr, _ = _png_size(figures.epoch_curves(hist))
    width, _ = _png_size(
        figures.epoch_curves([{k: v for k, v in h.items() if k != "lr"} for h in hist])
    )
    assert width_lr > width  # a second panel for the learning rate


def test_topic_members_and_map_by_hand() -> None:
    # 3 users; hyperedges 0, 1; rows 3, 4 are the topic nodes themselves (not members).
    edge_index = np.array([[0, 1, 1, 2, 3, 4], [0, 0, 1, 1, 0, 1]])
    assert topic_members(edge_index, 3, 2).tolist() == [2, 2]
    np.testing.assert_allclose(
        topic_map_2d(np.array([[1.0, 0.0], [-1.0, 0.0]])), [[1, 0], [-1, 0]], atol=1e-12
    )


def test_report_of_a_missing_run_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["report", "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "No results.json" in err and "\n" not in err


@pytest.fixture(autouse=True)
def _agg(monkeypatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
