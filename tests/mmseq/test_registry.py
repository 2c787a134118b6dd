"""mmseq/registry.py: lazy discovery of a package's modules and of entry points; helpful misses."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from mmseq.errors import ConfigError
from mmseq.registry import Registry


def _package(root: Path, name: str, registry_path: str) -> None:
    """A package with two modules that each register one entry, and a private module."""
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for mod in ("alpha", "beta"):
        (pkg / f"{mod}.py").write_text(
            f"from {registry_path} import REG\n@REG.register('{mod}')\nclass X: pass\n"
        )
    (pkg / "_private.py").write_text("raise RuntimeError('private modules are not imported')\n")


def test_registry_imports_its_package_modules_on_first_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = tmp_path / "holder_mod.py"
    holder.write_text(
        "from mmseq.registry import Registry\nREG = Registry('thing', packages=('things_pkg',))\n"
    )
    _package(tmp_path, "things_pkg", "holder_mod")
    monkeypatch.syspath_prepend(str(tmp_path))
    import holder_mod

    assert "things_pkg.alpha" not in sys.modules  # nothing imported before a lookup
    assert holder_mod.REG.names() == ["alpha", "beta"]
    with pytest.raises(ConfigError, match="Unknown thing 'alpah'.*did you mean 'alpha'"):
        holder_mod.REG.get("alpah")


def test_registry_loads_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ep_plugin.py").write_text(
        "from test_registry_holder import REG\n@REG.register('from_entry_point')\nclass Y: pass\n"
    )
    (tmp_path / "test_registry_holder.py").write_text(
        "from mmseq.registry import Registry\n"
        "REG = Registry('widget', entry_point_group='mmseq.test_widgets')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fake = [importlib.metadata.EntryPoint("y", "ep_plugin", "mmseq.test_widgets")]

    def entry_points(*, group: str):
        return [ep for ep in fake if ep.group == group]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    import test_registry_holder

    assert "from_entry_point" in test_registry_holder.REG
    broken = Registry("gadget", entry_point_group="mmseq.test_widgets")
    fake[0] = importlib.metadata.EntryPoint("z", "no_such_module_xyz", "mmseq.test_widgets")
    with pytest.raises(ConfigError, match="Cannot load plug-in 'z'.*mmseq.test_widgets"):
        broken.names()


def test_models_are_discovered_without_a_hand_kept_list() -> None:
    from mmseq.models import MODELS

    package = Path(__file__).resolve().parents[2] / "mmseq" / "models"
    assert not (package / "builtin.py").exists()
    assert {"pop", "bprmf", "lightgcn", "sasrec", "sdmtmp", "xsimgcl"} <= set(MODELS.names())


def test_register_does_not_trigger_discovery() -> None:
    reg: Registry = Registry("thing", packages=("no_such_package_xyz",))
    reg.register("a")(object)  # would raise ModuleNotFoundError if it discovered
    with pytest.raises(ModuleNotFoundError):
        reg.names()


def test_a_module_missing_an_optional_dependency_is_named_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmseq import registry

    holder = tmp_path / "holder_opt.py"
    holder.write_text(
        "from mmseq.registry import Registry\nREG = Registry('tool', packages=('opt_pkg',))\n"
    )
    _package(tmp_path, "opt_pkg", "holder_opt")
    (tmp_path / "opt_pkg" / "gamma.py").write_text("import no_such_backend_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "UNAVAILABLE", {})
    import holder_opt

    assert holder_opt.REG.names() == ["alpha", "beta"]
    with pytest.raises(ConfigError, match="opt_pkg.gamma.*no_such_backend_xyz"):
        holder_opt.REG.get("gamma")
    # A broken module of the package itself is an error, not a skip.
    (tmp_path / "opt_pkg" / "delta.py").write_text("import opt_pkg.no_such_sibling\n")
    fresh = Registry("tool", packages=("opt_pkg",))
    with pytest.raises(ModuleNotFoundError):
        fresh.names()
