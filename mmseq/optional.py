"""Optional dependencies: flags and one way to demand them."""

from __future__ import annotations

import importlib.util

from mmseq.errors import MissingDependencyError

_INSTALL_HINTS = {
    "dgl": "make install (or: pip install --no-deps dgl==2.1.0 torchdata==0.9.0)",
}


def is_available(package: str) -> bool:
    """Whether ``package`` can be imported, without importing it."""
    return importlib.util.find_spec(package) is not None


WITH_DGL: bool = is_available("dgl")


def require(package: str, *, feature: str) -> None:
    """Raise :class:`MissingDependencyError` with an install hint when ``package`` is missing."""
    if not is_available(package):
        hint = _INSTALL_HINTS.get(package, f"pip install {package}")
        raise MissingDependencyError(
            f"{feature} needs the '{package}' package; install it with: {hint}"
        )
