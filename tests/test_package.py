"""The top-level Python API: `temarec.<name>` for each stage's entry point, imported on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import temarec


def test_every_public_name_is_its_modules_object():
    for name, module in temarec._API.items():
        assert getattr(temarec, name) is getattr(importlib.import_module(module), name), name
    assert set(temarec._API) <= set(dir(temarec)) and set(temarec.__all__) == {"__version__", *temarec._API}


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        temarec.nope  # noqa: B018
    assert not hasattr(temarec, "Trainer")


def test_import_is_cheap():
    """The CLI and version checks import the package; torch comes only with the first model name."""
    code = "import sys, temarec; assert 'torch' not in sys.modules; print(temarec.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == temarec.__version__


def test_every_module_imports_on_its_own():
    """Each module, imported first in a fresh interpreter (as `temarec recommend` or a user's script
    does): the test session imports them in one order only, so a circular import can hide from it."""
    import pkgutil
    from concurrent.futures import ThreadPoolExecutor

    from temarec.config import BUILTIN_MODEL_NAMES
    from temarec.models import BUILTIN_MODELS

    assert BUILTIN_MODELS == BUILTIN_MODEL_NAMES
    modules = [
        m.name for m in pkgutil.walk_packages(temarec.__path__, "temarec.") if m.name != "temarec.__main__"
    ]

    def fails(name: str) -> str | None:
        r = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
        return f"{name}: {r.stderr.strip().splitlines()[-1]}" if r.returncode else None

    with ThreadPoolExecutor(4) as pool:
        bad = [f for f in pool.map(fails, modules) if f]
    assert len(modules) > 50 and not bad, bad
