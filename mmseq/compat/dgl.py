"""The one place that imports DGL.

DGL 2.1.0 (the newest Linux wheel) is built for torch <= 2.2.1. With torch 2.13 its core (graphs,
message passing, ``dgl.nn``) works, but ``import dgl`` fails while importing ``dgl.graphbolt``,
whose C library does not load with this torch (shared/docs/environment.md). We register an empty
stand-in for ``dgl.graphbolt`` before the import. ``dgl.graphbolt``, ``dgl.sparse`` and DGL's
distributed module stay unusable; mmseq uses none of them.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types

from mmseq.optional import require


def _stub_graphbolt() -> None:
    if "dgl.graphbolt" in sys.modules:
        return
    stub = types.ModuleType("dgl.graphbolt")
    stub.__spec__ = importlib.machinery.ModuleSpec("dgl.graphbolt", None)
    stub.__doc__ = "Empty stand-in registered by mmseq.compat.dgl (graphbolt needs torch<=2.2)."
    sys.modules["dgl.graphbolt"] = stub


def import_dgl(feature: str = "DGL backend") -> types.ModuleType:
    """Import and return ``dgl``, applying the graphbolt workaround first.

    Args:
        feature: what needs DGL, named in the error message (default: ``"DGL backend"``).

    Raises:
        MissingDependencyError: when DGL is not installed (the message gives the install command).
    """
    require("dgl", feature=feature)
    _stub_graphbolt()
    return importlib.import_module("dgl")
