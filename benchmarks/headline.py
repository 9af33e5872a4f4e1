"""The two summary tables of `results/README.md`, computed from the bench reports `results/<dataset>.json`.

1. tema against the best single-model baseline and against c2dsr, per dataset, protocol, domain and
   metric, with the paired tests.
2. tema's ablations on every dataset: relative difference to tema per domain (NDCG@10 and MRR), with a
   mark where both paired tests agree (p < 0.05, same direction).

Usage: python benchmarks/headline.py results/amazon-food-kitchen.json results/amazon-art-office.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from temarec.evaluation.significance import format_p

MODEL = "tema"
METRICS = ("HR@10", "NDCG@10", "MRR")
ABLATION_METRICS = ("NDCG@10", "MRR")
ISSUE_BASELINES = ("pop", "gru4rec", "sasrec", "sasrec-single")  # issue 4 names the last three
CROSS_BASELINE = "c2dsr"


def _compare(t: dict) -> list[str]:
    """difference, t p, W p and verdict cells of one paired test."""
    if "error" in t:
        return [f"n/a: {t['error']}", "", "", ""]
    rel = 100.0 * t["diff"] / t["mean_b"] if t["mean_b"] else float("nan")
    verdict = "above" if t["diff"] > 0 else "below"
    if t["significant"]:  # both paired tests at p < 0.05
        verdict = "**beats**" if t["diff"] > 0 else "**loses**"
    return [f"{t['diff']:+.4f} ({rel:+.1f}%)", format_p(t["t_p"]), format_p(t["wilcoxon_p"]), verdict]


def headline(docs: list[dict]) -> list[str]:
    """tema against the best of the single-model baselines (issue 4's list) and against c2dsr."""
    cols = ["dataset", "protocol", "domain", "metric", "tema (seeds)", "best of " + "/".join(ISSUE_BASELINES)]
    cols += ["difference", "t p", "W p", "verdict", CROSS_BASELINE, "difference", "t p", "W p", "verdict"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    blank = [""] * (len(cols) - 4)
    for doc in docs:
        for proto, res in doc["results"].items():
            variants = res["variants"]
            if MODEL not in variants:
                row = [doc["dataset"], proto, "–", "–", "not run yet", *blank[1:]]
                out.append("| " + " | ".join(row) + " |")
                continue
            seeds = ",".join(str(s) for s in variants[MODEL]["seeds"])
            tests = res.get("vs_baselines", {}).get(MODEL, {})
            for dom in [d for d in res["domains"] if d != "all"]:
                for m in METRICS:
                    mean = variants[MODEL]["mean"][dom][m]
                    cells = [doc["dataset"], proto, dom, m, f"{mean:.4f} ({seeds})"]
                    ran = [b for b in ISSUE_BASELINES if b in tests]
                    if ran:
                        b = max(ran, key=lambda b: variants[b]["mean"][dom][m])
                        cells += [f"{b} {variants[b]['mean'][dom][m]:.4f}", *_compare(tests[b][dom][m])]
                    else:
                        cells += ["not run", "", "", "", ""]
                    if CROSS_BASELINE in tests:
                        c = variants[CROSS_BASELINE]
                        n = len(c["seeds"])
                        cells += [f"{c['mean'][dom][m]:.4f} ({n} seed{'s' if n > 1 else ''})"]
                        cells += _compare(tests[CROSS_BASELINE][dom][m])
                    else:
                        cells += ["not run", "", "", "", ""]
                    out.append("| " + " | ".join(cells) + " |")
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
        if not any(len(d["results"].get(proto, {}).get("ablations", {}).get(MODEL, {})) > 1 for d in docs):
            continue  # a grid without ablations (results/full-softmax): no empty table
        print(
            f"\n**Ablations, {proto}**: relative difference of each ablation's mean to tema's (test, mean "
            "over seeds); ▲/▼: both paired per-user tests (t-test, Wilcoxon) at p < 0.05, "
            "leaning the same way.\n"
        )
        print("\n".join(ablation_table(docs, proto)))


if __name__ == "__main__":
    main(sys.argv[1:] or ["results/amazon-food-kitchen.json", "results/amazon-art-office.json"])
