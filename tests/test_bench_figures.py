"""Benchmark figures: the pure helpers numerically, and the PNGs from fake run folders and the demo split."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from temarec.bench import figures as fig
from temarec.evaluation.metrics import metrics_from_ranks
from temarec.evaluation.significance import instance_metric

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DOMAINS = ("Food", "Kitchen")


def _metrics(ranks: np.ndarray, dom: np.ndarray) -> dict:
    out = {name: metrics_from_ranks(ranks[dom == d]) for d, name in enumerate(DOMAINS)}
    return out | {"all": metrics_from_ranks(ranks)}


def _write_run(
    folder: Path,
    model: str,
    seed: int,
    users: np.ndarray,
    dom: np.ndarray,
    test_ranks: dict[str, np.ndarray],
    epochs: int | None = 6,
) -> Path:
    """A run folder as the trainer writes it: metrics json per protocol, ranks npz, epochs.jsonl."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i, (protocol, ranks) in enumerate(test_ranks.items()):
        valid = np.maximum(1.0, ranks + rng.integers(-3, 4, len(ranks)))
        doc = {
            "dataset": "fake",
            "model": model,
            "protocol": protocol,
            "seed": seed,
            "valid": _metrics(valid, dom),
            "test": _metrics(ranks, dom),
        }
        name = "metrics.json" if i == 0 else f"metrics-{protocol}.json"
        (folder / name).write_text(json.dumps(doc))
        np.savez(
            folder / f"ranks-{protocol}.npz",
            valid_ranks=valid,
            valid_users=users,
            valid_domain=dom,
            test_ranks=ranks,
            test_users=users,
            test_domain=dom,
        )
    if epochs:
        with (folder / "epochs.jsonl").open("w") as f:
            best = -1.0
            for e in range(1, epochs + 1):
                score = 0.01 * e - 0.004 * max(0, e - 4) + 0.001 * seed
                row = {
                    "epoch": e,
                    "loss": 5.0 / e,
                    "train_seconds": 1.0,
                    "valid_seconds": 0.5,
                    "valid_NDCG@10": score,
                    "best": score > best,
                    "valid": _metrics(np.full(len(users), 3.0), dom),
                }
                best = max(best, score)
                f.write(json.dumps(row) + "\n")
    return folder


def _fake_runs(tmp_path: Path, users: np.ndarray, dom: np.ndarray, n_items: int = 500) -> dict:
    """Two models x two seeds; 'better' ranks its targets higher than 'worse'."""
    runs: dict[str, list[Path]] = {}
    for model, scale in (("worse", 1.0), ("better", 0.3)):
        for seed in (0, 1):
            rng = np.random.default_rng(100 * seed + int(10 * scale))
            full = np.ceil(scale * rng.integers(1, n_items, len(users))).astype(float)
            uni = np.ceil(scale * rng.integers(1, 101, len(users))).astype(float)
            folder = tmp_path / model / f"seed{seed}"
            runs.setdefault(model, []).append(
                _write_run(folder, model, seed, users, dom, {"full": full, "uni999": uni})
            )
    return runs


def _assert_png(path: Path, min_bytes: int = 10_000) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > min_bytes


# ---- pure helpers ----------------------------------------------------------------------------------------
def test_hr_at_k_counts_ranks_within_cutoff():
    ranks = np.array([1, 2, 2, 5, 11, 100], dtype=float)
    np.testing.assert_allclose(fig.hr_at_k(ranks, [1, 2, 5, 10, 50, 100]), [1, 3, 4, 4, 5, 6] / np.float64(6))
    # the same as the evaluator's metrics
    for k in (1, 5, 10):
        assert fig.hr_at_k(ranks, [k])[0] == pytest.approx(metrics_from_ranks(ranks)[f"HR@{k}"])
    assert np.isnan(fig.hr_at_k(np.array([]), [1, 2])).all()


def test_bucketize_labels_counts_and_merging():
    values = np.array([0, 0, 1, 3, 5, 6, 20, 21, 150])
    b = fig.bucketize(values, (0, 5, 20, 100))
    assert b.labels == ["0", "1-5", "6-20", "21-100", ">100"]
    assert b.counts.tolist() == [2, 3, 2, 1, 1]
    assert b.index.tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 4]
    # buckets under min_count merge into their smaller neighbour
    m = fig.bucketize(values, (0, 5, 20, 100), min_count=2)
    assert m.labels == ["0", "1-5", "6-20", ">20"]
    assert m.counts.tolist() == [2, 3, 2, 2]
    # empty buckets vanish; the first bucket is labelled from the smallest value seen
    h = fig.bucketize(np.array([9, 10, 12, 15, 30, 49, 49]), fig.HISTORY_EDGES, min_count=1)
    assert h.labels == ["9-10", "11-15", "16-30", ">30"]
    assert h.counts.tolist() == [2, 2, 1, 2]


def test_median_buckets_and_bucket_means():
    lengths = np.array([2, 4, 6, 8, 10])
    b = fig.median_buckets(lengths)
    assert b.labels == ["short ≤6", "long >6"]
    assert b.counts.tolist() == [3, 2]
    vals = np.array([1.0, 0.0, 0.5, 0.25, 0.75])
    np.testing.assert_allclose(fig.bucket_means(vals, b), [0.5, 0.5])
    mask = np.array([True, True, False, False, True])
    np.testing.assert_allclose(fig.bucket_means(vals, b, mask), [0.5, 0.75])
    empty = fig.bucket_means(vals, b, np.array([True, False, False, False, False]))
    assert empty[0] == 1.0 and np.isnan(empty[1])


def test_align_ranks_by_user():
    split_users = np.array([3, 1, 7, 5])
    users = np.array([1, 3, 5, 7])
    ranks = np.array([10.0, 30.0, 50.0, 70.0])
    np.testing.assert_array_equal(fig.align_ranks(ranks, users, split_users), [30, 10, 70, 50])
    with pytest.raises(ValueError):
        fig.align_ranks(ranks, np.array([1, 3, 5, 8]), split_users)


# ---- figures ---------------------------------------------------------------------------------------------
def test_make_figures_without_split(tmp_path):
    n = 300
    rng = np.random.default_rng(0)
    users = np.arange(n)
    dom = (rng.random(n) < 0.4).astype(np.int8)
    runs = _fake_runs(tmp_path / "runs", users, dom)
    out = tmp_path / "figs"
    paths = fig.make_figures("fake", runs, out, ["full", "uni999"])
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "fake-metrics-full.png",
            "fake-metrics-uni999.png",
            "fake-valid-curves-full.png",
            "fake-hr-at-k-full.png",
            "fake-hr-at-k-uni999.png",
        ]
    )
    for p in paths:
        assert p.parent == out
        _assert_png(p)
    # a model without epochs.jsonl (like pop) still gets its bars, just no curve
    for d in runs["worse"]:
        (d / "epochs.jsonl").unlink()
    assert len(fig.make_figures("fake", runs, tmp_path / "figs2", ["full"])) == 3
    for d in runs["better"]:
        (d / "epochs.jsonl").unlink()
    only = fig.make_figures("fake", runs, tmp_path / "figs3", ["full"])
    assert sorted(p.name for p in only) == ["fake-hr-at-k-full.png", "fake-metrics-full.png"]


def test_breakdowns_on_the_demo_split(tmp_path):
    from temarec.data.registry import load_dataset
    from temarec.data.splits import get_split

    split = get_split(load_dataset("demo"), "auto")
    test = split.test
    n = len(test)
    # popularity is counted in the training sequences only
    counts = Counter(split.train.values.tolist())
    pop = fig.item_popularity(split)[test.target]
    assert pop.tolist() == [counts.get(int(t), 0) for t in test.target]
    feats = fig.test_features(split)
    np.testing.assert_array_equal(feats["history_length"], [len(h) for h in test.history.tolist()])

    # fake runs stored in a shuffled user order: the figures must realign them to the split
    rng = np.random.default_rng(1)
    order = rng.permutation(n)
    runs: dict[str, list[Path]] = {}
    split_order_ranks: dict[str, list[np.ndarray]] = {}
    for model, scale in (("worse", 1.0), ("better", 0.2)):
        for seed in (0, 1):
            ranks = np.ceil(scale * rng.integers(1, 60, n)).astype(float)
            split_order_ranks.setdefault(model, []).append(ranks)
            folder = tmp_path / "runs" / model / f"seed{seed}"
            stored = {"full": ranks[order], "uni999": np.minimum(ranks, 1000)[order]}
            run = _write_run(folder, model, seed, test.users[order], test.target_domain[order], stored)
            runs.setdefault(model, []).append(run)

    table = fig.breakdown_table(runs, "full", split)
    assert set(table) == {"history_length", "history_median", "item_popularity"}
    hist_b = fig.history_buckets(feats["history_length"])
    pop_b = fig.popularity_buckets(feats["item_popularity"])
    for kind, buckets in (("history_length", hist_b), ("item_popularity", pop_b)):
        for model in ("worse", "better"):
            rows = table[kind][model]
            assert list(rows) == buckets.labels
            assert sum(r["n"] for r in rows.values()) == n
            for b, label in enumerate(buckets.labels):
                sel = buckets.index == b
                want = np.mean([instance_metric(r[sel], "NDCG@10").mean() for r in split_order_ranks[model]])
                assert rows[label]["NDCG@10"] == pytest.approx(want)
                assert rows[label]["n"] == int(sel.sum())
                want_hr = np.mean([(r[sel] <= 10).mean() for r in split_order_ranks[model]])
                assert rows[label]["HR@10"] == pytest.approx(want_hr)
    assert list(table["history_median"]["better"])[0].startswith("short")
    # 'better' ranks targets higher everywhere
    for label, row in table["history_median"]["better"].items():
        assert row["NDCG@10"] > table["history_median"]["worse"][label]["NDCG@10"]
    per_domain = fig.breakdown_table(runs, "full", split, by_domain=True)
    assert {"item_popularity/Food", "item_popularity/Kitchen"} <= set(per_domain)
    dom_n = sum(r["n"] for r in per_domain["item_popularity/Food"]["better"].values())
    assert dom_n == int((test.target_domain == 0).sum())

    tests = fig.bucket_tests(runs, "full", split, "better", "worse")
    assert list(tests) == pop_b.labels
    for b, (label, t) in enumerate(tests.items()):
        sel = pop_b.index == b
        assert t["n"] == int(sel.sum())
        assert t["mean_a"] == pytest.approx(table["item_popularity"]["better"][label]["NDCG@10"])
        assert t["mean_b"] == pytest.approx(table["item_popularity"]["worse"][label]["NDCG@10"])
        assert 0.0 <= t["wilcoxon_p"] <= 1.0
    with pytest.raises(ValueError, match="no full ranks for absent"):
        fig.bucket_tests(runs, "full", split, "better", "absent")
    with pytest.raises(ValueError, match="unknown breakdown kind 'colour'"):
        fig.bucket_tests(runs, "full", split, "better", "worse", kind="colour")

    paths = fig.make_figures("demo", runs, tmp_path / "figs", ["full"], split=split, domains=DOMAINS)
    names = {p.name for p in paths}
    assert {"demo-by-history-length-full.png", "demo-by-item-popularity-full.png"} <= names
    for p in paths:
        _assert_png(p)


@pytest.mark.parametrize("n_models", [3, 12])
def test_breakdown_bars_stay_readable_with_many_models(n_models):
    """A few models: values written on the bars; many: no overlapping labels, a symlog axis instead."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [f"m{i}" for i in range(n_models)]
    series = {m: (np.array([0.001, 0.02, 0.6]), np.zeros(3)) for m in models}
    f, ax = plt.subplots()
    try:
        fig._grouped_bars(ax, ["rare", "mid", "popular"], series, fig._colors(models), values=True)
        labels = [t.get_text() for t in ax.texts]
        if n_models <= fig.MAX_LABELLED_SERIES:
            assert ax.get_yscale() == "linear" and labels.count("0.600") == n_models
        else:
            assert ax.get_yscale() == "symlog" and not labels
            assert ax.get_ylim()[0] == 0
    finally:
        plt.close(f)


@pytest.mark.parametrize("n_models", [3, 12])
def test_valid_curves_legend_leaves_the_curves_visible(tmp_path, monkeypatch, n_models):
    """A few models: legend inside the score panel; many: below the figure, not over the curves."""
    users, dom = np.arange(20), np.arange(20) % 2
    runs = {
        f"m{i}": [_write_run(tmp_path / f"m{i}" / "seed0", f"m{i}", 0, users, dom, {"full": users + 1.0})]
        for i in range(n_models)
    }
    saved = []
    monkeypatch.setattr(fig, "_save", lambda f, path: saved.append(f) or path)
    fig.figure_valid_curves("fake", runs, "full", tmp_path / "curves.png")
    (figure,) = saved
    score_axes = figure.axes[0]
    if n_models <= fig.MAX_LABELLED_SERIES:
        assert score_axes.get_legend() is not None and not figure.legends
    else:
        assert score_axes.get_legend() is None and len(figure.legends) == 1
        labels = [t.get_text() for t in figure.legends[0].get_texts()]
        assert "m11 (mean of 1 seed)" in labels and "best epoch" in labels
