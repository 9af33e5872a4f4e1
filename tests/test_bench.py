"""`temarec bench`: config errors, cell states, the report on hand-made runs, the quick grid end to end."""

from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from temarec.bench.config import BenchConfig, BenchConfigError, load_bench_config
from temarec.bench.report import write_report
from temarec.bench.runner import build_cells, cell_status, plan
from temarec.cli import app
from temarec.config import config_differences
from temarec.evaluation.significance import instance_metric

runner = CliRunner()
DOMAINS = ("Food", "Kitchen")


def _yaml(tmp_path: Path, doc: dict, name: str = "bench.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _small(output: Path, **extra) -> dict:
    doc = {
        "datasets": ["demo"],
        "seeds": [0, 1],
        "protocols": ["full", "uni100"],
        "output": str(output),
        "common": {"train.epochs": 1},
        "variants": {"pop": {"baseline": True, "seeds": [0]}, "sasrec": {"baseline": True}},
    }
    return doc | extra


# ---- config ----------------------------------------------------------------------------------------------
def test_packaged_configs_load_and_share_tema_settings():
    quick = load_bench_config("quick")
    assert quick.datasets == ["demo"] and quick.protocols == ["full", "uni100"] and quick.jobs == 2
    assert len(build_cells(quick)) == 9  # pop once, 4 variants x 2 seeds
    paper = load_bench_config("paper")
    assert paper.protocols == ["full", "uni999"] and paper.seeds == [0, 1, 2]
    assert {"pop", "gru4rec", "sasrec", "sasrec-single", "c2dsr", "tema"} <= set(paper.variants)
    assert paper.variant_model("tema-no-tags") == "tema" and paper.variant_model("c2dsr") == "c2dsr"
    afk = paper.run_config("amazon-food-kitchen", "tema-mean-fusion", 1)
    assert afk.model.tag_fusion == "mean" and afk.features.tags == "keyphrase" and afk.train.lr == 2e-3
    assert paper.run_config("amazon-art-office", "tema", 0).features.tags == "third-party-deepseek"
    assert paper.run_config("amazon-food-kitchen", "sasrec", 2).model.softmax_negatives == 1000
    assert paper.run_config("amazon-food-kitchen", "tema-id-only", 0).model.use_text is False


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"jobz": 2}, ["jobz", "did you mean 'jobs'"]),
        (
            {"variants": {"x": {"model": "sasrec", "set": {"model.hiden": 3}}}},
            ["model.hiden", "model.hidden"],
        ),
        ({"variants": {"x": {"modle": "sasrec"}}}, ["variants.x", "modle", "'model'"]),
        ({"variants": {"x": {"model": "sasrec", "set": {"train.seed": 3}}}}, ["train.seed", "seeds"]),
        ({"variants": {"x": {"model": "sasrec", "set": {"model.hidden": "abc"}}}}, ["'x'", "hidden"]),
        ({"variants": {"x": {"extends": "nope"}}}, ["extends", "nope"]),
        ({"variants": {"a/b": {}}}, ["a/b", "folder-safe"]),
        ({"protocols": ["full", "uni0"]}, ["uni0"]),
        ({"ablation_of": {"tema": ["sasrec"]}}, ["ablation_of", "tema"]),
        ({"dataset_overrides": {"other": {"train.lr": 0.1}}}, ["other", "not in datasets"]),
        ({"variants": {"x": {"model": "sasrec", "set_for": {"other": {}}}}}, ["set_for", "other"]),
        ({"variants": {"x": {"model": "sasrec", "set_for": {"demo": {"model.hiden": 3}}}}}, ["model.hiden"]),
        ({"common": {"eval.protocol": ["full"]}}, ["eval.protocol", "eval.protocols"]),
    ],
)
def test_config_errors_are_clear(tmp_path, change, words):
    path = _yaml(tmp_path, _small(tmp_path / "out") | change)
    with pytest.raises(BenchConfigError) as e:
        load_bench_config(path)
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg


def test_cli_reports_config_errors_and_unknown_names(tmp_path):
    res = runner.invoke(app, ["bench", "no-such-config"])
    assert res.exit_code == 2 and "quick" in res.output and "paper" in res.output
    res = runner.invoke(app, ["bench", str(_yaml(tmp_path, _small(tmp_path, jobz=1)))])
    assert res.exit_code == 2 and "jobz" in res.output


# ---- cell states -----------------------------------------------------------------------------------------
def _fake_run(cell, ranks: dict[str, np.ndarray], dom: np.ndarray, config: dict | None = None) -> None:
    """A finished run folder as `temarec train` writes it, with metrics computed from `ranks`."""
    cell.dir.mkdir(parents=True, exist_ok=True)
    cfg = config if config is not None else cell.run_config.model_dump(mode="json")
    (cell.dir / "config.json").write_text(json.dumps(cfg))
    users = np.arange(len(dom))
    for i, p in enumerate(cell.protocols):
        r = ranks[p]
        test = {}
        for d, name in [(0, "Food"), (1, "Kitchen"), (None, "all")]:
            keep = np.ones(len(r), bool) if d is None else dom == d
            test[name] = {m: float(instance_metric(r[keep], m).mean()) for m in ("HR@10", "NDCG@10", "MRR")}
        doc = {
            "dataset": "demo",
            "model": cell.model,
            "split": "loo",
            "protocol": p,
            "selected_on": "valid full mean over domains of NDCG@10",
            "seed": cell.seed,
            "candidate_seed": 2025,
            "exclude_history": True,
            "ties": "pessimistic",
            "valid": test,
            "test": test,
            "training": {"epochs": 5, "best_epoch": 3, "seconds_per_epoch": 1.5},
            "wall_seconds": 12.0,
            "peak_rss_mb": 321.0,
            "machine": {"platform": "test", "torch": "x"},
            "code": {"temarec": "0.1.0", "git_commit": "abcdef0123456789", "git_dirty": cell.seed == 1},
        }
        name = "metrics.json" if i == 0 else f"metrics-{p}.json"
        (cell.dir / name).write_text(json.dumps(doc))
        np.savez(
            cell.dir / f"ranks-{p}.npz",
            valid_ranks=r,
            valid_users=users,
            valid_domain=dom,
            test_ranks=r,
            test_users=users,
            test_domain=dom,
        )


def _cells(tmp_path: Path, **extra) -> tuple[BenchConfig, dict]:
    cfg = BenchConfig.model_validate(_small(tmp_path / "out", **extra))
    return cfg, {c.name: c for c in build_cells(cfg)}


def test_variant_settings_for_one_dataset_only(tmp_path):
    """`set_for` changes a variant on one dataset, is inherited by `extends`, and leaves others alone."""
    doc = _small(tmp_path / "out", datasets=["demo", "demo2"])
    doc["variants"] |= {
        "big": {"model": "sasrec", "set": {"model.hidden": 32}, "set_for": {"demo2": {"model.hidden": 48}}},
        "big-drop": {"extends": "big", "set": {"model.dropout": 0.1}},
    }
    cfg = BenchConfig.model_validate(doc)
    assert cfg.run_config("demo", "big", 0).model.hidden == 32
    assert cfg.run_config("demo2", "big", 0).model.hidden == 48
    assert cfg.run_config("demo2", "big-drop", 0).model.hidden == 48
    plain = cfg.run_config("demo", "sasrec", 0).model.hidden
    assert cfg.run_config("demo2", "sasrec", 0).model.hidden == plain


def test_cell_states_from_folders(tmp_path):
    cfg, cells = _cells(tmp_path)
    assert list(cells) == ["demo/pop/seed0", "demo/sasrec/seed0", "demo/sasrec/seed1"]
    dom = np.repeat([0, 1], 20)
    ranks = {p: np.arange(1, 41, dtype=float) for p in cfg.protocols}
    _fake_run(cells["demo/pop/seed0"], ranks, dom)  # done
    stale = cells["demo/sasrec/seed0"].run_config.model_dump(mode="json")
    stale["model"]["hidden"] = 128
    _fake_run(cells["demo/sasrec/seed0"], ranks, dom, config=stale)
    st = {c: cell_status(cells[c]) for c in cells}
    assert st["demo/pop/seed0"].state == "done"
    assert (
        st["demo/sasrec/seed0"].state == "stale"
        and "model.hidden: 128 -> 64" in st["demo/sasrec/seed0"].detail
    )
    assert st["demo/sasrec/seed1"].state == "todo"
    part = cells["demo/sasrec/seed1"]
    part.dir.mkdir(parents=True)
    (part.dir / "config.json").write_text(part.run_config.model_dump_json())
    (part.dir / "checkpoint.pt").write_bytes(b"x")
    assert cell_status(part).state == "partial"
    started = json.loads(part.run_config.model_dump_json())
    started["train"]["threads"] = 3  # interrupted, then the bench's threads changed: resume as it started
    (part.dir / "config.json").write_text(json.dumps(started))
    st = cell_status(part)
    assert st.state == "partial" and "train.threads=3" in st.detail and "train.threads=3" in part.args
    assert part.run_config.train.threads == 3
    (cells["demo/pop/seed0"].dir / "metrics-uni100.json").unlink()  # a protocol's metrics missing
    assert cell_status(cells["demo/pop/seed0"]).state == "todo"


def test_staleness_ignores_schema_drift_threads_and_unused_features(tmp_path):
    _, cells = _cells(tmp_path)
    want = cells["demo/sasrec/seed0"].run_config.model_dump(mode="json")
    old = json.loads(json.dumps(want))
    del old["model"]["history_tags"]  # added to the schema after that run, at its default
    old["model"]["max_tags"] = 8  # since removed from the schema
    old["train"]["threads"] = 7  # how it ran, not what it computed
    old["features"]["tags"] = "something-else"  # sasrec reads no item features
    assert config_differences(want, old) == []
    old["model"]["dropout"] = 0.5
    assert config_differences(want, old) == ["model.dropout: 0.5 -> 0.2"]
    tema = json.loads(json.dumps(want))
    tema["model"]["name"] = "tema"
    tema_old = json.loads(json.dumps(tema))
    tema_old["features"]["tags"] = "keyphrase"
    assert config_differences(tema, tema_old) == ["features.tags: 'keyphrase' -> 'auto'"]
    moved = json.loads(json.dumps(tema))  # written when max_tags was a model setting
    moved["model"]["max_tags"] = moved["features"].pop("max_tags")
    assert config_differences(tema, moved) == []
    moved["model"]["max_tags"] = 5
    assert config_differences(tema, moved) == ["features.max_tags: 5 -> 8"]


def test_dry_run_filter_and_absent_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMAREC_DATA", str(tmp_path / "no-data"))
    cfg = _small(tmp_path / "out", datasets=["demo", "missing-ds"])
    path = _yaml(tmp_path, cfg)
    res = runner.invoke(app, ["bench", str(path), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "6 cells" in res.output and "3 todo" in res.output and "3 skip" in res.output
    assert "'missing-ds' is absent" in res.output and "TEMAREC_DATA" in res.output
    assert "todo    demo/sasrec/seed1" in res.output
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    res = runner.invoke(app, ["bench", str(path), "--dry-run", "--filter", "demo/sas"])
    assert res.exit_code == 0 and "2 cells" in res.output and "pop" not in res.output.split("\n", 1)[1]
    res = runner.invoke(app, ["bench", str(path), "--dry-run", "--filter", "demo/sasrec/seed1"])
    assert res.exit_code == 0 and "1 cells" in res.output, res.output
    res = runner.invoke(app, ["bench", str(path), "--dry-run", "--filter", "nothing-like-this"])
    assert res.exit_code == 2 and "matches no cell" in res.output


def test_filters_and_overrides_for_every_cell(tmp_path):
    """`--filter` repeated keeps cells matching any; `--set` is applied last to every cell."""
    doc = _small(tmp_path / "out")
    doc["variants"]["sasrec"] = {"baseline": True, "set": {"model.dropout": 0.3}}
    path = _yaml(tmp_path, doc)
    res = runner.invoke(app, ["bench", str(path), "--dry-run", "--filter", "demo/pop", "--filter", "seed1"])
    assert res.exit_code == 0 and "2 cells" in res.output, res.output
    assert "demo/pop/seed0" in res.output and "demo/sasrec/seed1" in res.output
    assert "demo/sasrec/seed0" not in res.output
    cfg = BenchConfig.model_validate(
        doc | {"overrides": {"model.dropout": 0.1, "model.softmax_negatives": 0}}
    )
    for c in build_cells(cfg):
        assert c.run_config.model.dropout == 0.1 and c.run_config.model.softmax_negatives == 0
        assert "model.softmax_negatives=0" in c.args
    # a finished cell run without the override is stale under it
    _, cells = _cells(tmp_path)
    _fake_run(
        cells["demo/pop/seed0"],
        {p: np.arange(1, 41, dtype=float) for p in cfg.protocols},
        np.repeat([0, 1], 20),
    )
    res = runner.invoke(
        app, ["bench", str(path), "--dry-run", "--filter", "demo/pop", "--set", "model.dropout=0.25"]
    )
    assert res.exit_code == 0 and "stale" in res.output and "model.dropout" in res.output, res.output
    bad = runner.invoke(app, ["bench", str(path), "--dry-run", "--set", "model.no_such_key=1"])
    assert bad.exit_code == 2 and "no_such_key" in bad.output
    bad = runner.invoke(app, ["bench", str(path), "--dry-run", "--set", "dropout"])
    assert bad.exit_code == 2 and "section.key=value" in bad.output


def test_a_cell_run_on_other_data_is_stale(tmp_path):
    """A finished cell whose stored data fingerprint is not the dataset's now is stale, not done."""
    from temarec.data.registry import load_dataset

    cfg, cells = _cells(tmp_path)
    dom = np.repeat([0, 1], 20)
    ranks = {p: np.arange(1, 41, dtype=float) for p in cfg.protocols}
    for c in cells.values():
        _fake_run(c, ranks, dom)
    now = load_dataset("demo", demo_seed=cells["demo/pop/seed0"].run_config.data.demo_seed).fingerprint()
    for name, fp in [("demo/pop/seed0", now), ("demo/sasrec/seed0", "0123456789abcdef")]:
        f = cells[name].dir / "metrics.json"
        f.write_text(json.dumps(json.loads(f.read_text()) | {"data_fingerprint": fp}))
    st = {s.cell.name: s for s in plan(list(cells.values()))}
    assert st["demo/pop/seed0"].state == "done"
    assert st["demo/sasrec/seed1"].state == "done"  # no fingerprint stored (an older run): not judged
    assert st["demo/sasrec/seed0"].state == "stale"
    assert "dataset changed" in st["demo/sasrec/seed0"].detail and now in st["demo/sasrec/seed0"].detail


def test_a_cell_run_on_other_tags_is_stale(tmp_path, monkeypatch):
    """A finished cell whose stored tag-vocabulary fingerprint is not that of the vocabulary its
    `features.tags` names now (re-tagged, or removed) is stale; cells that stored none are not judged."""
    from temarec.data.registry import load_dataset
    from temarec.features.build import tag_vocab_fingerprint

    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(tmp_path / "art"))
    cfg, cells = _cells(tmp_path)
    dom = np.repeat([0, 1], 20)
    ranks = {p: np.arange(1, 41, dtype=float) for p in cfg.protocols}
    for c in cells.values():
        _fake_run(c, ranks, dom)
    name = load_dataset("demo", demo_seed=cells["demo/pop/seed0"].run_config.data.demo_seed).name
    folder = tmp_path / "art" / "tags" / name / "keyphrase"
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text('{"tags": ["salty"]}')
    before = tag_vocab_fingerprint(folder)

    def store(cell: str, fp: str) -> None:
        f = cells[cell].dir / "metrics.json"
        f.write_text(json.dumps(json.loads(f.read_text()) | {"features": {"tags": {"fingerprint": fp}}}))

    store("demo/sasrec/seed0", before)
    store("demo/sasrec/seed1", before)
    assert all(s.state == "done" for s in plan(list(cells.values())))
    (folder / "vocab.json").write_text('{"tags": ["salty", "sweet"]}')  # re-tagged into the same folder
    store("demo/sasrec/seed1", tag_vocab_fingerprint(folder))
    st = {s.cell.name: s for s in plan(list(cells.values()))}
    assert (
        st["demo/sasrec/seed0"].state == "stale"
        and "tags: fingerprint " + before in st["demo/sasrec/seed0"].detail
    )
    assert st["demo/sasrec/seed1"].state == "done" and st["demo/pop/seed0"].state == "done"
    (folder / "vocab.json").unlink()  # the vocabulary is gone: the numbers are not reproducible from here
    st = {s.cell.name: s for s in plan(list(cells.values()))}
    assert st["demo/sasrec/seed1"].state == "stale" and "-> none" in st["demo/sasrec/seed1"].detail


def test_unknown_model_is_a_config_error(tmp_path):
    """A typo in a model name is refused on load, not skipped with exit status 0."""
    with pytest.raises(ValueError, match=r"unknown model 'sasrecc' \(did you mean 'sasrec'\?\)"):
        _cells(tmp_path, variants={"sasrecc": {"baseline": True}})
    with pytest.raises(ValueError, match=r"variants.x: unknown model 'nope'; choose one of c2dsr, gru4rec"):
        _cells(tmp_path, variants={"x": {"model": "nope", "baseline": True}})


# ---- report ----------------------------------------------------------------------------------------------
def _report_fixture(tmp_path: Path):
    """base (baseline) and two non-baselines, 2 seeds each; `mine` clearly better than `base`."""
    cfg, cells = _cells(
        tmp_path,
        variants={
            "base": {"model": "sasrec", "baseline": True},
            "mine": {"model": "gru4rec"},
            "mine-lite": {"extends": "mine", "set": {"model.dropout": 0.3}},
        },
        ablation_of={"mine": ["mine-lite"]},
    )
    rng = np.random.default_rng(0)
    n = 400
    dom = np.repeat([0, 1], n // 2)
    base = rng.integers(1, 60, size=n).astype(float)
    for seed in (0, 1):
        noise = rng.integers(0, 3, size=n)
        _fake_run(cells[f"demo/base/seed{seed}"], {p: base + noise for p in cfg.protocols}, dom)
        better = np.maximum(base - 8 + noise, 1)
        _fake_run(cells[f"demo/mine/seed{seed}"], {p: better for p in cfg.protocols}, dom)
        _fake_run(cells[f"demo/mine-lite/seed{seed}"], {p: base + 1 + noise for p in cfg.protocols}, dom)
    return cfg, cells


def test_report_tables_bold_best_and_significance(tmp_path, monkeypatch):
    import temarec.bench

    monkeypatch.setitem(sys.modules, "temarec.bench.figures", None)  # the figures module absent
    monkeypatch.delattr(temarec.bench, "figures", raising=False)  # (an earlier test may have imported it)
    cfg, cells = _report_fixture(tmp_path)
    statuses = plan(list(cells.values()))
    assert {s.state for s in statuses} == {"done"}
    jp, mp = write_report(cfg, "demo", statuses, label="test")
    assert jp == tmp_path / "out" / "demo.json" and mp == tmp_path / "out" / "demo.md"
    doc = json.loads(jp.read_text())
    full = doc["results"]["full"]
    assert full["variants"]["mine"]["seeds"] == [0, 1]
    assert full["best"]["all"]["NDCG@10"] == "mine" and full["best_baseline"]["all"]["NDCG@10"] == "base"
    sig = full["significance"]["mine"]["all"]["NDCG@10"]
    assert sig["baseline"] == "base" and sig["significant"] and sig["diff"] > 0 and sig["t_p"] < 1e-6
    assert "base" not in full["significance"]  # baselines are not tested against themselves
    lite = full["ablations"]["mine"]["mine-lite"]["all"]["MRR"]
    assert lite["delta"] < 0 and lite["delta_pct"] < 0
    assert 0 <= lite["t_p"] <= 1 and 0 <= lite["wilcoxon_p"] <= 1 and isinstance(lite["significant"], bool)
    assert "t_p" not in full["ablations"]["mine"]["mine"]["all"]["MRR"]  # no test of a variant against itself
    vs = full["vs_baselines"]  # the full variant against every baseline, not only the best one
    assert set(vs) == {"mine"} and set(vs["mine"]) == {"base"}
    assert vs["mine"]["base"]["all"]["NDCG@10"]["t_p"] == sig["t_p"]
    m = doc["runs"][0]
    assert (
        m["variant"] == "base"
        and m["epochs"] == 5
        and m["measured_by"] == "run"
        and m["peak_rss_mb"] == 321.0
        and m["code"] == "abcdef0"
    )
    assert {r["code"] for r in doc["runs"] if r["seed"] == 1} == {"abcdef0+"}  # made from a dirty tree
    assert {"temarec", "torch", "python", "numpy"} <= set(doc["versions"]) and doc["machine"]["cores"]
    md = mp.read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| mine |"))
    mean = np.mean(
        [
            json.loads((cells[f"demo/mine/seed{s}"].dir / "metrics.json").read_text())["test"]["all"][
                "NDCG@10"
            ]
            for s in (0, 1)
        ]
    )
    assert f"**{mean:.4f}" in row and "▲" in row
    base_row = next(ln for ln in md.splitlines() if ln.startswith("| base (baseline) |"))
    assert "**" not in base_row and "0,1" in base_row
    assert "## Results: full (test)" in md and "## Results: uni100 (test)" in md
    assert "**Paired tests, full**" in md and "W " in md and "*best baseline*" in md
    assert "**Ablations of mine, full**" in md and "%)" in md
    assert "## Runs" in md and "## Environment" in md and "uni100`: the target is ranked among 100" in md
    assert "| run | abcdef0 |" in md and "| run | abcdef0+ |" in md
    assert "figures not made" in md


def test_report_links_figures_and_breakdown(tmp_path, monkeypatch):
    cfg, cells = _report_fixture(tmp_path)
    calls = {}

    def make_figures(dataset, runs, out_dir, protocols, split=None, domains=None):
        calls.update(dataset=dataset, runs=runs, protocols=protocols, split=split, domains=domains)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{dataset}-metrics.png"
        path.write_bytes(b"png")
        return [path]

    def breakdown_table(runs, protocol, split):
        return {"history_length": {v: {"1-5": {"NDCG@10": 0.1, "n": 3}} for v in runs}}

    fake = types.ModuleType("temarec.bench.figures")
    fake.make_figures, fake.breakdown_table = make_figures, breakdown_table
    import temarec.bench

    monkeypatch.setitem(sys.modules, "temarec.bench.figures", fake)
    monkeypatch.setattr(temarec.bench, "figures", fake, raising=False)
    _, mp = write_report(cfg, "demo", plan(list(cells.values())), label="test")
    assert list(calls["runs"]) == ["base", "mine", "mine-lite"] and calls["protocols"] == ["full", "uni100"]
    assert calls["split"] is not None and calls["domains"] == DOMAINS
    assert [p.name for p in calls["runs"]["mine"]] == ["seed0", "seed1"]
    md = mp.read_text()
    assert "![demo-metrics.png](figures/demo-metrics.png)" in md
    assert "*history_length*" in md and "| mine | 0.1000 | 3 |" in md


# ---- end to end ------------------------------------------------------------------------------------------
def test_failed_cell_does_not_stop_the_grid_and_stale_cells_rerun(tmp_path):
    cfg = _small(
        tmp_path / "out",
        protocols=["uni100"],
        variants={
            "pop": {"baseline": True, "seeds": [0]},
            "broken": {"model": "pop", "seeds": [0], "set": {"data.split": "published"}},  # demo has none
        },
    )
    path = _yaml(tmp_path, cfg)
    res = runner.invoke(app, ["bench", str(path)])
    assert res.exit_code == 1, res.output
    assert "FAILED demo/broken/seed0" in res.output and "no published split" in res.output
    assert "done demo/pop/seed0" in res.output and "1 cell(s) failed" in res.output
    doc = json.loads((tmp_path / "out" / "demo.json").read_text())
    assert list(doc["results"]["uni100"]["variants"]) == ["pop"]
    assert doc["not_included"][0]["cell"] == "demo/broken/seed0"
    bench = json.loads((tmp_path / "out" / "demo" / "pop" / "seed0" / "bench.json").read_text())
    assert bench["returncode"] == 0 and 50 < bench["peak_rss_mb"] < 2000 and bench["wall_seconds"] > 0
    res = runner.invoke(app, ["bench", str(path), "--only-report"])
    assert res.exit_code == 0 and "wrote" in res.output and "FAILED" not in res.output
    # the grid changes: pop's folder is stale, skipped until --rerun-stale
    cfg["common"]["train.epochs"] = 2
    cfg["variants"].pop("broken")
    _yaml(tmp_path, cfg)
    res = runner.invoke(app, ["bench", str(path)])
    assert res.exit_code == 0 and "1 stale" in res.output and "train.epochs: 1 -> 2" in res.output
    assert "skipped (--rerun-stale reruns them)" in res.output
    res = runner.invoke(app, ["bench", str(path), "--rerun-stale"])
    assert res.exit_code == 0 and "done demo/pop/seed0" in res.output, res.output
    stored = json.loads((tmp_path / "out" / "demo" / "pop" / "seed0" / "config.json").read_text())
    assert stored["train"]["epochs"] == 2


def test_report_leaves_out_an_ablation_table_with_no_finished_ablation(tmp_path, monkeypatch):
    import temarec.bench

    monkeypatch.setitem(sys.modules, "temarec.bench.figures", None)
    monkeypatch.delattr(temarec.bench, "figures", raising=False)
    cfg, cells = _report_fixture(tmp_path)
    for seed in (0, 1):  # mine-lite never ran
        for f in cells[f"demo/mine-lite/seed{seed}"].dir.iterdir():
            f.unlink()
    statuses = plan(list(cells.values()))
    _, mp = write_report(cfg, "demo", statuses, label="test")
    md = mp.read_text()
    assert "| mine |" in md and "Ablations of mine" not in md and "mine-lite" not in md.split("## Runs")[0]


def test_quick_bench_end_to_end_then_resumes_as_done(tmp_path):
    """The packaged quick grid on the demo world (CI runs this), then a second run that skips every cell."""
    out = tmp_path / "quick"
    t0 = time.perf_counter()
    res = runner.invoke(app, ["bench", "quick", "--output", str(out)])
    first = time.perf_counter() - t0
    assert res.exit_code == 0, res.output
    assert "9 todo" in res.output and "[9/9]" in res.output
    doc = json.loads((out / "demo.json").read_text())
    md = (out / "demo.md").read_text()
    for p in ("full", "uni100"):
        assert list(doc["results"][p]["variants"]) == ["pop", "gru4rec", "sasrec", "tema", "tema-no-tags"]
        assert set(doc["results"][p]["significance"]) == {"tema", "tema-no-tags"}
        assert "tema-no-tags" in doc["results"][p]["ablations"]["tema"]
    assert len(doc["runs"]) == 9 and all(
        r["measured_by"] == "bench" and r["peak_rss_mb"] for r in doc["runs"]
    )
    trained = [r for r in doc["runs"] if r["variant"] != "pop"]
    assert all(0 < r["epochs_seconds"] for r in trained), doc["runs"]
    assert "# Benchmark: demo" in md and "**Ablations of tema, full**" in md
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("demo/*/seed*/metrics.json")}
    assert len(stamps) == 9
    res = runner.invoke(app, ["bench", "quick", "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "9 done" in res.output and "nothing to run" in res.output
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("demo/*/seed*/metrics.json")}
    print(f"quick bench: {first:.0f} s")


def test_report_names_runs_selected_under_the_first_validation_rule():
    from temarec.bench.report import _rule_note

    assert _rule_note({}) == [] and _rule_note({2: 6}) == []
    (line,) = _rule_note({1: 4, 2: 2})
    assert line.startswith("- 4 of 6 runs were selected under validation rule 1") and "test item" in line
