"""mmseq/report/results_chart.py and its use in scripts/make_results.py."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest
from PIL import Image

from mmseq.errors import DataError
from mmseq.report.results_chart import (
    ChartRow,
    chart_path,
    mean_and_spread,
    results_bar_chart,
    write_results_chart,
)

REPO = Path(__file__).resolve().parents[3]


def _png(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.size


def test_mean_and_spread_by_hand() -> None:
    mean, std = mean_and_spread([0.1, 0.3])
    assert mean == pytest.approx(0.2) and std == pytest.approx(2**0.5 * 0.1)  # sample std
    assert mean_and_spread([0.4]) == (0.4, 0.0)  # one seed: no spread


def test_chart_is_a_png_beside_the_markdown(tmp_path: Path) -> None:
    rows = [
        ChartRow("POP", {"hr@10": [0.12, 0.12, 0.12], "ndcg@10": [0.05, 0.05, 0.05]}),
        ChartRow("LightGCN", {"hr@10": [0.14, 0.15, 0.17], "ndcg@10": [0.05, 0.06, 0.06]}),
        ChartRow("paper", {"hr@10": [0.2]}, reference=True),
    ]
    path = chart_path(tmp_path / "results.md", "10_baselines")
    assert path == tmp_path / "results_10_baselines.png"
    write_results_chart(rows, ["hr@10", "ndcg@10"], "Baselines", path)
    width, height = _png(path.read_bytes())
    assert width > 400 and height > 300
    with pytest.raises(DataError, match="rows and columns"):
        results_bar_chart([], ["hr@10"], "empty")


def test_make_results_links_and_writes_a_chart_per_table(tmp_path: Path, monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_results_script", REPO / "scripts" / "make_results.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    name = sorted(module.load_tables())[0]

    def fake_table(table, spec_, seeds, max_epochs, out_root, *rest):  # noqa: ANN001, ANN202
        def run(hr: float) -> dict:
            return {"test": {"hr@10": hr}, "best_epoch": 1, "epochs_run": 2, "wall_s": 1.0}

        return {
            "name": table,
            "caption": "A table",
            "columns": ["hr@10"],
            "config": "x.yaml",
            "rows": [{"model": "A", "runs": [run(0.1), run(0.2)]}],
            "paper": [module.PaperRow("paper", {"hr@10": 0.3})],
            "seeds": [0, 1],
            "notes": "",
            "epochs_cap": 2,
            "patience": 1,
        }

    monkeypatch.setattr(module, "run_table", fake_table)
    out = tmp_path / "docs" / "results_x.md"
    out.parent.mkdir()
    assert module.main(["--only", name, "--out", str(out), "--runs", str(tmp_path)]) == 0
    assert f"![{name}: mean, seed spread](results_x_{name}.png)" in out.read_text()
    _png((tmp_path / "docs" / f"results_x_{name}.png").read_bytes())
