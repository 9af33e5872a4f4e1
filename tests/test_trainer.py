"""Trainer and run: metrics.json layout, selection on validation, and resume after a crash."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from temarec.config import RunConfig
from temarec.training.run import code_info, run
from temarec.training.trainer import BEST, CHECKPOINT


def _cfg(model: str = "sasrec", epochs: int = 3, **train) -> RunConfig:
    return RunConfig.model_validate(
        {
            "data": {"dataset": "demo", "max_len": 20},
            "model": {"name": model, "hidden": 16, "layers": 1},
            "train": {"seed": 0, "epochs": epochs, "batch_size": 64, "threads": 1, **train},
            "eval": {"protocols": ["full", "uni20"]},
        }
    )


def test_run_writes_metrics_document(tmp_path, demo_ds):
    doc = run(_cfg(epochs=2), tmp_path, progress=False, dataset=demo_ds)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == doc
    assert doc["protocol"] == "full" and doc["seed"] == 0 and doc["model"] == "sasrec"
    for part in ("valid", "test"):
        assert set(doc[part]) == {"Food", "Kitchen", "all"}
        for m in doc[part].values():
            assert {"HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR", "n"} <= set(m)
            assert 0.0 <= m["NDCG@10"] <= m["HR@10"] <= 1.0
    # the "all" row counts every instance of both domains
    assert doc["test"]["all"]["n"] == doc["test"]["Food"]["n"] + doc["test"]["Kitchen"]["n"]
    other = json.loads((tmp_path / "metrics-uni20.json").read_text())
    assert other["protocol"] == "uni20" and other["training"] == doc["training"]
    lines = (tmp_path / "epochs.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    assert (tmp_path / "epochs.csv").read_text().startswith("epoch,loss")
    ranks = np.load(tmp_path / "ranks-full.npz")
    assert len(ranks["test_ranks"]) == doc["test"]["all"]["n"]
    assert doc["code"]["temarec"] == doc["machine"]["temarec"]
    assert set(doc["code"]) == {"temarec", "git_commit", "git_dirty"}
    assert doc["data_fingerprint"] == demo_ds.fingerprint()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_code_info_names_the_commit_and_whether_files_differ(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    assert code_info(tmp_path)["git_commit"] is None  # not a checkout
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    info = code_info(tmp_path)
    assert info["git_commit"] == head and info["git_dirty"] is False
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_info(tmp_path)["git_dirty"] is True


def test_pop_needs_no_training(tmp_path, demo_ds):
    doc = run(_cfg("pop"), tmp_path, progress=False, dataset=demo_ds)
    assert doc["training"] == {} and not (tmp_path / CHECKPOINT).exists()
    assert doc["test"]["all"]["HR@10"] > 0


def test_selection_keeps_best_validation_epoch(tmp_path, demo_ds):
    doc = run(_cfg(epochs=4), tmp_path, progress=False, dataset=demo_ds)
    rows = [json.loads(x) for x in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: r["valid_NDCG@10"])
    assert doc["training"]["best_epoch"] == best["epoch"]
    # the reported validation score is the one of the restored best checkpoint
    mean = (doc["valid"]["Food"]["NDCG@10"] + doc["valid"]["Kitchen"]["NDCG@10"]) / 2
    assert mean == pytest.approx(best["valid_NDCG@10"], abs=1e-6)


def test_resume_after_crash_matches_uninterrupted_run(tmp_path, demo_ds, monkeypatch):
    cfg = _cfg(epochs=4)
    full = run(cfg, tmp_path / "full", progress=False, dataset=demo_ds)

    from temarec.training import trainer as trainer_mod

    real_fit_epoch = trainer_mod.Trainer.train_epoch
    calls = {"n": 0}

    def crashing(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash in epoch 3")
        return real_fit_epoch(self)

    monkeypatch.setattr(trainer_mod.Trainer, "train_epoch", crashing)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "crash", progress=False, dataset=demo_ds)
    assert not (tmp_path / "crash" / "metrics.json").exists()
    assert torch.load(tmp_path / "crash" / CHECKPOINT, weights_only=True)["epoch"] == 2
    monkeypatch.setattr(trainer_mod.Trainer, "train_epoch", real_fit_epoch)
    resumed = run(cfg, tmp_path / "crash", progress=False, dataset=demo_ds)
    assert resumed["training"]["epochs"] == 4
    assert resumed["valid"] == full["valid"] and resumed["test"] == full["test"]
    # the time of the epochs before the crash is still counted (epochs.jsonl keeps every epoch's, which
    # the bench report sums)
    from temarec.bench.report import _epochs_seconds

    assert full["training"]["resumed_after_epoch"] == 0 and resumed["training"]["resumed_after_epoch"] == 2
    epochs = [json.loads(line) for line in (tmp_path / "crash" / "epochs.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4] and all(r["train_seconds"] > 0 for r in epochs)
    assert _epochs_seconds(tmp_path / "crash") == pytest.approx(
        sum(r["train_seconds"] + r["valid_seconds"] for r in epochs), abs=0.1
    )
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "full" / BEST)), load_file(str(tmp_path / "crash" / BEST))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_other_configuration(tmp_path, demo_ds):
    run(_cfg(epochs=1), tmp_path, progress=False, dataset=demo_ds)
    (tmp_path / "metrics.json").unlink()
    before = (tmp_path / "config.json").read_bytes()
    # the run folder's config.json is checked first, before anything is written
    with pytest.raises(ValueError, match=r"another configuration \(train.lr: 0.001 -> 0.01\)"):
        run(_cfg(epochs=1, lr=0.01), tmp_path, progress=False, dataset=demo_ds)
    assert (tmp_path / "config.json").read_bytes() == before
    # without it, the checkpoint's own fingerprint still refuses
    (tmp_path / "config.json").unlink()
    with pytest.raises(RuntimeError, match="another configuration"):
        run(_cfg(epochs=1, lr=0.01), tmp_path, progress=False, dataset=demo_ds)


def test_checkpoint_fingerprint_is_the_one_from_before_model_params(tmp_path, demo_ds):
    """Adding model.params must not orphan checkpoints written before it: unset, it is not hashed."""
    import hashlib

    cfg = _cfg(epochs=1)
    run(cfg, tmp_path, progress=False, dataset=demo_ds)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    before = json.loads(cfg.model_dump_json())
    del before["model"]["params"]  # the config JSON as the code before the field wrote it
    text = json.dumps(before, separators=(",", ":")) + demo_ds.fingerprint()
    assert state["fingerprint"] == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_resume_refuses_a_checkpoint_trained_on_other_tags(tmp_path, demo_ds):
    """The checkpoint carries the tag vocabulary's fingerprint; one from before it did resumes as before."""
    run(_cfg(epochs=1), tmp_path, progress=False, dataset=demo_ds)
    (tmp_path / "metrics.json").unlink()
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["tags_fingerprint"] == ""  # sasrec reads no tags
    state["tags_fingerprint"] = "0123456789abcdef"
    torch.save(state, tmp_path / CHECKPOINT)
    with pytest.raises(RuntimeError, match="another tag vocabulary.*0123456789abcdef"):
        run(_cfg(epochs=1), tmp_path, progress=False, dataset=demo_ds)
    del state["tags_fingerprint"]
    torch.save(state, tmp_path / CHECKPOINT)
    assert run(_cfg(epochs=1), tmp_path, progress=False, dataset=demo_ds)["training"]["epochs"] == 1


def test_resume_refuses_checkpoint_of_another_model_layout(tmp_path, demo_ds):
    """Same configuration, other parameters (an older temarec version): a clear error, nothing overwritten."""
    run(_cfg(epochs=2), tmp_path, progress=False, dataset=demo_ds)
    (tmp_path / "metrics.json").unlink()
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    state["model"]["stale.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / CHECKPOINT)
    before = (tmp_path / CHECKPOINT).read_bytes()
    with pytest.raises(RuntimeError, match="does not fit this model.*remove the checkpoint"):
        run(_cfg(epochs=2), tmp_path, progress=False, dataset=demo_ds)
    assert (tmp_path / CHECKPOINT).read_bytes() == before


def test_trained_model_beats_popularity_on_demo(tmp_path, demo_ds):
    """The demo world has cross-domain tastes; a sequence model must find more than popularity."""
    pop = run(_cfg("pop"), tmp_path / "pop", progress=False, dataset=demo_ds)
    sas = run(_cfg(epochs=15, lr=3e-3), tmp_path / "sas", progress=False, dataset=demo_ds)
    assert sas["valid"]["all"]["NDCG@10"] > pop["valid"]["all"]["NDCG@10"]


def test_freed_memory_is_released_on_schedule_without_changing_results(tmp_path, demo_ds, monkeypatch):
    import temarec.training.trainer as trainer_mod
    from temarec.training.memory import release_freed_memory

    assert isinstance(release_freed_memory(), bool)  # True on glibc; never raises elsewhere
    calls = []
    monkeypatch.setattr(trainer_mod, "release_freed_memory", lambda: calls.append(1) or True)
    a = run(_cfg(epochs=2, release_memory_every=3), tmp_path / "a", progress=False, dataset=demo_ds)
    from temarec.data.splits import get_split

    train = get_split(demo_ds, "auto").train
    steps = -(-int((train.lengths >= 2).sum()) // 64)  # batches per epoch
    assert len(calls) == 2 * (steps // 3 + 1)  # every 3 steps, and after each validation
    calls.clear()
    b = run(_cfg(epochs=2, release_memory_every=0), tmp_path / "b", progress=False, dataset=demo_ds)
    assert calls == []  # 0 turns it off
    assert a["test"] == b["test"]  # memory release changes no number


def test_evaluate_run_reproduces_the_run_and_adds_protocols(tmp_path, demo_ds):
    """Re-evaluating the selected checkpoint gives the run's own numbers; new protocols and candidate
    draws go into files of their own and never replace the run's."""
    from temarec.training.run import evaluate_run

    doc = run(_cfg(epochs=2), tmp_path, progress=False, dataset=demo_ds)
    own = (tmp_path / "metrics-uni20.json").read_text()
    again = evaluate_run(tmp_path, ["full", "uni20", "uni50"], dataset=demo_ds)
    assert again["full"]["test"] == doc["test"] and again["full"]["valid"] == doc["valid"]
    assert again["uni20"]["test"] == json.loads(own)["test"]
    # existing files are kept; the new protocol is written beside them with the training record
    assert again["full"]["written"] is None and again["uni20"]["written"] is None
    assert (tmp_path / "metrics-uni20.json").read_text() == own
    new = json.loads((tmp_path / "metrics-uni50.json").read_text())
    assert again["uni50"]["written"] == str(tmp_path / "metrics-uni50.json")
    assert new["evaluated_after_training"] and new["training"] == doc["training"]
    assert new["selected_on"] == doc["selected_on"] and new["seed"] == doc["seed"]
    r50 = np.load(tmp_path / "ranks-uni50.npz")
    assert len(r50["test_ranks"]) == new["test"]["all"]["n"] and r50["test_ranks"].max() <= 51
    # another candidate draw: its own suffix, its own seed in the document
    other = evaluate_run(tmp_path, ["uni20"], candidate_seed=7, dataset=demo_ds)["uni20"]
    assert other["candidate_seed"] == 7
    assert other["written"] == str(tmp_path / "metrics-uni20-candidates7.json")
    assert (tmp_path / "ranks-uni20-candidates7.npz").is_file()
    assert (tmp_path / "metrics-uni20.json").read_text() == own
    # --overwrite replaces, with the same numbers
    over = evaluate_run(tmp_path, ["uni20"], dataset=demo_ds, overwrite=True)["uni20"]
    assert over["written"] == str(tmp_path / "metrics-uni20.json")
    assert json.loads((tmp_path / "metrics-uni20.json").read_text())["test"] == json.loads(own)["test"]
    with pytest.raises(ValueError, match="protocol"):
        evaluate_run(tmp_path, ["uni0"], dataset=demo_ds)


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    from temarec.training.trainer import atomic_write

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write(tmp_path / "atomic.txt", lambda tmp: Path(tmp).write_text("y"))
    assert (tmp_path / "atomic.txt").stat().st_mode == plain.stat().st_mode
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_a_trainer_used_directly_does_not_resume_another_training(tmp_path, demo_ds):
    """Without a config fingerprint it makes one: another seed or lr in the same folder trains anew."""
    from temarec.data.splits import leave_one_out
    from temarec.models import build_model
    from temarec.training.run import build_evaluators
    from temarec.training.trainer import ResumeError, Trainer

    split = leave_one_out(demo_ds)

    def fit(lr):
        cfg = _cfg(epochs=1, lr=lr)
        torch.manual_seed(0)
        m = build_model(demo_ds.info(), cfg.model, 20)
        ev = build_evaluators(demo_ds, split, cfg, "valid")["full"]
        return Trainer(m, split.train, ev.evaluate, cfg.train, tmp_path, 20, progress=False).fit()

    assert fit(1e-3)["resumed_after_epoch"] == 0
    with pytest.raises(ResumeError, match="another configuration"):
        fit(1e-2)
    assert fit(1e-3)["resumed_after_epoch"] == 1  # the same training resumes


def test_a_loss_that_is_not_a_scalar_is_a_clear_error(tmp_path, demo_ds, monkeypatch):
    from temarec.models.sasrec import SASRec

    real = SASRec.loss
    monkeypatch.setattr(SASRec, "loss", lambda self, batch: real(self, batch).expand(3))
    with pytest.raises(TypeError, match=r"SASRec.loss must return a scalar tensor .*shape \(3,\)"):
        run(_cfg(epochs=1), tmp_path, progress=False, dataset=demo_ds)
