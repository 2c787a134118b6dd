"""The readers package has no import cycle: reader modules import only ``readers._common``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

READERS_DIR = Path(__file__).resolve().parents[3] / "mmseq" / "data" / "readers"


def test_reader_modules_never_import_the_package_init() -> None:
    for path in sorted(READERS_DIR.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "mmseq.data.readers":
                raise AssertionError(f"{path.name} imports mmseq.data.readers (use ._common)")


def test_each_reader_module_imports_on_its_own() -> None:
    for name in ("_common", "amazon", "csv", "movielens", "recbole", "s3rec"):
        code = f"import mmseq.data.readers.{name} as m; assert m"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
