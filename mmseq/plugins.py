"""Loading plug-ins: the distribution's own plug-in packages, installed entry points, YAML names.

Three ways a plug-in (graph builder, artifact stage, model, config section) reaches the registries,
all by importing the module that registers it:

* the plug-in packages this distribution ships (:data:`BUILTIN_PLUGIN_PACKAGES`), every module of
  each imported, so a new built-in is a new file with ``@REGISTRY.register(...)`` on its class;
* installed entry points of the groups in :data:`ENTRY_POINT_GROUPS`
  (``[project.entry-points."mmseq.graph_builders"] my_graph = "my_pkg.my_graph"``);
* a ``plugins:`` list of module names in the experiment YAML (:func:`load_plugin_modules`).

``mmseq`` never imports ``graphs`` or ``topics`` statically (tests/test_import_layers.py): it
loads them here by name, exactly like a third-party plug-in, which keeps the dependency pointing
from the plug-ins to the core.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from mmseq.errors import ConfigError
from mmseq.registry import import_package_modules, load_entry_points

#: Plug-in packages shipped by the mmseq distribution (sibling top-level packages).
BUILTIN_PLUGIN_PACKAGES: tuple[str, ...] = ("topics", "graphs")

#: Entry point groups a third-party distribution may declare.
ENTRY_POINT_GROUPS: tuple[str, ...] = (
    "mmseq.plugins",
    "mmseq.stages",
    "mmseq.graph_builders",
    "mmseq.models",
)

_installed_loaded = False


def load_installed_plugins() -> None:
    """Import the built-in plug-in packages and every installed entry point (once)."""
    global _installed_loaded
    if _installed_loaded:
        return
    _installed_loaded = True
    try:
        for package in BUILTIN_PLUGIN_PACKAGES:
            import_package_modules(package)
        for group in ENTRY_POINT_GROUPS:
            load_entry_points(group)
    except BaseException:
        _installed_loaded = False
        raise


def load_plugin_modules(modules: Iterable[str], *, where: str = "plugins") -> None:
    """Import each named module (its imports register its plug-ins), after the installed ones.

    Raises:
        ConfigError: naming the module and ``where`` when a module cannot be imported.
    """
    load_installed_plugins()
    for i, name in enumerate(modules):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"{where}[{i}]: cannot import plug-in module '{name}' ({exc}); is it on "
                "PYTHONPATH or installed?"
            ) from None
