"""Shared fixtures: the real datasets (skipped with a clear message where absent) and isolated caches."""

from __future__ import annotations

import pytest

from temarec.settings import data_root


@pytest.fixture(autouse=True)
def _isolated_artifacts(tmp_path_factory, monkeypatch):
    """Candidate sets and other caches of a test go to a temp folder, never into the checkout."""
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(tmp_path_factory.mktemp("artifacts")))


def real_dataset(name: str):
    folder = data_root() / name
    if not folder.is_dir():
        pytest.skip(f"real dataset {name!r} not found under {data_root()} (set TEMAREC_DATA to its folder)")
    return folder


@pytest.fixture(scope="session")
def afk():
    from temarec.data.loaders import load_abxi

    return load_abxi(real_dataset("amazon-food-kitchen"), domains=("Food", "Kitchen"))


@pytest.fixture(scope="session")
def demo_ds():
    from temarec.data.demo import generate_demo

    return generate_demo(seed=0, n_users=400, n_items_a=120, n_items_b=100)


@pytest.fixture
def need_real():
    """`need_real(name)` gives the folder of a real dataset or skips the test with a clear message."""
    return real_dataset


def tiny_tema_config(tag_source: str):
    """A small tema on the demo world (keyphrase tags, MiniLM text) that trains in seconds."""
    from temarec.config import RunConfig

    return RunConfig.model_validate(
        {
            "data": {"dataset": "demo", "max_len": 20},
            "features": {"tags": tag_source},
            "model": {"name": "tema", "hidden": 16, "layers": 1},
            "train": {"epochs": 2, "batch_size": 128, "threads": 1},
            "eval": {"protocols": ["uni20"]},
        }
    )


@pytest.fixture(scope="session")
def tiny_tema():
    """`tiny_tema(tag_source)`: the config of a small tema run on the demo world."""
    return tiny_tema_config
