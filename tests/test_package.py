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
