"""The bench report of one dataset: `<output>/<dataset>.json` (every number) and `<output>/<dataset>.md`.

Only finished cells (state `done`: metrics present, config current) are read. Per protocol: mean ± std over
seeds of HR@10, NDCG@10 and MRR per domain and overall, the best of each column in bold, and a paired
per-user test of every non-baseline variant against the best baseline of that column
(`temarec.evaluation.significance`: per-instance metrics averaged over seeds, paired t-test and Wilcoxon
signed-rank test). Then the ablations against the full model, a per-run table (epochs, time, memory), the
figures (`temarec.bench.figures`, when it is installed), the versions and the machine.
"""

from __future__ import annotations

import json
import os
import platform
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from temarec.bench.config import BenchConfig
from temarec.bench.runner import BENCH_FILE, CellStatus
from temarec.data.splits import VALIDATION_RULE
from temarec.evaluation.significance import ALPHA, format_p, significant
from temarec.files import atomic_write

METRICS = ("HR@10", "NDCG@10", "MRR")
UP, DOWN = "▲", "▼"


@dataclass
class Run:
    """One finished cell: its metrics documents per protocol and the bench's measurements."""

    variant: str
    seed: int
    dir: Path
    docs: dict[str, dict]
    bench: dict | None


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def collect(statuses: list[CellStatus]) -> dict[str, list[Run]]:
    """variant -> its finished runs (seed order), variants in config order."""
    out: dict[str, list[Run]] = {}
    for st in statuses:
        if st.state != "done":
            continue
        c = st.cell
        docs = {}
        for p, f in zip(c.protocols, c.metrics_files(), strict=True):
            doc = _read(f)
            if doc is not None:
                docs[p] = doc
        if len(docs) == len(c.protocols):
            out.setdefault(c.variant, []).append(
                Run(c.variant, c.seed, c.dir, docs, _read(c.dir / BENCH_FILE))
            )
    for runs in out.values():
        runs.sort(key=lambda r: r.seed)
    return out


# ---- numbers ---------------------------------------------------------------------------------------------
def _domains(runs: dict[str, list[Run]], protocol: str) -> list[str]:
    doc = next(iter(runs.values()))[0].docs[protocol]
    return [d for d in doc["test"] if d != "all"] + ["all"]


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), (float(a.std(ddof=1)) if len(a) > 1 else None)


def summarize(runs: dict[str, list[Run]], protocol: str, domains: list[str]) -> dict[str, dict]:
    """Per variant: seeds, and mean / std over seeds of every metric of `METRICS` per domain (test)."""
    out = {}
    for v, rs in runs.items():
        mean: dict[str, dict[str, float]] = {}
        std: dict[str, dict[str, float | None]] = {}
        for d in domains:
            mean[d], std[d] = {}, {}
            for m in METRICS:
                mean[d][m], std[d][m] = _mean_std([r.docs[protocol]["test"][d][m] for r in rs])
        out[v] = {"seeds": [r.seed for r in rs], "mean": mean, "std": std}
    return out


def _against(runs: dict[str, list[Run]], a: str, b: str, protocol: str, domains: list[str]) -> dict:
    """domain -> metric -> paired tests of variant `a` against `b` (`{"error": ...}` where they fail)."""
    from temarec.evaluation.significance import compare_models_by_metric

    pair = tuple(d for d in domains if d != "all")
    try:
        dirs_a, dirs_b = [r.dir for r in runs[a]], [r.dir for r in runs[b]]
        res = compare_models_by_metric(dirs_a, dirs_b, protocol, pair, METRICS)
    except (OSError, ValueError, KeyError) as e:
        err = {"error": f"{type(e).__name__}: {e}"}
        return {d: {m: dict(err) for m in METRICS} for d in domains}
    return {d: {m: res[m][d] | {"significant": significant(res[m][d])} for m in METRICS} for d in domains}


def significance(
    cfg: BenchConfig,
    runs: dict[str, list[Run]],
    summary: dict[str, dict],
    protocol: str,
    domains: list[str],
) -> tuple[dict, dict, dict]:
    """(best baseline per domain/metric, tests per non-baseline variant/domain/metric against that best
    baseline, tests of each full variant against every baseline).

    The last part answers "and against c2dsr?" (or against the baselines an issue names), which the
    best-baseline tests alone cannot; only full variants (those with ablations) get it, to keep the
    document small.
    """
    baselines = [v for v in summary if cfg.variants[v].baseline]
    best: dict[str, dict[str, str]] = {}
    for d in domains:
        best[d] = {}
        for m in METRICS:
            if baselines:
                best[d][m] = max(baselines, key=lambda v, d=d, m=m: summary[v]["mean"][d][m])
    cache: dict[tuple[str, str], dict] = {}

    def against(v: str, b: str) -> dict:
        if (v, b) not in cache:
            cache[v, b] = _against(runs, v, b, protocol, domains)
        return cache[v, b]

    tests: dict[str, dict[str, dict[str, dict]]] = {}
    for v in summary:
        if v in baselines or not baselines:
            continue
        tests[v] = {
            d: {m: {"baseline": best[d][m], **against(v, best[d][m])[d][m]} for m in METRICS} for d in domains
        }
    every = {full: {b: against(full, b) for b in baselines} for full in cfg.ablation_of if full in summary}
    return best, tests, every


def ablations(
    cfg: BenchConfig,
    runs: dict[str, list[Run]],
    summary: dict[str, dict],
    protocol: str,
    domains: list[str],
) -> dict[str, dict]:
    """full variant -> ablation -> domain -> metric -> {mean, delta, delta_pct} against the full variant,
    with the paired per-user tests (t-test and Wilcoxon, as against the baselines) of the ablation
    against the full variant."""
    out: dict[str, dict] = {}
    for full, abl in cfg.ablation_of.items():
        if full not in summary:
            continue
        ref = summary[full]["mean"]
        rows = {}
        for v in [full, *abl]:
            if v not in summary:
                continue
            rows[v] = {}
            tests = _against(runs, v, full, protocol, domains) if v != full else None
            for d in domains:
                rows[v][d] = {}
                for m in METRICS:
                    x, r = summary[v]["mean"][d][m], ref[d][m]
                    row: dict[str, Any] = {
                        "mean": x,
                        "delta": x - r,
                        "delta_pct": (100.0 * (x - r) / r) if r else None,
                    }
                    if tests is not None:
                        t = tests[d][m]
                        row.update({k: t[k] for k in ("t_p", "wilcoxon_p", "significant", "error") if k in t})
                    rows[v][d][m] = row
        out[full] = rows
    return out


def load_epochs(run_dir: Path) -> list[dict]:
    """The rows of a run's `epochs.jsonl` ([] without one); the figures read it too."""
    path = Path(run_dir) / "epochs.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _epochs_seconds(run_dir: Path) -> float | None:
    """Training plus validation seconds of every epoch in `epochs.jsonl` (None without one)."""
    rows = load_epochs(run_dir)
    if not rows:
        return None
    return round(sum(e.get("train_seconds", 0.0) + e.get("valid_seconds", 0.0) for e in rows), 1)


def _commit(code: dict | None) -> str | None:
    """The short commit a run was made with (`+` where the working tree had changes), if it recorded one:
    the bench's staleness check covers config, data and tags but not code, so the report shows it."""
    if not code or not code.get("git_commit"):
        return None
    return code["git_commit"][:7] + ("+" if code.get("git_dirty") else "")


def run_rows(runs: dict[str, list[Run]], first: str) -> list[dict]:
    """One row per run: training epochs and time, wall seconds and peak memory (the bench's own
    measurement of the cell's process where there is one, else what the run recorded), and the seconds
    of all epochs from `epochs.jsonl`, which add up across resumes where the wall time does not)."""
    rows = []
    for v, rs in runs.items():
        for r in rs:
            doc = r.docs[first]
            tr = doc.get("training") or {}
            b = r.bench or {}
            measured = b.get("returncode") == 0 and b.get("wall_seconds") is not None
            rows.append(
                {
                    "variant": v,
                    "seed": r.seed,
                    "model": doc.get("model"),
                    "dir": str(r.dir),
                    "epochs": tr.get("epochs"),
                    "best_epoch": tr.get("best_epoch"),
                    "seconds_per_epoch": tr.get("seconds_per_epoch"),
                    "epochs_seconds": _epochs_seconds(r.dir),
                    "wall_seconds": b["wall_seconds"] if measured else doc.get("wall_seconds"),
                    "peak_rss_mb": b.get("peak_rss_mb") if measured else doc.get("peak_rss_mb"),
                    "measured_by": "bench" if measured else "run",
                    "resumed": bool(b.get("resumed")) if measured else None,
                    "code": _commit(doc.get("code")),
                    "validation_rule": doc.get("validation_rule", 1),
                    "test": {p: d["test"] for p, d in r.docs.items()},
                    "valid": {p: d["valid"] for p, d in r.docs.items()},
                }
            )
    return rows


# ---- environment -------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    import scipy
    import torch

    from temarec import __version__

    return {
        "temarec": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def machine() -> dict[str, Any]:
    """Platform, CPU model, cores and RAM of this machine (Linux /proc where available)."""
    cpu = platform.processor() or platform.machine()
    ram_gb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "host": platform.node(),
    }


def protocol_text(protocol: str, doc: dict) -> str:
    from temarec.evaluation.protocol import parse_protocol

    p = parse_protocol(protocol)
    if p.is_full:
        what = "the target is ranked among all items of its domain"
        if doc.get("exclude_history", True):
            what += " (the user's history masked)"
    else:
        hist = ", excluding the user's history" if doc.get("exclude_history", True) else ""
        what = (
            f"the target is ranked among {p.n_neg} negatives drawn uniformly from its domain{hist}, drawn "
            f"once (eval.candidate_seed={doc.get('candidate_seed')}) and stored, so every model sees the "
            "same candidates"
        )
    return f"`{protocol}`: {what}"


# ---- figures (another module, optional) -------------------------------------------------------------
def figures(
    dataset: str,
    dataset_key: str,
    runs: dict[str, list[Run]],
    out_dir: Path,
    protocols: list[str],
    domains: list[str],
) -> tuple[list[Path], dict, str | None]:
    """(figure files, breakdown tables per protocol, a note when something is missing)."""
    try:
        from temarec.bench import figures as fig
    except ImportError as e:
        return [], {}, f"figures not made: temarec.bench.figures is not available ({e})"
    seed_dirs = {v: [r.dir for r in rs] for v, rs in runs.items()}
    split, notes = None, []
    try:
        from temarec.data.registry import load_dataset
        from temarec.data.splits import get_split

        split = get_split(load_dataset(dataset), "auto")
    except Exception as e:  # noqa: BLE001 - the data may be absent where only the report is rebuilt
        notes.append(f"the dataset could not be loaded ({type(e).__name__}: {e}), so no split-based figures")
    paths: list[Path] = []
    try:
        paths = [
            Path(p)
            for p in fig.make_figures(
                dataset_key, seed_dirs, out_dir, protocols, split=split, domains=tuple(domains)
            )
        ]
    except Exception as e:  # noqa: BLE001 - a figure bug must not lose the tables
        notes.append(f"make_figures failed: {type(e).__name__}: {e}")
    breakdown: dict = {}
    if split is not None and hasattr(fig, "breakdown_table"):
        for p in protocols:
            try:
                breakdown[p] = fig.breakdown_table(seed_dirs, p, split)
            except Exception as e:  # noqa: BLE001
                notes.append(f"breakdown_table({p}) failed: {type(e).__name__}: {e}")
    return paths, breakdown, "; ".join(notes) or None


# ---- Markdown ------------------------------------------------------------------------------------------
def _f(x: float | None, nd: int = 4) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (header, separator, rows)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _columns(domains: list[str]) -> list[tuple[str, str]]:
    return [(d, m) for d in domains for m in METRICS]


def results_table(block: dict, domains: list[str]) -> list[str]:
    """Mean ± std over seeds per variant and column of one protocol's block (also in results/README)."""
    summary, tests = block["variants"], block["significance"]
    head = ["variant", "seeds"] + [f"{d} {m}" for d, m in _columns(domains)]
    best = {(d, m): max(s["mean"][d][m] for s in summary.values()) for d, m in _columns(domains)}
    rows = []
    for v, s in summary.items():
        cells = [v + (" (baseline)" if s.get("baseline") else ""), ",".join(map(str, s["seeds"]))]
        for d, m in _columns(domains):
            mean, std = s["mean"][d][m], s["std"][d][m]
            text = f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")
            if mean == best[(d, m)]:
                text = f"**{text}**"
            t = tests.get(v, {}).get(d, {}).get(m)
            if t and t.get("significant"):
                text += " " + (UP if t["diff"] > 0 else DOWN)
            cells.append(text)
        rows.append(cells)
    return md_table(head, rows)


def _pvalue_table(block: dict, domains: list[str]) -> list[str]:
    tests, best = block["significance"], block["best_baseline"]
    head = ["variant"] + [f"{d} {m}" for d, m in _columns(domains)]
    rows = [["*best baseline*"] + [best[d].get(m, "–") for d, m in _columns(domains)]]
    for v, per in tests.items():
        cells = [v]
        for d, m in _columns(domains):
            t = per[d][m]
            if "error" in t:
                cells.append("n/a")
                continue
            mark = (" " + (UP if t["diff"] > 0 else DOWN)) if t["significant"] else ""
            cells.append(f"{t['diff']:+.4f}: t {format_p(t['t_p'])}, W {format_p(t['wilcoxon_p'])}{mark}")
        rows.append(cells)
    return md_table(head, rows)


def _ablation_table(rows: dict, domains: list[str], full: str) -> list[str]:
    head = ["variant"] + [f"{d} {m}" for d, m in _columns(domains)]
    out = []
    for v, per in rows.items():
        cells = [v]
        for d, m in _columns(domains):
            x = per[d][m]
            if v == full:
                cells.append(f"{x['mean']:.4f}")
            else:
                pct = f", {x['delta_pct']:+.1f}%" if x["delta_pct"] is not None else ""
                mark = (" " + (UP if x["delta"] > 0 else DOWN)) if x.get("significant") else ""
                cells.append(f"{x['mean']:.4f} ({x['delta']:+.4f}{pct}){mark}")
        out.append(cells)
    return md_table(head, out)


def _runs_table(rows: list[dict]) -> list[str]:
    head = ["variant", "seed", "epochs run", "best epoch", "s/epoch", "epochs s", "wall s", "peak RSS MB"]
    head += ["measured by", "code"]
    body = []
    for r in rows:
        body.append(
            [
                r["variant"],
                str(r["seed"]),
                "–" if r["epochs"] is None else str(r["epochs"]),
                "–" if r["best_epoch"] is None else str(r["best_epoch"]),
                _f(r["seconds_per_epoch"], 1),
                _f(r.get("epochs_seconds"), 0),
                _f(r["wall_seconds"], 0),
                _f(r["peak_rss_mb"], 0),
                r["measured_by"] + (" (resumed)" if r.get("resumed") else ""),
                r.get("code") or "–",
            ]
        )
    return md_table(head, body)


def _flat(d: Any, prefix: tuple = ()) -> dict[tuple, Any]:
    if isinstance(d, dict):
        out: dict[tuple, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, (*prefix, str(k))))
        return out
    return {prefix: d}


def _breakdown_md(table: dict, variants: list[str]) -> list[str]:
    """A breakdown of unknown nesting as tables: rows are variants, one table per second-level key."""
    if not isinstance(table, dict) or not table:
        return ["```", json.dumps(table, indent=1, default=str)[:4000], "```"]
    if not set(table) & set(variants):  # kind -> variant -> ...: put the variants first
        swapped: dict[str, dict] = {}
        for kind, per in table.items():
            for v, x in per.items() if isinstance(per, dict) else []:
                swapped.setdefault(v, {})[kind] = x
        table = swapped or table
    groups: dict[str, dict[str, dict[tuple, Any]]] = {}
    for v, x in table.items():
        if isinstance(x, dict) and all(isinstance(y, dict) for y in x.values()):
            for kind, y in x.items():
                groups.setdefault(kind, {})[v] = _flat(y)
        else:
            groups.setdefault("", {})[v] = _flat(x)
    lines: list[str] = []
    for kind, rows in groups.items():
        cols = list(dict.fromkeys(k for r in rows.values() for k in r))
        if kind:
            lines += ([""] if lines else []) + [f"*{kind}*", ""]
        body = []
        for v, r in rows.items():
            vals = [r.get(c) for c in cols]
            body.append([v] + [f"{x:.4f}" if isinstance(x, float) else str(x) for x in vals])
        lines += md_table(["variant"] + [" ".join(c) or "value" for c in cols], body)
    return lines


def _rule_note(rules: dict) -> list[str]:
    """A protocol line when runs were selected under an older validation rule (`splits.VALIDATION_RULE`)."""
    old = sum(n for r, n in rules.items() if int(r) < VALIDATION_RULE)
    if not old:
        return []
    return [
        f"- {old} of {sum(rules.values())} runs were selected under validation rule 1, before "
        "session 19: a validation ranking also hid the user's test item when it was of the target's "
        "domain (and sampled validation negatives reused the test draw's random stream). Test ranking "
        "is the same under both rules; only which epoch was selected can differ (results/README.md)."
    ]


def markdown(doc: dict, cfg: BenchConfig) -> str:
    key, label = doc["dataset"], doc["bench"]
    L = [
        f"# Benchmark: {key}",
        "",
        f"Written by `temarec bench {label}` on {doc['generated']}. {doc['cells']['done']} finished runs "
        f"of {doc['cells']['total']} cells in the grid are included; every number below is computed from "
        f"the run folders under `{doc['runs_root']}` (`metrics*.json`, `ranks-<protocol>.npz`).",
        "",
        "## Protocol",
        "",
    ]
    for p in doc["protocols"]:
        L.append(f"- {doc['protocol_description'][p]}")
    meta = doc["evaluation"]
    L += [
        f"- Split: {meta['split']}. Checkpoint selection: {meta['selected_on']}; test is never used "
        "to select.",
        *_rule_note(meta.get("validation_rules") or {}),
        f"- Ties with the target count {'against it' if meta['ties'] == 'pessimistic' else 'half'} "
        f"(`eval.ties={meta['ties']}`). Metrics are test means over the seeds listed, ± the standard "
        "deviation over seeds (none with one seed).",
        f"- **Bold**: best of its column. {UP} / {DOWN}: significantly above / below the best baseline of "
        "that column (paired per-user test, per-instance metric averaged over seeds; both the paired t-test "
        f"and the Wilcoxon signed-rank test at p < {ALPHA}, the Wilcoxon test leaning the same way as the "
        "mean: for MRR it can lean the other way, see `temarec.evaluation.significance.wilcoxon_sign`).",
        "",
    ]
    for p in doc["protocols"]:
        block = doc["results"][p]
        domains = block["domains"]
        L += [f"## Results: {p} (test)", ""] + results_table(block, domains) + [""]
        if block["significance"]:
            L += [
                f"**Paired tests, {p}**: difference of the variant's mean to the best baseline's, paired "
                "t-test p-value (t) and Wilcoxon signed-rank p-value (W).",
                "",
            ]
            L += _pvalue_table(block, domains) + [""]
        elif not any(cfg.variants[v].baseline for v in block["variants"]):
            L += ["No baseline variant has finished runs: no significance tests.", ""]
        for full, rows in block["ablations"].items():
            if len(rows) < 2:  # none of its ablations has finished: a table of the full model alone
                continue
            L += [
                f"**Ablations of {full}, {p}**: mean over seeds (difference to {full}, relative; "
                f"{UP}/{DOWN}: above/below {full} with both paired tests at p < {ALPHA}, "
                "leaning the same way).",
                "",
            ]
            L += _ablation_table(rows, domains, full) + [""]
    L += [
        "## Runs",
        "",
        "Epochs run and best epoch (selected on validation), training seconds per epoch, seconds of all "
        "epochs (training and validation, summed over every process of a resumed run), the wall time "
        "and peak resident memory of the run's process (measured by the bench; `run`: as recorded by the "
        "run itself, e.g. one made before the bench; the wall time of a resumed run is its last process), "
        "and the commit of the code it ran (`+`: with uncommitted changes; a cell is not rerun when only "
        "the code changes).",
        "",
    ]
    L += _runs_table(doc["runs"]) + [""]
    L += ["## Figures", ""]
    if doc["figures"]:
        for f in doc["figures"]:
            rel = os.path.relpath(f, doc["report_dir"])
            name = Path(f).name
            L.append(f"![{name}]({rel})" if name.endswith((".png", ".svg", ".jpg")) else f"- [{name}]({rel})")
        L.append("")
    if doc["figures_note"]:
        L += [f"*{doc['figures_note']}*", ""]
    for p, table in doc["breakdown"].items():
        L += [f"**Breakdown by user history length and item popularity, {p}**", ""]
        L += _breakdown_md(table, list(doc["results"][p]["variants"])) + [""]
    if doc["not_included"]:
        L += ["## Not included", ""]
        L += [
            f"- `{x['cell']}`: {x['state']}" + (f" ({x['detail']})" if x["detail"] else "")
            for x in doc["not_included"]
        ]
        L.append("")
    v, m = doc["versions"], doc["machine"]
    L += [
        "## Environment",
        "",
        "Report written with " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['platform']}.",
        "",
        "Runs were made on (as each run recorded it):",
        "",
    ]
    L += [f"- {r['count']} run(s): {r['what']}" for r in doc["run_machines"]]
    return "\n".join(L) + "\n"


# ---- the report ----------------------------------------------------------------------------------------
def _run_machines(runs: dict[str, list[Run]]) -> list[dict]:
    seen: dict[str, int] = {}
    for rs in runs.values():
        for r in rs:
            mc = next(iter(r.docs.values())).get("machine") or {}
            what = ", ".join(
                f"{k} {mc[k]}"
                for k in ("platform", "processor", "python", "torch", "temarec", "threads")
                if k in mc
            )
            seen[what or "unknown"] = seen.get(what or "unknown", 0) + 1
    return [{"what": k, "count": n} for k, n in seen.items()]


def build_document(cfg: BenchConfig, dataset_key: str, statuses: list[CellStatus], label: str) -> dict:
    """Every number of the report, as the JSON document written next to the Markdown."""
    runs = collect(statuses)
    out_root = Path(cfg.output)
    protocols = list(cfg.protocols)
    first_doc = next(iter(runs.values()))[0].docs[protocols[0]]
    results = {}
    for p in protocols:
        domains = _domains(runs, p)
        summary = summarize(runs, p, domains)
        best, tests, every = significance(cfg, runs, summary, p, domains)
        results[p] = {
            "domains": domains,
            "metrics": list(METRICS),
            "variants": {
                v: {**s, "model": cfg.variant_model(v), "baseline": cfg.variants[v].baseline}
                for v, s in summary.items()
            },
            "best": {
                d: {m: max(summary, key=lambda v, d=d, m=m: summary[v]["mean"][d][m]) for m in METRICS}
                for d in domains
            },
            "best_baseline": best,
            "significance": tests,
            "vs_baselines": every,
            "ablations": ablations(cfg, runs, summary, p, domains),
        }
    dataset = next(st.cell.dataset for st in statuses)
    fig_paths, breakdown, note = figures(
        dataset,
        dataset_key,
        runs,
        out_root / "figures",
        protocols,
        [d for d in _domains(runs, protocols[0]) if d != "all"],
    )
    return {
        "dataset": dataset_key,
        "bench": label,
        "bench_config": str(cfg.source) if cfg.source else None,
        "generated": datetime.now().astimezone().isoformat(timespec="seconds"),
        "runs_root": str(out_root / dataset_key),
        "report_dir": str(out_root),
        "protocols": protocols,
        "protocol_description": {p: protocol_text(p, first_doc) for p in protocols},
        "evaluation": {
            "split": ", ".join(
                sorted({r.docs[protocols[0]].get("split", "?") for rs in runs.values() for r in rs})
            ),
            "selected_on": first_doc.get("selected_on"),
            "ties": first_doc.get("ties"),
            "candidate_seed": first_doc.get("candidate_seed"),
            "exclude_history": first_doc.get("exclude_history"),
            "validation_rules": dict(
                Counter(r.docs[protocols[0]].get("validation_rule", 1) for rs in runs.values() for r in rs)
            ),
        },
        "cells": {
            "total": len(statuses),
            **{
                s: sum(st.state == s for st in statuses) for s in ("done", "partial", "todo", "stale", "skip")
            },
        },
        "results": results,
        "runs": run_rows(runs, protocols[0]),
        "not_included": [
            {"cell": st.cell.name, "state": st.state, "detail": st.detail}
            for st in statuses
            if st.state != "done"
        ],
        "figures": [str(p) for p in fig_paths],
        "figures_note": note,
        "breakdown": breakdown,
        "versions": versions(),
        "machine": machine(),
        "run_machines": _run_machines(runs),
    }


def _finite(x: Any) -> Any:
    """NaN and infinities (a degenerate test) as null: strict JSON has no NaN."""
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _write(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_report(
    cfg: BenchConfig, dataset_key: str, statuses: list[CellStatus], label: str = "bench"
) -> tuple[Path, Path]:
    """Write `<output>/<dataset>.json` and `.md` from the finished cells among `statuses`."""
    doc = build_document(cfg, dataset_key, statuses, label)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    jp, mp = out / f"{dataset_key}.json", out / f"{dataset_key}.md"
    _write(jp, json.dumps(_finite(doc), indent=1, default=str, allow_nan=False))
    _write(mp, markdown(doc, cfg))
    return jp, mp
