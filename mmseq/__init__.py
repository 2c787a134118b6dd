"""mmseq: graph-based multimodal sequential recommendation.

Data flows ``mmseq.data`` -> ``topics`` -> ``graphs`` -> (GraphBundle on disk) -> ``mmseq.models``
-> ``mmseq.train`` -> ``mmseq.eval``; the packages ``topics`` and ``graphs`` import ``mmseq``,
never the reverse.

The Python API, :func:`mmseq.run_experiment` and :func:`mmseq.load_run`, is loaded on first use
(PEP 562), so that ``import mmseq`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {"run_experiment": "mmseq.api", "load_run": "mmseq.api"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmseq' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["__version__", "load_run", "run_experiment"]
