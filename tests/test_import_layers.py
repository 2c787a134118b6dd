"""The import direction is part of the architecture: parse every module and forbid wrong edges."""

from __future__ import annotations

import ast
from pathlib import Path

import graphs
import topics

REPO = Path(__file__).resolve().parents[1]

# (importer package prefix, forbidden imported prefix)
FORBIDDEN = [
    ("mmseq", "graphs"),
    ("mmseq", "topics"),
    ("mmseq", "scripts"),
    ("graphs", "topics"),
    ("topics", "graphs"),
    ("graphs", "scripts"),
    ("topics", "scripts"),
    ("mmseq.models", "mmseq.train"),
    ("mmseq.nn", "mmseq.models"),
    ("mmseq.nn", "mmseq.train"),
    ("mmseq.data", "mmseq.models"),
    ("mmseq.data", "mmseq.train"),
    ("mmseq.eval", "mmseq.models"),
    ("mmseq.eval", "mmseq.train"),
    ("mmseq.runs", "mmseq.train"),
    ("mmseq.explain", "mmseq.train"),
    ("mmseq.recommend", "mmseq.train"),
    ("mmseq.report", "mmseq.train"),
]

# The modules of mmseq that may use the trainer: the entry points (CLI and its Python twin, the
# API) and the training package itself (experiments, tuning, DDP, the continual strategies).
TRAINER_USERS = ("mmseq.cli", "mmseq.api", "mmseq.train")


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_no_forbidden_import_edges() -> None:
    bad = []
    for pkg in ("mmseq", "graphs", "topics"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            mod = _module_name(path)
            for imported in _imports(path):
                for importer, forbidden in FORBIDDEN:
                    if _matches(mod, importer) and _matches(imported, forbidden):
                        bad.append(f"{path.relative_to(REPO)} imports {imported}")
    assert not bad, "forbidden import edges:\n" + "\n".join(bad)


def test_only_entry_points_and_the_trainer_import_mmseq_train() -> None:
    users = sorted(
        _module_name(path)
        for path in (REPO / "mmseq").rglob("*.py")
        if any(_matches(name, "mmseq.train") for name in _imports(path))
    )
    assert users, "the checker found no importer at all"
    assert [m for m in users if not any(_matches(m, ok) for ok in TRAINER_USERS)] == []


def test_graph_building_does_not_import_the_trainer() -> None:
    assert not any(
        _matches(name, "mmseq.train") for name in _imports(REPO / "scripts" / "build_graphs.py")
    )


def test_checker_sees_a_planted_forbidden_edge(tmp_path: Path) -> None:
    planted = tmp_path / "m.py"
    planted.write_text("import graphs.rating\nfrom topics import extract\n")
    assert _imports(planted) == {"graphs.rating", "topics"}


def test_graphs_and_topics_resolve_inside_this_repository() -> None:
    # PyPI has unrelated old packages named 'graphs' and 'topics'; never import those.
    assert Path(graphs.__file__).resolve().is_relative_to(REPO)
    assert Path(topics.__file__).resolve().is_relative_to(REPO)
