"""`temarec compare`: paired tests between two groups of run folders, and what it refuses to pair."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from temarec.cli import app
from temarec.config import RunConfig
from temarec.evaluation.compare import compare_runs, markdown, metrics_doc, verdict

runner = CliRunner()
USERS, DOM = np.arange(400), np.repeat([0, 1], 200)


def _run(folder, ranks, seed=0, protocol="full", **doc):
    """A finished run folder as `temarec train` leaves it (the parts a comparison reads)."""
    folder.mkdir(parents=True)
    meta = {
        "dataset": "toy",
        "model": folder.parent.name,
        "split": "loo",
        "protocol": protocol,
        "seed": seed,
        "candidate_seed": 2025,
        "exclude_history": True,
        "ties": "pessimistic",
        "test": {"Food": {}, "Kitchen": {}, "all": {}},
    } | doc
    cfg = RunConfig.model_validate({"data": {"dataset": "toy"}, "eval": {"protocols": [protocol]}})
    (folder / "config.json").write_text(cfg.model_dump_json())
    (folder / "metrics.json").write_text(json.dumps(meta))
    np.savez(folder / f"ranks-{protocol}.npz", test_ranks=ranks, test_users=USERS, test_domain=DOM)
    return folder


def _groups(tmp_path):
    rng = np.random.default_rng(0)
    a, b = [], []
    for s in range(3):
        base = rng.integers(1, 80, size=400).astype(float)
        # A ranks Food targets much higher than B; Kitchen is the same model up to noise
        a.append(_run(tmp_path / "good" / f"seed{s}", np.where(DOM == 0, np.maximum(base - 30, 1), base), s))
        b.append(_run(tmp_path / "base" / f"seed{s}", base, s))
    return a, b


def test_compare_finds_the_better_group_per_domain(tmp_path):
    a, b = _groups(tmp_path)
    res = compare_runs(a, b, ["full"])
    food, kitchen = res["protocols"]["full"]["Food"], res["protocols"]["full"]["Kitchen"]
    for m in ("HR@10", "NDCG@10", "MRR"):
        assert food[m]["diff"] > 0 and food[m]["verdict"] == "A"
        assert kitchen[m]["diff"] == 0 and kitchen[m]["verdict"] == "n.s."
    swapped = compare_runs(b, a, ["full"])
    assert swapped["protocols"]["full"]["Food"]["NDCG@10"]["verdict"] == "B"
    md = markdown(res, "tags", "no tags")
    assert "| Food | NDCG@10 |" in md and "tags better" in md and "good/seed0" in md


def test_compare_warns_of_a_group_mixing_models_or_repeating_a_seed(tmp_path):
    a, b = _groups(tmp_path)
    assert compare_runs(a, b, ["full"])["warnings"] == []
    mixed = compare_runs([a[0], b[1]], [b[2]], ["full"])
    assert mixed["warnings"] == ["group A averages runs of several models (base, good)"]
    assert markdown(mixed).startswith("> warning: group A averages runs of several models")
    copy = _run(tmp_path / "good" / "copy-of-seed0", np.ones(400), seed=0)
    twice = compare_runs([a[0], copy], b, ["full"])
    assert len(twice["warnings"]) == 1 and "good/seed0 twice" in twice["warnings"][0]
    assert compare_runs(a, b, ["Full"])["protocols"].keys() == {"full"}  # spelled as train accepts it
    with pytest.raises(ValueError, match="group A names the same run folder twice"):
        compare_runs([a[0], a[1], a[0]], b, ["full"])


def test_verdict_needs_both_tests_and_the_same_direction():
    t = {"diff": 0.01, "t_p": 0.001, "wilcoxon_p": 0.001, "wilcoxon_sign": 1}
    assert verdict(t) == "A"
    assert verdict(t | {"wilcoxon_p": 0.3}) == "n.s."
    assert verdict(t | {"wilcoxon_sign": -1}) == "n.s."
    assert verdict(t | {"diff": -0.01, "wilcoxon_sign": -1}) == "B"


def test_compare_refuses_runs_ranked_differently(tmp_path):
    a, b = _groups(tmp_path)
    other = _run(tmp_path / "drawn" / "seed0", np.ones(400), candidate_seed=7)
    compare_runs(a, [other], ["full"])  # full ranking draws no candidates: the seed does not matter
    u1 = _run(tmp_path / "u1" / "seed0", np.ones(400), protocol="uni99")
    u7 = _run(tmp_path / "u7" / "seed0", np.ones(400), protocol="uni99", candidate_seed=7)
    with pytest.raises(ValueError, match="field 'candidate_seed' is 2025 in .* but 7 in .*u7"):
        compare_runs([u1], [u7], ["uni99"])
    # another version of the data (a demo of another seed, an edited catalogue) is named as such
    fa = _run(tmp_path / "fa" / "seed0", np.ones(400), data_fingerprint="abc")
    fb = _run(tmp_path / "fb" / "seed0", np.ones(400), data_fingerprint="def")
    with pytest.raises(ValueError, match="field 'data_fingerprint' is 'abc'"):
        compare_runs([fa], [fb], ["full"])
    compare_runs([fa], b, ["full"])  # runs that did not record it are not refused for it
    with pytest.raises(ValueError, match="no metrics for protocol 'uni999'.*temarec evaluate"):
        compare_runs(a, b, ["uni999"])
    (b[0] / "metrics.json").rename(b[0] / "moved.json")  # an unfinished run: evaluate would refuse it
    with pytest.raises(ValueError, match="no metrics.json, so its training has not finished"):
        compare_runs(a, b, ["full"])
    (b[0] / "moved.json").rename(b[0] / "metrics.json")
    with pytest.raises(ValueError, match="both groups"):
        compare_runs(a, [a[0]], ["full"])
    (a[1] / "ranks-full.npz").unlink()
    with pytest.raises(ValueError, match="no ranks-full.npz"):
        metrics_doc(a[1], "full")
    (a[2] / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match="metrics.json: not readable as JSON"):
        metrics_doc(a[2], "full")


def test_cli_compare_expands_globs_and_writes_json(tmp_path):
    _groups(tmp_path)
    out = tmp_path / "cmp" / "result.json"
    res = runner.invoke(
        app,
        [
            "compare",
            "--a", str(tmp_path / "good" / "seed*"),
            "--b", str(tmp_path / "base" / "seed*"),
            "--name-a", "tags", "--name-b", "none",
            "--output", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "(3 runs)" in res.output and "tags better" in res.output
    from temarec.evaluation.compare import _runs

    assert (_runs(1), _runs(2)) == ("1 run", "2 runs")
    assert "wrote" in res.stderr and "wrote" not in res.stdout  # stdout stays the table, for `> file.md`
    doc = json.loads(out.read_text())
    assert doc["name_a"] == "tags" and len(doc["a"]) == 3
    assert doc["protocols"]["full"]["Food"]["MRR"]["verdict"] == "A"
    bad = runner.invoke(app, ["compare", "--a", str(tmp_path / "nothing*"), "--b", str(tmp_path / "base")])
    assert bad.exit_code == 2 and "matches no folder" in bad.output
