"""Per-dataset tables of `results/README.md`, taken from the bench report `results/<dataset>.json`.

The report computes every number once (mean ± std over seeds per bench variant, paired tests); this
script only lays its results tables out again and adds one timing row per variant (the report lists
every run). Usage: python benchmarks/summarize.py results/amazon-food-kitchen.json > table.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from temarec.bench.report import DOWN, UP, md_table, results_table
from temarec.evaluation.significance import ALPHA


def _join(values: list) -> str:
    return ",".join(str(v) for v in values) if values else "–"


def timing(rows: list[dict]) -> str:
    """One row per variant: mean training s/epoch, epochs run and best epochs per seed, wall, peak RSS."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["variant"], []).append(r)
    head = ["variant", "s/epoch (mean of runs)", "epochs run", "best epoch", "wall s per run", "peak RSS MB"]
    body = []
    for v, rs in by.items():
        spe = [r["seconds_per_epoch"] for r in rs if r["seconds_per_epoch"] is not None]
        wall = [r["wall_seconds"] for r in rs if r["wall_seconds"] is not None]
        rss = [r["peak_rss_mb"] for r in rs if r["peak_rss_mb"] is not None]
        body.append(
            [
                v,
                f"{np.mean(spe):.1f}" if spe else "–",
                _join([r["epochs"] for r in rs if r["epochs"] is not None]),
                _join([r["best_epoch"] for r in rs if r["best_epoch"] is not None]),
                f"{np.mean(wall):.0f}" if wall else "–",
                f"{max(rss):.0f}" if rss else "–",
            ]
        )
    return "\n".join(md_table(head, body))


def tables(doc: dict) -> str:
    """Results table per protocol (`full` first), then the timing table."""
    out = []
    for p in sorted(doc["results"], key=lambda p: (p != "full", p)):
        block = doc["results"][p]
        out.append(
            f"**{p}** (test, mean ± std over seeds; **bold**: best of its column; {UP} / {DOWN}: "
            "significantly above / below the column's best baseline, paired t-test and Wilcoxon both at "
            f"p < {ALPHA}, leaning the same way)\n"
        )
        out.append("\n".join(results_table(block, block["domains"])) + "\n")
    out.append(timing(doc["runs"]))
    return "\n".join(out)


def main(path: str) -> None:
    print(tables(json.loads(Path(path).read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/amazon-food-kitchen.json")
