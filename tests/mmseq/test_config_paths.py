"""Relative paths written in an experiment YAML resolve against the file's folder."""

from __future__ import annotations

from pathlib import Path

from mmseq.config import load_experiment

YAML = "data: {path: synthetic}\nmodel: {name: pop}\n"


def test_output_and_artifact_dirs_written_in_the_file_resolve_against_it(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "x.yaml"
    path.write_text(YAML + "output_dir: out/runs\nartifacts_dir: ../cache\n")
    cfg = load_experiment(path)
    assert Path(cfg.output_dir) == folder.resolve() / "out" / "runs"
    assert Path(cfg.artifacts_dir) == folder.resolve() / ".." / "cache"


def test_defaults_and_overrides_stay_relative_to_the_working_directory(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "x.yaml"
    path.write_text(YAML + "output_dir: out\n")
    cfg = load_experiment(path, ["output_dir=elsewhere"])
    assert cfg.output_dir == "elsewhere" and cfg.artifacts_dir == "artifacts"
    absolute = str(tmp_path / "abs")
    path.write_text(YAML + f"output_dir: {absolute}\n")
    assert load_experiment(path).output_dir == absolute
    assert not Path(load_experiment(path).artifacts_dir).is_absolute()
