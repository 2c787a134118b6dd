"""The README's Python API example runs as written (on the embedded synthetic demo data)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_api_example() -> str:
    """The first ```python block of the README's "Use a trained run" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use a trained run", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README: no python block under '## Use a trained run'"
    return blocks[0]


def test_readme_python_api_example_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    code = readme_api_example()
    assert "mmseq.run_experiment(" in code and "mmseq.load_run(" in code
    # Paths in the README are relative to the repository; runs go to the working directory.
    code = code.replace('"configs/', f'"{REPO}/configs/')
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    out = capsys.readouterr().out
    results, run, recs = namespace["results"], namespace["run"], namespace["recs"]
    assert Path(results["run_dir"]).resolve().is_relative_to(tmp_path.resolve())
    assert results["epochs_run"] == 3 and run.metrics == pytest.approx(results["test"])
    assert recs.items.shape == (2, 5) and str(recs.for_user("u00000")[0][0]) in out
    assert run.score("u00000", ["i00000", "i00001"]).shape == (1, 2)
