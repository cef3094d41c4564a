"""No import cycles: every module of src/ imports as the first of its package (a cycle shows only then, e.g.
src.placement -> src.callbacks -> src.callbacks.hparams -> src.placement, which a CLI import order had hidden)."""

import importlib
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
MODULES = sorted(
    ".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
    for p in SRC.rglob("*.py")
    if p.name != "__main__.py"
)


@pytest.fixture
def fresh_src():
    """src.* out of sys.modules for the test, and the same module objects back after it (other tests hold them)."""
    saved = {name: module for name, module in sys.modules.items() if name == "src" or name.startswith("src.")}
    yield
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[name]
    sys.modules.update(saved)


@pytest.mark.parametrize("name", MODULES)
def test_each_module_imports_first(name, fresh_src):
    for loaded in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[loaded]
    importlib.import_module(name)
