"""Where data and artifacts live: one setting each, environment variables first.

`TEMAREC_DATA` names the data root (datasets are found there by folder name); it defaults to
`../shared/data` next to a source checkout. `TEMAREC_ARTIFACTS` is where caches (candidate sets,
tags, features, checkpoints of the demo) go; it defaults to `artifacts/` in the checkout, else
`~/.cache/temarec`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def _checkout_root() -> Path | None:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "temarec").is_dir():
            return parent
    return None


def data_root() -> Path:
    env = os.environ.get("TEMAREC_DATA")
    if env:
        return Path(env).expanduser()
    root = _checkout_root()
    if root is not None:
        return (root.parent / "shared" / "data").resolve()
    return (Path.cwd().parent / "shared" / "data").resolve()


def artifacts_root() -> Path:
    env = os.environ.get("TEMAREC_ARTIFACTS")
    if env:
        return Path(env).expanduser()
    root = _checkout_root()
    if root is not None:
        return root / "artifacts"
    return Path.home() / ".cache" / "temarec"


def slug(text: str) -> str:
    """A name made safe as one folder name under the artifacts root (no separators, no '..').

    Dataset and tag-source names come from user files (`dataset.json`), so they are never joined to a
    path as they are.
    """
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "x"


def tags_root(dataset_name: str) -> Path:
    """`ARTIFACTS/tags/<dataset>/`: a dataset's tag sources and its answer cache (`cache.sqlite`)."""
    return artifacts_root() / "tags" / slug(dataset_name)
