"""The two summary tables of `results/README.md`, computed from the bench reports `results/<dataset>.json`.

1. tema against the best baseline, per dataset, protocol, domain and metric, with the paired tests.
2. tema's ablations on every dataset: relative difference to tema per domain (NDCG@10 and MRR), with a
   mark where both paired tests agree at p < 0.05.

Usage: python benchmarks/headline.py results/amazon-food-kitchen.json results/amazon-art-office.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MODEL = "tema"
METRICS = ("HR@10", "NDCG@10", "MRR")
ABLATION_METRICS = ("NDCG@10", "MRR")


def _p(x: float) -> str:
    return f"{x:.2g}" if x < 0.001 else f"{x:.3f}"


def headline(docs: list[dict]) -> list[str]:
    cols = ["dataset", "protocol", "domain", "metric", "tema (seeds)", "best baseline", "difference"]
    cols += ["t p", "W p", "verdict"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for doc in docs:
        for proto, res in doc["results"].items():
            if MODEL not in res["variants"]:
                out.append(f"| {doc['dataset']} | {proto} | – | – | not run yet | | | | | |")
                continue
            seeds = ",".join(str(s) for s in res["variants"][MODEL]["seeds"])
            for dom in [d for d in res["domains"] if d != "all"]:
                for m in METRICS:
                    t = res["significance"][MODEL][dom][m]
                    if "error" in t:
                        out.append(
                            f"| {doc['dataset']} | {proto} | {dom} | {m} | | | n/a: {t['error']} | | | |"
                        )
                        continue
                    rel = 100.0 * t["diff"] / t["mean_b"] if t["mean_b"] else float("nan")
                    verdict = "above" if t["diff"] > 0 else "below"
                    if t["significant"]:  # both paired tests at p < 0.05
                        verdict = "**beats**" if t["diff"] > 0 else "**loses**"
                    out.append(
                        f"| {doc['dataset']} | {proto} | {dom} | {m} | {t['mean_a']:.4f} ({seeds}) | "
                        f"{t['baseline']} {t['mean_b']:.4f} | {t['diff']:+.4f} ({rel:+.1f}%) | "
                        f"{_p(t['t_p'])} | {_p(t['wilcoxon_p'])} | {verdict} |"
                    )
    return out


def ablation_table(docs: list[dict], protocol: str) -> list[str]:
    cols: list[tuple[dict, str, str]] = []
    for doc in docs:
        res = doc["results"].get(protocol)
        if res and MODEL in res["ablations"]:
            cols += [(doc, d, m) for d in res["domains"] if d != "all" for m in ABLATION_METRICS]
    if not cols:
        return [f"No ablation has run under {protocol} yet."]
    names: list[str] = []
    for doc in docs:
        for v in doc["results"][protocol]["ablations"].get(MODEL, {}):
            if v != MODEL and v not in names:
                names.append(v)
    head = ["variant"] + [f"{d} {m}" for _, d, m in cols]  # domain names differ across our datasets
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ref = ["tema (absolute)"]
    for doc, d, m in cols:
        ref.append(f"{doc['results'][protocol]['ablations'][MODEL][MODEL][d][m]['mean']:.4f}")
    out.append("| " + " | ".join(ref) + " |")
    for v in names:
        cells = [v]
        for doc, d, m in cols:
            res = doc["results"][protocol]
            row = res["ablations"][MODEL].get(v)
            if row is None:
                cells.append("not run")
                continue
            x = row[d][m]
            seeds = len(res["variants"][v]["seeds"])
            mark = (" ▲" if x["delta"] > 0 else " ▼") if x.get("significant") else ""
            note = "" if seeds >= 3 else f" ({seeds} seed{'s' if seeds > 1 else ''})"
            cells.append(f"{x['delta_pct']:+.1f}%{mark}{note}")
        out.append("| " + " | ".join(cells) + " |")
    return out


def main(paths: list[str]) -> None:
    docs = [json.loads(Path(p).read_text()) for p in paths if Path(p).is_file()]
    missing = [Path(p).stem for p in paths if not Path(p).is_file()]
    print("\n".join(headline(docs)))
    if missing:
        print(f"\nNot run yet: {', '.join(missing)}.")
    for proto in ("full", "uni999"):
        print(
            f"\n**Ablations, {proto}**: relative difference of each ablation's mean to tema's (test, mean "
            "over seeds); ▲/▼: both paired per-user tests (t-test, Wilcoxon) at p < 0.05.\n"
        )
        print("\n".join(ablation_table(docs, proto)))


if __name__ == "__main__":
    main(sys.argv[1:] or ["results/amazon-food-kitchen.json", "results/amazon-art-office.json"])
