"""Named registries for pluggable parts (models, graph builders, stages, topic encoders, readers).

A registry fills itself on first lookup (``get``, ``names``, ``in``, iteration, ``len``): it
imports every module of its ``packages`` (so a built-in plug-in is a file that registers itself;
there is no hand-kept list) and loads the Python entry points of its ``entry_point_group`` (so a
third-party distribution plugs in by declaring, e.g., ``[project.entry-points."mmseq.models"]``).
``register`` never triggers discovery, so modules may register while being imported.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from mmseq.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")


#: Modules of discovered packages that could not be imported for a missing optional dependency,
#: by module name -> the error; registry misses list them so that nothing is skipped silently.
UNAVAILABLE: dict[str, str] = {}


def import_package_modules(package: str) -> list[str]:
    """Import ``package`` and every module directly inside it; the imported names, sorted.

    Modules whose name starts with ``_`` are skipped (private helpers, ``__main__``). A module
    that fails for a missing third-party package (an optional backend) is logged and recorded in
    :data:`UNAVAILABLE`, and every registry miss names it; any other import error propagates.
    """
    pkg = importlib.import_module(package)
    names = sorted(
        f"{package}.{info.name}"
        for info in pkgutil.iter_modules(getattr(pkg, "__path__", []))
        if not info.name.startswith("_")
    )
    imported = []
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing == package or missing.startswith(package + "."):
                raise
            UNAVAILABLE[name] = f"{type(exc).__name__}: {exc}"
            logger.warning("plug-in module %s not loaded (%s)", name, exc)
            continue
        imported.append(name)
    return imported


def load_entry_points(group: str) -> list[str]:
    """Load every installed entry point of ``group`` (each import registers its plug-ins)."""
    loaded = []
    for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - name the plug-in whatever its import raised
            raise ConfigError(
                f"Cannot load plug-in '{ep.name}' = '{ep.value}' (entry point group '{group}'): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        loaded.append(ep.name)
    return loaded


class Registry(Generic[T]):
    """A name -> object table with helpful misses and lazy discovery.

    Args:
        kind: what the entries are, for messages (``"model"``).
        packages: packages whose modules are imported on first lookup (default: none).
        entry_point_group: entry point group loaded on first lookup (default: none).
        discover: extra callables run on first lookup (e.g. loading plug-in packages).

    Example:
        >>> MODELS = Registry("model")
        >>> @MODELS.register("pop")
        ... class Pop: ...
        >>> MODELS.get("pop") is Pop
        True
    """

    def __init__(
        self,
        kind: str,
        *,
        packages: Iterable[str] = (),
        entry_point_group: str | None = None,
        discover: Iterable[Callable[[], object]] = (),
    ) -> None:
        self.kind = kind
        self.packages = tuple(packages)
        self.entry_point_group = entry_point_group
        self._discover = tuple(discover)
        self._discovered = not (self.packages or entry_point_group or self._discover)
        self._entries: dict[str, T] = {}

    def discover(self) -> None:
        """Import the built-in modules and load the entry points (once; later calls are free)."""
        if self._discovered:
            return
        self._discovered = True  # first: the imports below register into this very registry
        try:
            for package in self.packages:
                import_package_modules(package)
            for hook in self._discover:
                hook()
            if self.entry_point_group:
                load_entry_points(self.entry_point_group)
        except BaseException:
            self._discovered = False
            raise

    def register(self, name: str, *, overwrite: bool = False) -> Callable[[T], T]:
        """Decorator registering ``obj`` as ``name``; a clash is an error unless ``overwrite``."""

        def deco(obj: T) -> T:
            if not overwrite and name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"A {self.kind} named '{name}' is already registered")
            self._entries[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """The object registered as ``name``; a miss lists the choices and a close match."""
        if name not in self._entries:
            self.discover()
        try:
            return self._entries[name]
        except KeyError:
            choices = sorted(self._entries)
            close = difflib.get_close_matches(name, choices, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            skipped = f" (not loaded: {UNAVAILABLE})" if UNAVAILABLE else ""
            raise ConfigError(
                f"Unknown {self.kind} '{name}'; choices: {choices}{hint}{skipped}"
            ) from None

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self.discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.discover()
        return len(self._entries)
