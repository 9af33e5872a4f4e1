"""Config: YAML + dotted overrides, typed validation with clear errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from temarec.config import RunConfig, load_config


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  name: gru4rec\n  hidden: 32\ntrain:\n  epochs: 7\n")
    cfg = load_config(path, ["train.lr=0.005", "eval.protocols=[full,uni999]", "model.hidden=48"])
    assert cfg.model.name == "gru4rec" and cfg.model.hidden == 48  # the override wins over the file
    assert cfg.train.epochs == 7 and cfg.train.lr == 0.005
    assert cfg.eval.protocols == ["full", "uni999"]
    assert cfg.data.dataset == RunConfig().data.dataset


@pytest.mark.parametrize(
    "override",
    ["model.hiden=3", "train.lr=-1", "data.split=random", "train.epochs=many", "nonsense"],
)
def test_bad_values_are_rejected(override):
    with pytest.raises((ValidationError, ValueError)):
        load_config(None, [override])


def test_config_file_must_be_a_mapping(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(path)
