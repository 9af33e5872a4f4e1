"""Summarise `results/<dataset>/<model>/seed*/metrics*.json` into Markdown tables (mean ± std over seeds).

Usage: python benchmarks/summarize.py results/amazon-food-kitchen > table.md
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

METRICS = ("HR@10", "NDCG@10", "MRR")


def collect(root: Path) -> dict[str, dict[str, list[dict]]]:
    """protocol -> variant -> list of metrics documents (one per seed).

    Grouped by the run's folder (the bench variant), not by the model name inside the document: every
    ablation of tema is model `tema` too, and must not be averaged into tema's row.
    """
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(root.glob("*/seed*/metrics*.json")):
        doc = json.loads(path.read_text())
        out[doc["protocol"]][path.parent.parent.name].append(doc)
    return out


def fmt(values: list[float]) -> str:
    a = np.asarray(values, dtype=float)
    if len(a) == 1:
        return f"{a[0]:.4f}"
    return f"{a.mean():.4f} ± {a.std(ddof=1):.4f}"


def table(docs: dict[str, list[dict]], protocol: str) -> str:
    any_doc = next(iter(docs.values()))[0]
    domains = [d for d in any_doc["test"] if d != "all"] + ["all"]
    head = ["model", "seeds"] + [f"{d} {m}" for d in domains for m in METRICS]
    lines = [f"**{protocol}** (test, mean ± std over seeds)", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for model, runs in sorted(docs.items(), key=lambda kv: (kv[0] != "pop", kv[0])):
        seeds = ",".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"]))
        cells = [fmt([r["test"][d][m] for r in runs]) for d in domains for m in METRICS]
        lines.append(f"| {model} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing(docs: dict[str, list[dict]]) -> str:
    lines = ["| model | s/epoch (mean over runs) | epochs run | best epoch | wall s per run | peak RSS MB |"]
    lines.append("|---|---|---|---|---|---|")
    for model, runs in sorted(docs.items()):
        tr = [r["training"] for r in runs if r["training"]]
        spe = f"{np.mean([t['seconds_per_epoch'] for t in tr]):.1f}" if tr else "–"
        ep = ",".join(str(t["epochs"]) for t in tr) if tr else "–"
        be = ",".join(str(t["best_epoch"]) for t in tr) if tr else "–"
        wall = f"{np.mean([r['wall_seconds'] for r in runs]):.0f}"
        rss = f"{max(r['peak_rss_mb'] for r in runs):.0f}"
        lines.append(f"| {model} | {spe} | {ep} | {be} | {wall} | {rss} |")
    return "\n".join(lines)


def main(root: str) -> None:
    data = collect(Path(root))
    for protocol in sorted(data, key=lambda p: (p != "full", p)):
        print(table(data[protocol], protocol) + "\n")
    if "full" in data:
        print(timing(data["full"]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/amazon-food-kitchen")
