"""Paired tests: identical models are not different, a clearly better model is."""

from __future__ import annotations

import numpy as np
import pytest

from temarec.evaluation.metrics import metrics_from_ranks
from temarec.evaluation.significance import (
    compare_models,
    instance_metric,
    paired_test,
    significant,
    wilcoxon_sign,
)


def test_instance_metrics_match_hand_values():
    r = np.array([1.0, 2.0, 11.0])
    np.testing.assert_allclose(instance_metric(r, "HR@10"), [1, 1, 0])
    np.testing.assert_allclose(instance_metric(r, "NDCG@10"), [1.0, 1 / np.log2(3), 0.0])
    np.testing.assert_allclose(instance_metric(r, "MRR"), [1.0, 0.5, 1 / 11])
    with pytest.raises(ValueError):
        instance_metric(r, "AUC")


def test_instance_metric_means_are_the_evaluators_metrics():
    """The per-instance values the tests pair up average to the numbers the evaluator reports."""
    ranks = np.array([1, 3, 10, 11, 500], dtype=float)
    got = metrics_from_ranks(ranks)
    for m in ("HR@10", "NDCG@10", "MRR"):
        assert instance_metric(ranks, m).mean() == pytest.approx(got[m])


def test_paired_test_detects_a_real_difference_only():
    rng = np.random.default_rng(0)
    base = rng.integers(1, 60, size=(3, 2000)).astype(float)
    same = paired_test(base, base.copy())
    assert same["diff"] == 0 and same["t_p"] == 1.0
    better = np.maximum(base - 5, 1)
    res = paired_test(better, base, "NDCG@10")
    assert res["diff"] > 0 and res["t_p"] < 1e-6 and res["wilcoxon_p"] < 1e-6
    noise = paired_test(rng.permutation(base.T).T, base, "NDCG@10")
    assert noise["t_p"] > 0.001


def _write(folder, ranks, users, dom):
    folder.mkdir(parents=True)
    np.savez(folder / "ranks-full.npz", test_ranks=ranks, test_users=users, test_domain=dom)


def test_compare_models_per_domain(tmp_path):
    users, dom = np.arange(100), np.repeat([0, 1], 50)
    good = np.where(dom == 0, 1.0, 30.0)
    bad = np.full(100, 30.0)
    for s in range(2):
        _write(tmp_path / f"a{s}", good, users, dom)
        _write(tmp_path / f"b{s}", bad, users, dom)
    res = compare_models(
        [tmp_path / "a0", tmp_path / "a1"], [tmp_path / "b0", tmp_path / "b1"], "full", ("Food", "Kitchen")
    )
    assert res["Food"]["diff"] == pytest.approx(1.0) and res["Food"]["wilcoxon_p"] < 1e-6
    assert res["Kitchen"]["diff"] == 0 and res["Kitchen"]["t_p"] == 1.0
    _write(tmp_path / "c0", good, users[::-1].copy(), dom)
    with pytest.raises(ValueError, match="different test instances"):
        compare_models([tmp_path / "c0"], [tmp_path / "b0"], "full", ("Food", "Kitchen"))


def test_wilcoxon_sign_can_disagree_with_the_mean():
    """MRR: B ranks the target a little higher for most users, A far higher for a few (the top ranks)."""
    a = np.array([1.0] * 20 + [600.0] * 180)  # A: rank 1 for 20 users, 600 for the rest
    b = np.array([5.0] * 20 + [500.0] * 180)  # B: rank 5 for those 20, 500 for the rest
    res = paired_test(a[None], b[None], "MRR")
    assert res["diff"] > 0  # A's MRR is higher (the top ranks carry the mean)
    assert res["wilcoxon_sign"] == -1 and res["wilcoxon_p"] < 1e-6  # but B is ahead for 90% of users
    assert not significant(res | {"t_p": 0.0})  # both p-values small, directions opposite: no mark
    assert significant(res | {"t_p": 0.0, "wilcoxon_sign": 1})
    assert wilcoxon_sign(np.array([0.0, 0.0])) == 0
    assert wilcoxon_sign(np.array([0.5, -0.1, 0.2])) == 1
