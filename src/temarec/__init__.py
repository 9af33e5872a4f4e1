"""temarec: cross-domain sequential recommendation with LLM tags (TEMA-LLM).

Pipeline folders: data -> tagging -> features -> models -> training -> evaluation -> serving.

The names below are the Python API's entry points, one per stage; they are imported on first use, so
`import temarec` stays cheap (no torch) for the CLI and for tools that only read a version.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> module that defines it
_API = {
    "load_dataset": "temarec.data.registry",
    "generate_demo": "temarec.data.demo",
    "tag_catalogue": "temarec.pipeline",
    "load_item_features": "temarec.features.build",
    "RecModel": "temarec.models.base",
    "register_model": "temarec.models",
    "build_model": "temarec.models",
    "RunConfig": "temarec.config",
    "run": "temarec.training.run",
    "evaluate_run": "temarec.training.run",
    "compare_runs": "temarec.evaluation.compare",
    "load_run": "temarec.serving.load",
    "explained_recommendations": "temarec.serving.recommend",
    "explained_recommendations_for_histories": "temarec.serving.recommend",
}
__all__ = [  # the same names as _API (a literal, so that linters see what is exported)
    "__version__",
    "load_dataset",
    "generate_demo",
    "tag_catalogue",
    "load_item_features",
    "RecModel",
    "register_model",
    "build_model",
    "RunConfig",
    "run",
    "evaluate_run",
    "compare_runs",
    "load_run",
    "explained_recommendations",
    "explained_recommendations_for_histories",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time `__getattr__` imports on first use
    from temarec.config import RunConfig
    from temarec.data.demo import generate_demo
    from temarec.data.registry import load_dataset
    from temarec.evaluation.compare import compare_runs
    from temarec.features.build import load_item_features
    from temarec.models import build_model, register_model
    from temarec.models.base import RecModel
    from temarec.pipeline import tag_catalogue
    from temarec.serving.load import load_run
    from temarec.serving.recommend import explained_recommendations, explained_recommendations_for_histories
    from temarec.training.run import evaluate_run, run


def __getattr__(name: str):  # noqa: ANN202 - whatever the module defines
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'temarec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
