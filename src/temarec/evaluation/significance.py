"""Paired per-instance significance tests between models (SPEC: "several seeds, mean ± std, a paired test").

Each run stores per-instance test ranks (`ranks-<protocol>.npz`). For a model evaluated with several
seeds, the per-instance metric is averaged over seeds first, then two models are compared instance by
instance on the same test instances (the same users, targets and stored candidates): a paired t-test and a
Wilcoxon signed-rank test, per domain and overall.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy import stats

ALPHA = 0.05  # the level every report and `temarec compare` mark differences at


def significant(t: dict, alpha: float = ALPHA) -> bool:
    """The one rule for calling a difference significant: both paired tests (t-test and Wilcoxon) below
    `alpha`, and the Wilcoxon test leaning the same way as the mean difference (`wilcoxon_sign`)."""
    agree = t["wilcoxon_sign"] == np.sign(t["diff"])
    return bool(t["t_p"] < alpha and t["wilcoxon_p"] < alpha and agree)


def format_p(x: float) -> str:
    """A p-value as the reports print it (two significant digits below 0.001)."""
    return f"{x:.2g}" if x < 0.001 else f"{x:.3f}"


def instance_metric(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Per-instance value of `HR@k`, `NDCG@k` or `MRR` from ranks."""
    r = np.asarray(ranks, dtype=np.float64)
    name, _, k = metric.partition("@")
    if name == "HR":
        return (r <= int(k)).astype(np.float64)
    if name == "NDCG":
        return np.where(r <= int(k), 1.0 / np.log2(r + 1.0), 0.0)
    if name == "MRR":
        return 1.0 / r
    raise ValueError(f"unknown metric {metric!r}")


def load_runs(
    paths: list[Path], protocol: str, part: str = "test"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(ranks [n_seeds, n], users [n], domain [n])` of several runs of one model; instances must match."""
    ranks, users, domain = [], None, None
    for p in paths:
        f = Path(p) / f"ranks-{protocol}.npz"
        with np.load(f, allow_pickle=False) as z:
            u, d, r = z[f"{part}_users"], z[f"{part}_domain"], z[f"{part}_ranks"]
        if users is None:
            users, domain = u, d
        elif not (np.array_equal(u, users) and np.array_equal(d, domain)):
            raise ValueError(f"{f}: its {part} instances differ from {paths[0]}'s; runs are not comparable")
        ranks.append(r)
    if users is None:
        raise ValueError("no runs given")
    return np.stack(ranks), users, domain


def paired_test(a_ranks: np.ndarray, b_ranks: np.ndarray, metric: str = "NDCG@10") -> dict[str, float]:
    """Compare model A with B on the same instances; ranks `[n_seeds, n]` (seeds averaged per instance)."""
    a = instance_metric(a_ranks, metric).reshape(-1, a_ranks.shape[-1]).mean(0)
    b = instance_metric(b_ranks, metric).reshape(-1, b_ranks.shape[-1]).mean(0)
    diff = a - b
    out = {"metric": metric, "n": int(len(diff)), "mean_a": float(a.mean()), "mean_b": float(b.mean())}
    out["diff"] = float(diff.mean())
    if len(diff) < 2 or np.all(diff == 0):
        return out | {"t_p": 1.0, "wilcoxon_p": 1.0, "wilcoxon_sign": 0}
    out["wilcoxon_sign"] = wilcoxon_sign(diff)
    with warnings.catch_warnings():  # ties and exact-vs-normal notes from scipy are expected here
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        out["t_p"] = float(stats.ttest_rel(a, b).pvalue)
        out["wilcoxon_p"] = float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)
    return out


def wilcoxon_sign(diff: np.ndarray) -> int:
    """The side the Wilcoxon signed-rank test leans to: sign of (positive rank sum - negative rank sum).

    It can disagree with the sign of the mean difference. For MRR, most users' targets sit far down both
    lists, so many tiny differences there decide the rank sums while the few top-ranked targets decide
    the mean: a model can rank the target higher for 60% of the users and still have the lower MRR. A
    difference is called significant only where both tests agree on its direction (see
    `significant`).
    """
    nz = diff[diff != 0]
    if nz.size == 0:
        return 0
    r = stats.rankdata(np.abs(nz))
    return int(np.sign(r[nz > 0].sum() - r[nz < 0].sum()))


def compare_models(
    a_runs: list[Path], b_runs: list[Path], protocol: str, domains: tuple[str, str], metric: str = "NDCG@10"
) -> dict[str, dict[str, float]]:
    """Paired tests per domain name and `all` between two models' runs (e.g. seed folders)."""
    return compare_models_by_metric(a_runs, b_runs, protocol, domains, (metric,))[metric]


def compare_models_by_metric(
    a_runs: list[Path], b_runs: list[Path], protocol: str, domains: tuple[str, str], metrics: tuple[str, ...]
) -> dict[str, dict[str, dict[str, float]]]:
    """`{metric: {domain or "all": paired test}}`, reading each model's ranks once for every metric."""
    ra, users, dom = load_runs(a_runs, protocol)
    rb, ub, db = load_runs(b_runs, protocol)
    if not (np.array_equal(users, ub) and np.array_equal(dom, db)):
        raise ValueError("the two models were evaluated on different test instances")
    out: dict[str, dict[str, dict[str, float]]] = {}
    masks = dict(zip(domains, (dom == d for d in range(len(domains))), strict=True))
    for metric in metrics:
        out[metric] = {name: paired_test(ra[:, k], rb[:, k], metric) for name, k in masks.items()}
        out[metric]["all"] = paired_test(ra, rb, metric)
    return out
