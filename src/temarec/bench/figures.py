"""Figures of a benchmark's run folders, and the per-bucket numbers behind the breakdown figures.

Every number is computed from what a run folder stores (`metrics*.json`, `ranks-<protocol>.npz`,
`epochs.jsonl`), so the figures can be rebuilt without a model. The two breakdown figures (by user history
length and by target item popularity) also need the split, to know each test instance's history and target.

Matplotlib is used through `matplotlib.figure.Figure` + the Agg canvas, never `pyplot`: no global
backend switch and no figure registry, so this is safe in a report process and in tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from temarec.bench.report import load_epochs
from temarec.evaluation.significance import instance_metric, paired_test

PANEL_METRICS = ("HR@10", "NDCG@10", "MRR")
HR_K_MAX = 50
# Upper bounds (inclusive) of the candidate buckets; buckets with too few instances are merged away.
HISTORY_EDGES = (5, 10, 15, 20, 30, 50, 100, 200, 500)
POPULARITY_EDGES = (0, 5, 20, 100, 500)
BREAKDOWN_METRICS = ("NDCG@10", "HR@10")
DPI = 120
STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 13,
}
UNITS = {
    "HR@10": "HR@10 (share of test instances)",
    "NDCG@10": "NDCG@10 (mean over test instances)",
    "MRR": "MRR (mean reciprocal rank)",
}


# ---- pure helpers -------------------------------------------------------------------------------------
def hr_at_k(ranks: np.ndarray, ks: Sequence[int] | np.ndarray) -> np.ndarray:
    """HR@k for every k at once: the share of instances whose rank is <= k (NaN when there are none)."""
    ranks = np.sort(np.asarray(ranks, dtype=np.float64))
    ks = np.asarray(ks, dtype=np.float64)
    if len(ranks) == 0:
        return np.full(ks.shape, np.nan)
    return np.searchsorted(ranks, ks, side="right") / len(ranks)


@dataclass(frozen=True)
class Buckets:
    """A partition of instances: `index[i]` is the bucket of instance i, `labels[b]` its text."""

    labels: list[str]
    index: np.ndarray  # int64 [n]
    counts: np.ndarray  # int64 [n_buckets]

    def __len__(self) -> int:
        return len(self.labels)


def bucketize(values: np.ndarray, edges: Sequence[int], min_count: int = 0) -> Buckets:
    """Integer values into buckets `<=e0, e0+1..e1, ..., >e_last`, adapted to the data.

    Buckets with fewer than `min_count` instances (empty ones included) are merged with their smaller
    neighbour, smallest first, so a fixed edge list works for datasets of any size. The first bucket is
    labelled from the smallest value observed (it has no lower edge), the last as `>e_last`.
    """
    values = np.asarray(values, dtype=np.int64)
    edges = sorted({int(e) for e in edges})
    while True:
        index = np.searchsorted(np.asarray(edges, dtype=np.int64), values, side="left")
        counts = np.bincount(index, minlength=len(edges) + 1)
        small = np.flatnonzero(counts < min_count)
        if not edges or not len(small):
            break
        i = int(small[np.argmin(counts[small])])
        if i == 0:
            drop = 0
        elif i == len(edges):
            drop = i - 1
        else:
            drop = i if counts[i + 1] <= counts[i - 1] else i - 1
        del edges[drop]
    lo_seen = int(values.min()) if len(values) else 0
    labels = []
    for b in range(len(edges) + 1):
        if b == len(edges):
            labels.append(f">{edges[-1]}" if edges else f"≥{lo_seen}")
            continue
        hi = edges[b]
        lo = min(lo_seen, hi) if b == 0 else edges[b - 1] + 1
        labels.append(str(hi) if lo == hi else f"{lo}-{hi}")
    return Buckets(labels, index.astype(np.int64), counts.astype(np.int64))


def median_buckets(values: np.ndarray) -> Buckets:
    """Two buckets: short (<= median) and long (> median)."""
    values = np.asarray(values, dtype=np.int64)
    med = int(np.floor(np.median(values))) if len(values) else 0
    index = (values > med).astype(np.int64)
    return Buckets([f"short ≤{med}", f"long >{med}"], index, np.bincount(index, minlength=2))


def _min_count(n: int) -> int:
    return max(10, int(np.ceil(0.01 * n)))


def history_buckets(lengths: np.ndarray) -> Buckets:
    """Fine buckets of history length (1-5, 6-10, 11-15, 16-20, 21-30, 31-50, >50, ...), merged if small."""
    return bucketize(lengths, HISTORY_EDGES, _min_count(len(lengths)))


def popularity_buckets(popularity: np.ndarray) -> Buckets:
    """Buckets of target popularity: 0 (cold), 1-5, 6-20, 21-100, 101-500, >500, merged where too small."""
    return bucketize(popularity, POPULARITY_EDGES, _min_count(len(popularity)))


def bucket_means(values: np.ndarray, buckets: Buckets, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean of `values` in every bucket (NaN where a bucket is empty), restricted to `mask`."""
    idx, v = buckets.index, np.asarray(values, dtype=np.float64)
    if mask is not None:
        idx, v = idx[mask], v[mask]
    sums = np.bincount(idx, weights=v, minlength=len(buckets))
    counts = np.bincount(idx, minlength=len(buckets))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def bucket_counts(buckets: Buckets, mask: np.ndarray | None = None) -> np.ndarray:
    idx = buckets.index if mask is None else buckets.index[mask]
    return np.bincount(idx, minlength=len(buckets))


def item_popularity(split: Any) -> np.ndarray:
    """Occurrences of every global item id in the training sequences only (index = item id)."""
    n = 1 + int(
        max(
            split.train.values.max(initial=0),
            split.test.target.max(initial=0),
            split.valid.target.max(initial=0),
        )
    )
    return np.bincount(split.train.values, minlength=n)


def test_features(split: Any) -> dict[str, np.ndarray]:
    """Per test instance (split order): history length before the target, and target popularity."""
    return {
        "history_length": split.test.history.lengths.astype(np.int64),
        "item_popularity": item_popularity(split)[split.test.target].astype(np.int64),
    }


def align_ranks(ranks: np.ndarray, users: np.ndarray, split_users: np.ndarray) -> np.ndarray:
    """Ranks reordered to the split's test order (they are stored in EvalSet order, keyed by user)."""
    ranks, users, split_users = np.asarray(ranks), np.asarray(users), np.asarray(split_users)
    if len(users) == len(split_users) and np.array_equal(users, split_users):
        return ranks.astype(np.float64)
    order = np.argsort(users, kind="stable")
    if len(np.unique(users)) != len(users) or len(users) != len(split_users):
        raise ValueError("the ranks file does not match the split's test instances (users differ)")
    pos = np.searchsorted(users[order], split_users)
    pos = np.minimum(pos, len(users) - 1)
    if not np.array_equal(users[order][pos], split_users):
        raise ValueError("the ranks file does not match the split's test instances (users differ)")
    return ranks[order][pos].astype(np.float64)


# ---- run folders --------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_metrics(run_dir: Path, protocol: str) -> dict | None:
    """The metrics document of one protocol: `metrics-<p>.json`, or `metrics.json` when it is that one."""
    run_dir = Path(run_dir)
    doc = _read_json(run_dir / f"metrics-{protocol}.json")
    if doc is not None:
        return doc
    doc = _read_json(run_dir / "metrics.json")
    if doc is not None and doc.get("protocol", protocol) == protocol:
        return doc
    return None


def load_ranks(run_dir: Path, protocol: str) -> dict[str, np.ndarray] | None:
    path = Path(run_dir) / f"ranks-{protocol}.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _domain_names(runs: dict[str, list[Path]], protocols: Sequence[str]) -> tuple[str, str]:
    for p in protocols:
        for dirs in runs.values():
            for d in dirs:
                doc = load_metrics(d, p)
                if doc and "test" in doc:
                    names = [k for k in doc["test"] if k != "all"]
                    if len(names) == 2:
                        return names[0], names[1]
    return "domain A", "domain B"


def _selection_protocol(runs: dict[str, list[Path]], default: str) -> str:
    for dirs in runs.values():
        for d in dirs:
            doc = _read_json(Path(d) / "metrics.json")
            if doc and doc.get("protocol"):
                return str(doc["protocol"])
    return default


def _colors(models: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    # tab10 repeats after ten variants (the paper grid has twelve), so two bars would share a colour:
    # tab20's ten dark shades first (tab10's hues), then its light ones, all distinct
    cmap = colormaps["tab20"]
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return {m: cmap(order[i % 20]) for i, m in enumerate(models)}


def _new_figure(nrows: int, ncols: int, size: tuple[float, float], **kw: Any) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


MAX_LABELLED_SERIES = 6  # more bars per group and their value labels overlap


def _grouped_bars(
    ax: Any,
    groups: list[str],
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    colors: dict[str, Any],
    values: bool = False,
) -> None:
    """One group of bars per x position, one bar per model, error bar = std over seeds.

    `values` makes small buckets readable next to large ones on a shared axis: with a few models each bar's
    height is written above it; with more (the labels would overlap) the axis turns symmetric-log instead
    (linear below 0.01), and the exact numbers are in the report's breakdown table.
    """
    n = max(len(series), 1)
    labelled = values and n <= MAX_LABELLED_SERIES
    width = 0.8 / n
    x = np.arange(len(groups))
    for i, (m, (mean, std)) in enumerate(series.items()):
        bars = ax.bar(
            x + (i - (n - 1) / 2) * width,
            mean,
            width,
            yerr=std,
            capsize=3,
            color=colors[m],
            label=m,
            error_kw={"elinewidth": 1},
        )
        if labelled:
            labels = ["" if not np.isfinite(v) else f"{v:.3f}" for v in mean]
            ax.bar_label(bars, labels, rotation=90, fontsize=7.5, padding=3)
    if labelled:
        ax.margins(y=0.18)
    elif values:
        ax.set_yscale("symlog", linthresh=0.01, linscale=0.5)
        ax.set_ylim(bottom=0)
    ax.set_xticks(x, groups)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _legend(fig: Figure, axes: np.ndarray, title: str | None = None, ncol: int = 6) -> None:
    """The first panel's legend, once, below the figure (where it hides no data)."""
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        n = min(len(labels), ncol)
        fig.legend(handles, labels, loc="outside lower center", ncol=n, frameon=False, title=title)


# ---- figure 1: per-domain metric bars -------------------------------------------------------------------
def figure_metrics(
    dataset: str, runs: dict[str, list[Path]], protocol: str, domains: Sequence[str], out: Path
) -> Path | None:
    """Test HR@10 / NDCG@10 / MRR per domain and overall, mean ± std over seeds."""
    found = _domain_names(runs, [protocol])
    # the names stored in metrics*.json win when the caller's names are not its keys
    groups = [*(domains if found == ("domain A", "domain B") or set(domains) == set(found) else found), "all"]
    colors = _colors(list(runs))
    stats: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {m: {} for m in PANEL_METRICS}
    n_seeds: dict[str, int] = {}
    for model, dirs in runs.items():
        docs = [doc for d in dirs if (doc := load_metrics(d, protocol)) and "test" in doc]
        if not docs:
            continue
        n_seeds[model] = len(docs)
        for metric in PANEL_METRICS:
            vals = np.array(
                [[doc["test"].get(g, {}).get(metric, np.nan) for g in groups] for doc in docs], dtype=float
            )
            label = f"{model} ({len(docs)} seed{'s' if len(docs) > 1 else ''})"
            colors.setdefault(label, colors[model])
            stats[metric][label] = (np.nanmean(vals, axis=0), np.nanstd(vals, axis=0))
    if not n_seeds:
        return None
    fig, axes = _new_figure(1, len(PANEL_METRICS), (5.2 * len(PANEL_METRICS), 5.0))
    for ax, metric in zip(axes[0], PANEL_METRICS, strict=True):
        _grouped_bars(ax, groups, stats[metric], colors)
        ax.set_title(f"test {metric}")
        ax.set_ylabel(UNITS[metric])
        ax.set_xlabel("target domain")
    fig.suptitle(f"{dataset}: test metrics per domain, protocol {protocol} (mean ± std over seeds)")
    _legend(fig, axes)
    return _save(fig, out)


# ---- figure 2: validation curves ----------------------------------------------------------------------
def _score_key(curves: dict[str, list[list[dict]]]) -> str:
    """The selection score's key: `valid_<metric>` (not `valid_seconds`, a timing)."""
    keys = [k for c in curves.values() for rows in c for k in rows[0]]
    metric_keys = [
        k for k in keys if k.startswith("valid_") and ("@" in k or k.removeprefix("valid_") in ("MRR", "AUC"))
    ]
    if metric_keys:
        return metric_keys[0]
    other = [k for k in keys if k.startswith("valid_") and "second" not in k]
    return other[0] if other else "valid_NDCG@10"


def figure_valid_curves(dataset: str, runs: dict[str, list[Path]], protocol: str, out: Path) -> Path | None:
    """Validation selection score and training loss per epoch; stars mark each seed's best epoch."""
    colors = _colors(list(runs))
    curves = {m: [e for d in dirs if (e := load_epochs(d))] for m, dirs in runs.items()}
    curves = {m: c for m, c in curves.items() if c}
    if not curves:
        return None
    score_key = _score_key(curves)
    fig, axes = _new_figure(1, 2, (14.0, 5.2))
    ax_s, ax_l = axes[0]
    for model, seeds in curves.items():
        col = colors[model]
        for key, ax in ((score_key, ax_s), ("loss", ax_l)):
            series = [
                (
                    np.array([r["epoch"] for r in rows if key in r], dtype=float),
                    np.array([r[key] for r in rows if key in r], dtype=float),
                )
                for rows in seeds
            ]
            for ep, y in series:
                ax.plot(ep, y, color=col, lw=0.9, alpha=0.35)
            n_common = min(len(y) for _, y in series)
            if n_common:
                mean = np.mean([y[:n_common] for _, y in series], axis=0)
                label = f"{model} (mean of {len(series)} seed{'s' if len(series) > 1 else ''})"
                ax.plot(series[0][0][:n_common], mean, color=col, lw=2.2, label=label)
        for rows in seeds:
            best = [r for r in rows if r.get("best")]
            if best:
                b = best[-1]
                ax_s.plot(b["epoch"], b[score_key], marker="*", ms=13, color=col, mec="black", mew=0.6)
    ax_s.plot([], [], ls="none", marker="*", ms=13, color="grey", mec="black", mew=0.6, label="best epoch")
    ax_s.set_title(f"validation {score_key.removeprefix('valid_')} (mean over the two domains)")
    ax_s.set_ylabel(f"{score_key.removeprefix('valid_')}, mean of domains")
    ax_l.set_title("training loss")
    ax_l.set_ylabel("loss per training example (model's own objective)")
    for ax in (ax_s, ax_l):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    missing = [m for m in runs if m not in curves]
    title = f"no epochs.jsonl: {', '.join(missing)}" if missing else None
    if len(curves) > MAX_LABELLED_SERIES:  # inside the axes a long legend hides the curves: put it below
        _legend(fig, axes, title=title, ncol=4)
    else:
        ax_s.legend(loc="lower right", title=title)
    fig.suptitle(
        f"{dataset}: validation curves, protocol {protocol} (thin: one seed, thick: mean while all seeds run)"
    )
    return _save(fig, out)


# ---- figure 3: HR@k curves ----------------------------------------------------------------------------
def figure_hr_at_k(
    dataset: str, runs: dict[str, list[Path]], protocol: str, domains: Sequence[str], out: Path
) -> Path | None:
    """HR@k for k = 1..50 from the stored test ranks, per target domain and overall."""
    ks = np.arange(1, HR_K_MAX + 1)
    colors = _colors(list(runs))
    scopes = [*domains, "all"]
    curves: dict[str, np.ndarray] = {}  # model -> [seeds, scopes, ks]
    for model, dirs in runs.items():
        per_seed = []
        for d in dirs:
            z = load_ranks(d, protocol)
            if z is None:
                continue
            r, dom = z["test_ranks"], z["test_domain"]
            per_seed.append([hr_at_k(r[dom == 0], ks), hr_at_k(r[dom == 1], ks), hr_at_k(r, ks)])
        if per_seed:
            curves[model] = np.asarray(per_seed)
    if not curves:
        return None
    fig, axes = _new_figure(1, 3, (16.0, 5.0), sharey=False)
    for j, (ax, scope) in enumerate(zip(axes[0], scopes, strict=True)):
        for model, c in curves.items():
            mean, std = c[:, j].mean(0), c[:, j].std(0)
            ax.plot(ks, mean, color=colors[model], lw=2, label=f"{model} ({len(c)} seed{'s' * (len(c) > 1)})")
            if len(c) > 1:
                ax.fill_between(ks, mean - std, mean + std, color=colors[model], alpha=0.15, lw=0)
        ax.set_title(f"target domain: {scope}" if scope != "all" else "all test instances")
        ax.set_xlabel("cut-off k (items)")
        ax.set_ylabel("HR@k (share of test instances)")
        ax.set_xlim(1, HR_K_MAX)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{dataset}: test HR@k for k = 1..{HR_K_MAX}, protocol {protocol} (band: ± std over seeds)")
    _legend(fig, axes)
    return _save(fig, out)


# ---- figures 4 and 5: breakdowns ----------------------------------------------------------------------
def _aligned_seed_ranks(runs: dict[str, list[Path]], protocol: str, split: Any) -> dict[str, np.ndarray]:
    """model -> [seeds, n_test] ranks in the split's test order (models without ranks are left out)."""
    out = {}
    for model, dirs in runs.items():
        rows = []
        for d in dirs:
            z = load_ranks(d, protocol)
            if z is not None:
                rows.append(align_ranks(z["test_ranks"], z["test_users"], split.test.users))
        if rows:
            out[model] = np.asarray(rows)
    return out


def _breakdowns(split: Any) -> dict[str, Buckets]:
    f = test_features(split)
    return {
        "history_length": history_buckets(f["history_length"]),
        "history_median": median_buckets(f["history_length"]),
        "item_popularity": popularity_buckets(f["item_popularity"]),
    }


def _bucket_stats(
    seed_ranks: np.ndarray, buckets: Buckets, metric: str, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) over seeds of the per-bucket metric."""
    per_seed = np.array([bucket_means(instance_metric(r, metric), buckets, mask) for r in seed_ranks])
    return per_seed.mean(0), per_seed.std(0)


def breakdown_table(
    runs: dict[str, list[Path]], protocol: str, split: Any, by_domain: bool = False
) -> dict[str, dict[str, dict[str, dict[str, float | int]]]]:
    """The numbers behind the breakdown figures: kind -> model -> bucket -> {NDCG@10, HR@10, n}.

    Kinds: `history_length` (items before the test target), `history_median` (short/long at the median),
    `item_popularity` (occurrences of the target in the training sequences). Metrics are test means over
    the instances of a bucket, averaged over seeds; `n` is the bucket's number of test instances. With
    `by_domain`, the same per target domain as `<kind>/<domain>`.
    """
    seed_ranks = _aligned_seed_ranks(runs, protocol, split)
    if not seed_ranks:
        return {}
    dom = np.asarray(split.test.target_domain)
    scopes: dict[str, np.ndarray | None] = {"": None}
    if by_domain:
        names = _domain_names(runs, [protocol])
        scopes |= {f"/{names[d]}": dom == d for d in (0, 1)}
    out: dict[str, dict[str, dict[str, dict[str, float | int]]]] = {}
    for kind, buckets in _breakdowns(split).items():
        for suffix, mask in scopes.items():
            counts = bucket_counts(buckets, mask)
            table: dict[str, dict[str, dict[str, float | int]]] = {}
            for model, sr in seed_ranks.items():
                means = {m: _bucket_stats(sr, buckets, m, mask)[0] for m in BREAKDOWN_METRICS}
                table[model] = {
                    label: {m: float(means[m][b]) for m in BREAKDOWN_METRICS} | {"n": int(counts[b])}
                    for b, label in enumerate(buckets.labels)
                }
            out[kind + suffix] = table
    return out


def bucket_tests(
    runs: dict[str, list[Path]],
    protocol: str,
    split: Any,
    a: str,
    b: str,
    kind: str = "item_popularity",
    metric: str = "NDCG@10",
) -> dict[str, dict[str, float]]:
    """Paired per-instance tests of variant `a` against `b` inside every bucket of a breakdown `kind`.

    The breakdown tables give bucket means only; whether a difference in a small bucket (cold or rare
    targets) is more than noise needs the same paired test as the report's columns
    (`temarec.evaluation.significance.paired_test`: metric averaged over seeds per instance).
    """
    seed_ranks = _aligned_seed_ranks({v: runs[v] for v in (a, b) if v in runs}, protocol, split)
    missing = [v for v in (a, b) if v not in seed_ranks]
    if missing:
        raise ValueError(f"no {protocol} ranks for {', '.join(missing)}")
    kinds = _breakdowns(split)
    if kind not in kinds:
        raise ValueError(f"unknown breakdown kind {kind!r}; one of {', '.join(kinds)}")
    buckets = kinds[kind]
    return {
        label: paired_test(seed_ranks[a][:, buckets.index == i], seed_ranks[b][:, buckets.index == i], metric)
        for i, label in enumerate(buckets.labels)
    }


def _tick_labels(buckets: Buckets, mask: np.ndarray | None, cold: bool = False) -> list[str]:
    counts = bucket_counts(buckets, mask)
    labels = [("0 (cold)" if cold and lab == "0" else lab) for lab in buckets.labels]
    return [f"{lab}\nn={c:,}" for lab, c in zip(labels, counts, strict=True)]


def _breakdown_panel(
    ax: Any,
    seed_ranks: dict[str, np.ndarray],
    buckets: Buckets,
    mask: np.ndarray | None,
    colors: dict[str, Any],
    metric: str,
    cold: bool = False,
) -> None:
    series = {m: _bucket_stats(sr, buckets, metric, mask) for m, sr in seed_ranks.items()}
    _grouped_bars(ax, _tick_labels(buckets, mask, cold), series, colors, values=True)
    scale = ", symlog scale" if ax.get_yscale() == "symlog" else ""
    ax.set_ylabel(f"test {UNITS[metric]}{scale}")


def _breakdown_inputs(runs: dict[str, list[Path]], protocol: str, split: Any) -> tuple | None:
    """`(ranks per variant and seed, colours, breakdown buckets, test target domains)`, None without ranks."""
    seed_ranks = _aligned_seed_ranks(runs, protocol, split)
    if not seed_ranks:
        return None
    return seed_ranks, _colors(list(runs)), _breakdowns(split), np.asarray(split.test.target_domain)


def figure_by_history(
    dataset: str,
    runs: dict[str, list[Path]],
    protocol: str,
    split: Any,
    domains: Sequence[str],
    out: Path,
    metric: str = "NDCG@10",
) -> Path | None:
    """Test metric per bucket of history length (items the user had before the test target)."""
    inputs = _breakdown_inputs(runs, protocol, split)
    if inputs is None:
        return None
    seed_ranks, colors, b, dom = inputs
    fig = Figure(figsize=(16.0, 10.5), dpi=DPI, layout="constrained")
    ax = fig.subplot_mosaic([["all"] * 4 + ["median"] * 2, ["A"] * 3 + ["B"] * 3])
    panels = [
        (ax["all"], b["history_length"], None, "all test instances"),
        (ax["median"], b["history_median"], None, "all test instances, split at the median"),
        (ax["A"], b["history_length"], dom == 0, f"target domain: {domains[0]}"),
        (ax["B"], b["history_length"], dom == 1, f"target domain: {domains[1]}"),
    ]
    axes = np.array([p[0] for p in panels])
    for ax, buckets, mask, title in panels:
        _breakdown_panel(ax, seed_ranks, buckets, mask, colors, metric)
        ax.set_title(title)
        ax.set_xlabel("user history length before the test target (items)")
    fig.suptitle(
        f"{dataset}: test {metric} by user history length, protocol {protocol} (mean ± std over seeds)"
    )
    _legend(fig, axes)
    return _save(fig, out)


def figure_by_popularity(
    dataset: str,
    runs: dict[str, list[Path]],
    protocol: str,
    split: Any,
    domains: Sequence[str],
    out: Path,
    metric: str = "NDCG@10",
) -> Path | None:
    """Test metric per bucket of target popularity (occurrences in the training sequences)."""
    inputs = _breakdown_inputs(runs, protocol, split)
    if inputs is None:
        return None
    seed_ranks, colors, b, dom = inputs
    buckets = b["item_popularity"]
    fig, axes = _new_figure(1, 3, (19.0, 5.6))
    scopes = [(None, "all test instances"), (dom == 0, f"target domain: {domains[0]}")]
    scopes.append((dom == 1, f"target domain: {domains[1]}"))
    for ax, (mask, title) in zip(axes[0], scopes, strict=True):
        _breakdown_panel(ax, seed_ranks, buckets, mask, colors, metric, cold=True)
        ax.set_title(title)
        ax.set_xlabel("target item popularity (occurrences in the training sequences)")
    fig.suptitle(
        f"{dataset}: test {metric} by target item popularity, protocol {protocol} (mean ± std over seeds)"
    )
    _legend(fig, axes)
    return _save(fig, out)


# ---- entry point --------------------------------------------------------------------------------------
def make_figures(
    dataset: str,
    runs: dict[str, list[Path]],
    out_dir: Path,
    protocols: list[str],
    split: Any = None,
    domains: tuple[str, str] | None = None,
) -> list[Path]:
    """Write every figure the run folders allow as `<dataset>-<what>-<protocol>.png`; return the paths.

    `runs` maps a model/variant name to its seed folders, in display order. Without `split` the two
    breakdown figures (history length, item popularity) are skipped.
    """
    import matplotlib

    out_dir = Path(out_dir)
    runs = {m: [Path(d) for d in dirs] for m, dirs in runs.items()}
    names = tuple(domains) if domains else _domain_names(runs, protocols)
    if len(names) != 2:
        names = _domain_names(runs, protocols)
    paths: list[Path | None] = []
    with matplotlib.rc_context(STYLE):
        for p in protocols:
            paths.append(figure_metrics(dataset, runs, p, names, out_dir / f"{dataset}-metrics-{p}.png"))
        sel = _selection_protocol(runs, protocols[0] if protocols else "full")
        paths.append(figure_valid_curves(dataset, runs, sel, out_dir / f"{dataset}-valid-curves-{sel}.png"))
        for p in protocols:
            paths.append(figure_hr_at_k(dataset, runs, p, names, out_dir / f"{dataset}-hr-at-k-{p}.png"))
        if split is not None:
            for p in protocols:
                paths.append(
                    figure_by_history(
                        dataset, runs, p, split, names, out_dir / f"{dataset}-by-history-length-{p}.png"
                    )
                )
                paths.append(
                    figure_by_popularity(
                        dataset, runs, p, split, names, out_dir / f"{dataset}-by-item-popularity-{p}.png"
                    )
                )
    return [p for p in paths if p is not None]
