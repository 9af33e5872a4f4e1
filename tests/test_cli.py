"""The command line on real data and the demo, and its error messages."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from temarec.cli import app

runner = CliRunner()


def test_data_stats_real_counts(need_real):
    need_real("amazon-food-kitchen")
    res = runner.invoke(app, ["data", "stats", "amazon-food-kitchen"])
    assert res.exit_code == 0, res.output
    lines = {ln.split()[0]: ln.split()[1:] for ln in res.output.splitlines() if ln.strip()}
    assert lines["Food"][:2] == ["7,144", "11,837"]
    assert lines["Kitchen"][:2] == ["7,144", "16,258"]
    assert lines["all"][0] == "7,144" and lines["all"][1] == "28,095" and lines["all"][3] == "173,548"


def test_data_stats_published_splits(need_real):
    need_real("amazon-art-office")
    res = runner.invoke(app, ["data", "stats", "amazon-art-office", "--json"])
    assert res.exit_code == 0, res.output
    st = json.loads(res.output)
    assert st["domains"]["Art"]["items"] + st["domains"]["Office"]["items"] == st["all"]["items"]


def test_train_pop_on_demo(tmp_path):
    out = tmp_path / "pop"
    res = runner.invoke(
        app, ["train", "--dataset", "demo", "--model", "pop", "--output", str(out), "--protocol", "uni100"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["protocol"] == "uni100" and set(doc["test"]) == {"Food", "Kitchen", "all"}
    assert "Kitchen" in res.output and "NDCG@10" in res.output


def test_unknown_dataset_and_model_are_clear_errors(tmp_path):
    res = runner.invoke(
        app, ["train", "--dataset", "no-such-data", "--model", "pop", "--output", str(tmp_path)]
    )
    assert res.exit_code == 2 and "no-such-data" in res.output
    res = runner.invoke(app, ["train", "--dataset", "demo", "--model", "nope", "--output", str(tmp_path)])
    assert res.exit_code == 2 and "nope" in res.output
    res = runner.invoke(app, ["train", "--dataset", "demo", "--protocol", "uni0", "--output", str(tmp_path)])
    assert res.exit_code == 2
    res = runner.invoke(app, ["train", "--set", "model.hidden=abc", "--output", str(tmp_path)])
    assert res.exit_code == 2 and "hidden" in res.output


def test_demo_runs_the_whole_pipeline(tmp_path):
    """The quickstart's main job, with one epoch per model and the keyphrase tagger so that it stays a test
    (its default tags with the local LLM where installed: `choose_demo_tagger`, tests/test_pipeline.py)."""
    res = runner.invoke(app, ["demo", "--output", str(tmp_path), "--epochs", "1", "--tagger", "keyphrase"])
    assert res.exit_code == 0, res.output
    for stage in ("stage 1: tags from keyphrase", "stage 2", "train and evaluate tema", "stage 4"):
        assert stage in res.output
    for model in ("pop", "sasrec", "tema"):
        assert json.loads((tmp_path / model / "metrics.json").read_text())["model"] == model
    assert "next in Kitchen" in res.output and "demo finished" in res.output


def test_evaluate_a_finished_run(tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        app, ["train", "--dataset", "demo", "--model", "pop", "--protocol", "full", "--output", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["evaluate", str(tmp_path), "--protocol", "uni99,full"])
    assert res.exit_code == 0, res.output
    assert (
        "candidates drawn with seed 2025" in res.output
        and f"wrote {tmp_path / 'metrics-uni99.json'}" in res.output
    )
    assert "kept the existing metrics file" in res.output  # full: the run's own metrics.json
    doc = json.loads((tmp_path / "metrics-uni99.json").read_text())
    assert doc["protocol"] == "uni99" and doc["evaluated_after_training"]
    bad = runner.invoke(app, ["evaluate", str(tmp_path), "--protocol", "uni0"])
    assert bad.exit_code == 2 and "error:" in bad.output
    missing = runner.invoke(app, ["evaluate", str(tmp_path / "nothing"), "--protocol", "full"])
    assert missing.exit_code == 2 and "config.json: not found" in missing.output


def test_data_export_names_the_copy_after_its_folder(tmp_path):
    """Tags and candidate sets are kept by dataset name: an exported copy (to be edited) gets its
    folder's name, not 'demo', so its tags never overwrite the demo's."""
    res = runner.invoke(app, ["data", "export", "demo", str(tmp_path / "my-shop")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "my-shop" / "dataset.json").read_text())["name"] == "my-shop"
    res = runner.invoke(app, ["data", "export", "demo", str(tmp_path / "b"), "--name", "shop-v2"])
    assert json.loads((tmp_path / "b" / "dataset.json").read_text())["name"] == "shop-v2"
    res = runner.invoke(app, ["data", "export", "demo", str(tmp_path / "c"), "--format", "xml"])
    assert res.exit_code == 2 and "--format must be one of csv, parquet" in res.output
    assert not (tmp_path / "c").exists()


def test_data_export_never_replaces_a_dataset_unasked(tmp_path):
    """An exported copy gets edited: exporting into it again must not silently undo the edits."""
    shop = tmp_path / "shop"
    assert runner.invoke(app, ["data", "export", "demo", str(shop)]).exit_code == 0
    (shop / "items.csv").write_text((shop / "items.csv").read_text().replace("Tea", "Tee"))
    edited = (shop / "items.csv").read_bytes()
    res = runner.invoke(app, ["data", "export", "demo", str(shop)])
    assert (
        res.exit_code == 2
        and "already holds a dataset (dataset.json, interactions.csv, items.csv)" in res.output
    )
    assert (shop / "items.csv").read_bytes() == edited
    assert runner.invoke(app, ["data", "export", "demo", str(shop), "--overwrite"]).exit_code == 0
    assert (shop / "items.csv").read_bytes() != edited
    (tmp_path / "f.json").write_text("{}")
    res = runner.invoke(app, ["data", "export", "demo", str(tmp_path / "f.json")])
    assert res.exit_code == 2 and "f.json is a file" in res.output


def test_import_amazon_errors_are_one_line(tmp_path):
    good = tmp_path / "b.json"
    good.write_text('{"reviewerID": "u", "asin": "b", "unixReviewTime": 1}\n')
    bad = tmp_path / "a.json"
    bad.write_text('{"reviewerID": "u", "asin": "a", "unixReviewTime": 1}\n["a", "list"]\n')
    args = ["data", "import-amazon", "--b-reviews", str(good), "--out", str(tmp_path / "out")]
    res = runner.invoke(app, [*args, "--a-reviews", str(bad)])
    assert res.exit_code == 2 and "a.json:2: expected an object, got list" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "out").exists()
    res = runner.invoke(app, [*args, "--a-reviews", str(good), "--format", "xml"])
    assert res.exit_code == 2 and "--format" in res.output
    res = runner.invoke(app, [*args, "--a-reviews", str(good), "--a-category", "Books"])  # no --a-meta
    assert res.exit_code == 2 and "domain 'A': a category filter needs a metadata file" in res.output


def test_a_run_folder_of_other_settings_is_refused_untouched(tmp_path):
    """Training into a folder that holds another run would leave its files beside the new run's (or
    its checkpoint would block the resume): refused before anything is written, naming the settings;
    --overwrite replaces that run."""
    out = tmp_path / "run"
    base = ["train", "--dataset", "demo", "--output", str(out), "--quiet"]
    res = runner.invoke(app, [*base, "--model", "sasrec", "--epochs", "1", "--protocol", "full,uni100"])
    assert res.exit_code == 0, res.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = runner.invoke(app, [*base, "--model", "gru4rec", "--epochs", "1"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "another configuration" in res.output and "model.name: 'sasrec' -> 'gru4rec'" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    res = runner.invoke(app, [*base, "--model", "pop", "--overwrite"])
    assert res.exit_code == 0, res.output
    left = sorted(p.name for p in out.iterdir())
    assert left == ["config.json", "metrics.json", "ranks-full.npz"], left  # nothing of sasrec's
    assert json.loads((out / "metrics.json").read_text())["model"] == "pop"


def test_bad_settings_fail_before_training(tmp_path):
    """One `error:` line each, before an epoch is spent."""
    base = ["train", "--dataset", "demo", "--model", "pop", "--output", str(tmp_path / "r")]
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("train: {lr: [0.1\n")
    cases = [
        (["--protocol", ","], "at least one protocol"),
        (["--set", "train.select_metric=NDCG@11"], "unknown metric 'NDCG@11'"),
        (["--config", str(bad_yaml)], "bad.yaml:2: not valid YAML"),
        (["--config", str(tmp_path / "absent.yaml")], "absent.yaml: cannot read the config file"),
        (["--config", str(tmp_path)], "cannot read the config file"),
    ]
    for extra, message in cases:
        res = runner.invoke(app, [*base, *extra])
        assert res.exit_code == 2, (extra, res.output)
        assert message in res.output and "Traceback" not in res.output, (extra, res.output)
        assert "errors.pydantic.dev" not in res.output
    assert not (tmp_path / "r").exists()
    res = runner.invoke(app, [*base, "--protocol", "UNI0100"])
    assert res.exit_code == 0 and (tmp_path / "r" / "ranks-uni100.npz").is_file()  # one name per protocol


def test_evaluate_refuses_an_unfinished_run_and_full_keeps_its_seed(tmp_path):
    res = runner.invoke(
        app, ["train", "--dataset", "demo", "--model", "pop", "--protocol", "full", "--output", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["evaluate", str(tmp_path), "--protocol", "full", "--candidate-seed", "7", "--overwrite"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "metrics.json").read_text())["candidate_seed"] == 2025  # nothing drawn
    (tmp_path / "metrics.json").unlink()  # as after a killed training
    res = runner.invoke(app, ["evaluate", str(tmp_path), "--protocol", "uni99"])
    assert res.exit_code == 2 and "has not finished" in res.output
    assert not (tmp_path / "metrics-uni99.json").exists()


def test_sigterm_mid_export_leaves_no_partial_files(tmp_path):
    """`kill` (SIGTERM) runs the clean-up that Ctrl-C runs: exit 143, no temporary folder left behind."""
    import subprocess
    import sys

    script = """
import os, signal, sys, time
import pandas as pd
from temarec import cli

def killed_while_writing(self, path, *a, **k):
    open(path, "w").write("half a file")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)

pd.DataFrame.to_csv = killed_while_writing
sys.argv = ["temarec", "data", "export", "demo", sys.argv[1]]
cli.main()
"""
    out = tmp_path / "shop"
    res = subprocess.run(
        [sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 143, res.stderr[-2000:]
    assert out.is_dir() and list(out.iterdir()) == []  # nothing half-written, no .tmp-canonical-* folder


def test_ctrl_c_ends_long_commands_with_a_line_and_130(monkeypatch, tmp_path):
    """Like `train` and `tag`: the demo says that a rerun reuses its work; recommend that nothing
    was half-written."""
    import temarec.data.demo
    import temarec.serving.load

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(temarec.data.demo, "generate_demo", interrupted)
    res = runner.invoke(app, ["demo", "--output", str(tmp_path / "d")])
    assert res.exit_code == 130 and "interrupted: run `temarec demo` again" in res.output
    monkeypatch.setattr(temarec.serving.load, "load_run", interrupted)
    res = runner.invoke(app, ["recommend", str(tmp_path), "--user", "U1"])
    assert res.exit_code == 130 and "interrupted: nothing was written" in res.output


def test_a_sampled_protocol_larger_than_a_domain_names_the_user(tmp_path):
    res = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "demo",
            "--model",
            "pop",
            "--protocol",
            "uni5000",
            "--output",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "uni5000: user 'U" in res.output and "use uniN with N at most" in res.output


def test_a_refused_run_leaves_no_folder(tmp_path):
    out = tmp_path / "runs" / "x"
    res = runner.invoke(
        app, ["train", "--dataset", "demo", "--model", "pop", "--split", "published", "--output", str(out)]
    )
    assert res.exit_code == 2 and "no published split" in res.output, res.output
    assert not out.exists() and not out.parent.exists()


def test_train_says_what_it_runs_and_help_names_the_defaults(tmp_path, monkeypatch):
    from temarec.config import RunConfig

    d = RunConfig()
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps help text at the terminal's width
    res = runner.invoke(app, ["train", "--help"])
    assert f"default: the config's, {d.data.dataset}" in res.output
    assert f"default: the config's, {d.model.name}" in res.output
    res = runner.invoke(app, ["train", "--model", "pop", "--output", str(tmp_path / "r")])
    assert res.exit_code == 0 and res.output.startswith(f"train pop on {d.data.dataset} (seed 0, full")
    assert "note: validation still improved" not in res.output
    res = runner.invoke(app, ["train", "--epochs", "1", "--output", str(tmp_path / "s"), "--quiet"])
    assert res.exit_code == 0 and "note: validation still improved in the last epoch (1)" in res.output
    doc = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert doc["training"]["stopped"] == "epochs" and doc["training"]["best_epoch"] == 1
