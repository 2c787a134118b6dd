"""Named registries for pluggable parts (models, graph builders, topic encoders, readers)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mmseq.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table with helpful misses.

    Example:
        >>> MODELS = Registry("model")
        >>> @MODELS.register("pop")
        ... class Pop: ...
        >>> MODELS.get("pop") is Pop
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

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
        try:
            return self._entries[name]
        except KeyError:
            choices = sorted(self._entries)
            close = difflib.get_close_matches(name, choices, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"Unknown {self.kind} '{name}'; choices: {choices}{hint}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
