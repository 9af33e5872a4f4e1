"""Markdown table: our models under ABXI's protocol (`uni999`) next to ABXI's published numbers.

Reads `results/amazon-food-kitchen/<model>/seed*/metrics-uni999.json` (test split, mean over the seeds
found) and prints, per domain and metric, ABXI's number, ours and the gap. Models with no finished seed
are left out; the seeds used are printed.

Usage: python benchmarks/abxi_compare.py [results/amazon-food-kitchen] [--models tema,sasrec,...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

# ABXI (WWW 2025), its README, 5 seeds: leave-one-out on the mixed sequence, the target against 999
# negatives from its domain among items the user has not interacted with (shared/data/README.md)
ABXI = {
    "Food": {"HR@10": 0.3243, "NDCG@10": 0.1971, "MRR": 0.1655},
    "Kitchen": {"HR@10": 0.2438, "NDCG@10": 0.1427, "MRR": 0.1219},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", type=Path, default=Path("results/amazon-food-kitchen"))
    ap.add_argument("--models", default="tema,c2dsr,sasrec,sasrec-single,gru4rec")
    a = ap.parse_args()
    cols = [(d, m) for d in ABXI for m in ABXI[d]]
    print("| model | seeds | " + " | ".join(f"{d} {m}" for d, m in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    print("| ABXI (published) | – | " + " | ".join(f"{ABXI[d][m]:.4f}" for d, m in cols) + " |")
    for model in a.models.split(","):
        files = sorted((a.root / model).glob("seed*/metrics-uni999.json"))
        if not files:
            continue
        docs = [json.loads(f.read_text()) for f in files]
        seeds = ",".join(str(doc["seed"]) for doc in docs)
        cells = []
        for d, m in cols:
            ours = float(np.mean([doc["test"][d][m] for doc in docs]))
            gap = ours - ABXI[d][m]
            cells.append(f"{ours:.4f} ({gap:+.4f}, {100 * gap / ABXI[d][m]:+.0f}%)")
        print(f"| {model} | {seeds} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
