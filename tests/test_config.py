"""Config: YAML + dotted overrides, typed validation with clear errors."""

from __future__ import annotations

import json

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


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("train:\n  lr: 0.01\n  epochs: 3\n  lr: 0.001\n")
    with pytest.raises(ValueError, match=r"dup.yaml:4: .*'lr' is given twice \(first on line 2\)"):
        load_config(path)
    # the same key in two sections is not a duplicate
    path.write_text("model:\n  hidden: 32\ntrain:\n  epochs: 2\ndata:\n  max_len: 20\n")
    assert load_config(path).data.max_len == 20
    with pytest.raises(ValueError, match="given twice"):
        load_config(None, ["eval.protocols={a: 1, a: 2}"])


def test_a_prompt_or_bench_file_with_a_key_given_twice_is_refused(tmp_path):
    from temarec.bench.config import BenchConfigError, load_bench_config
    from temarec.tagging.prompts import PromptSet

    prompts = tmp_path / "p.yaml"
    prompts.write_text("version: v1\nversion: v2\n")
    with pytest.raises(ValueError, match="p.yaml:2: .*'version' is given twice"):
        PromptSet.from_yaml(prompts)
    bench = tmp_path / "b.yaml"
    bench.write_text("datasets: [demo]\nseeds: [0]\nseeds: [1]\n")
    with pytest.raises(BenchConfigError, match="'seeds' is given twice"):
        load_bench_config(bench)


def test_a_stored_config_with_a_moved_key_still_loads(tmp_path):
    from temarec.config import upgrade_stored_config
    from temarec.serving.load import read_run_config

    old = RunConfig().model_dump(mode="json")
    old["features"].pop("max_tags")
    old["model"]["max_tags"] = 5  # where early runs wrote it
    up = upgrade_stored_config(old)
    assert "max_tags" not in up["model"] and "max_tags" in old["model"]  # moved; the input untouched
    assert RunConfig.model_validate(up).features.max_tags == 5
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert read_run_config(tmp_path).features.max_tags == 5
    both = json.loads(json.dumps(old)) | {"features": {"max_tags": 7}}
    assert RunConfig.model_validate(upgrade_stored_config(both)).features.max_tags == 7  # the new key ran
    current = RunConfig().model_dump(mode="json")
    assert upgrade_stored_config(current) == current
    old["model"]["not_a_setting"] = 1  # anything else unknown is still an error naming the field
    (tmp_path / "config.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="model.not_a_setting"):
        read_run_config(tmp_path)


def test_assigning_id_only_turns_the_content_inputs_off():
    cfg = RunConfig()
    cfg.model.id_only = True  # validate_assignment reruns the model validator
    assert (cfg.model.use_text, cfg.model.use_image, cfg.model.use_tags) == (False, False, False)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("model.name=sasrecc", "did you mean 'sasrec'"),
        ("train.grad_clip=-1", "grad_clip"),
        ("train.seed=-1", "seed"),
        ("train.seed=4294967296", "seed"),
        ("train.lr=.inf", "lr"),
        ("train.threads=0", "threads"),
        ("train.epochs=0", "epochs"),
        ("eval.candidate_seed=-2", "candidate_seed"),
    ],
)
def test_values_that_would_fail_late_or_train_wrongly_are_refused_up_front(override, field):
    with pytest.raises(ValidationError, match=field):
        load_config(None, [override])
    assert load_config(None, ["train.grad_clip=null"]).train.grad_clip is None  # off


def test_an_unknown_setting_gets_the_closest_known_one():
    from pydantic import ValidationError

    from temarec.config import brief, load_config

    def message(override: str) -> str:
        with pytest.raises(ValidationError) as e:
            load_config(None, [override])
        return brief(e.value)

    assert message("trian.epochs=1") == "field 'trian': unknown setting (did you mean 'train'?)"
    assert message("train.epoch=1") == "field 'train.epoch': unknown setting (did you mean 'train.epochs'?)"
    assert message("train.zzz=1").startswith("field 'train.zzz': unknown setting (known here: seed, epochs,")
