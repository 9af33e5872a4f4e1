"""Do the tags help most on rare items? tema against tema-no-tags (and against the best single-model
baseline) inside every target-popularity bucket, with paired per-user tests.

Issue 5 asks to measure it; the report's breakdown tables give bucket means only. Reads the finished cells
of the `paper` bench under `results/` (the same cells its report reads: stale or unfinished ones are left
out) and the dataset's split (from `TEMAREC_DATA`, default ../shared/data), and writes
`results/tags-by-popularity.md` and `.json`.

Usage: python benchmarks/tags_by_popularity.py [amazon-food-kitchen amazon-art-office]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from temarec.bench.config import load_bench_config
from temarec.bench.figures import bucket_tests
from temarec.bench.report import collect, md_table
from temarec.bench.runner import build_cells, plan, select
from temarec.evaluation.significance import format_p, significant

ROOT = Path(__file__).resolve().parents[1] / "results"
MODEL, NO_TAGS = "tema", "tema-no-tags"
SINGLE_BASELINES = ("gru4rec", "sasrec", "sasrec-single")  # pop ranks by popularity: not a content question
METRIC = "NDCG@10"
PROTOCOLS = ("full", "uni999")


def runs_of(dataset: str) -> dict[str, list[Path]]:
    """variant -> the seed folders of its `done` cells in the paper bench (the report's own selection)."""
    cells = select(build_cells(load_bench_config("paper"), output=ROOT), f"{dataset}/")
    return {v: [r.dir for r in rs] for v, rs in collect(plan(cells)).items()}


def best_single(dataset: str, protocol: str) -> str | None:
    """The single-model baseline with the highest overall NDCG@10 in the dataset's bench report."""
    report = ROOT / f"{dataset}.json"
    if not report.is_file():
        return None
    variants = json.loads(report.read_text())["results"][protocol]["variants"]
    ran = [b for b in SINGLE_BASELINES if b in variants]
    return max(ran, key=lambda b: variants[b]["mean"]["all"][METRIC]) if ran else None


def _row(label: str, t: dict) -> list[str]:
    rel = f"{100 * t['diff'] / t['mean_b']:+.0f}%" if t["mean_b"] else "–"
    verdict = ("**higher**" if t["diff"] > 0 else "**lower**") if significant(t) else "n.s."
    return [
        label,
        str(t["n"]),
        f"{t['mean_a']:.4f}",
        f"{t['mean_b']:.4f}",
        f"{t['diff']:+.4f} ({rel})",
        format_p(t["t_p"]),
        format_p(t["wilcoxon_p"]),
        verdict,
    ]


def section(dataset: str, split, runs: dict[str, list[Path]], protocol: str) -> tuple[list[str], dict]:
    lines, doc = [], {}
    for other in (NO_TAGS, best_single(dataset, protocol)):
        if other is None or other not in runs or MODEL not in runs:
            continue
        tests = bucket_tests(runs, protocol, split, MODEL, other, metric=METRIC)
        doc[other] = tests
        seeds = f"{MODEL} {len(runs[MODEL])} seeds, {other} {len(runs[other])}"
        lines += [f"**{dataset}, {protocol}: {MODEL} against {other}** ({seeds})", ""]
        head = [
            "target seen in training",
            "n",
            MODEL,
            other,
            "difference",
            "t p",
            "W p",
            "both p < .05, same way",
        ]
        lines += md_table(head, [_row(label, t) for label, t in tests.items()])
        lines.append("")
    return lines, doc


def main(datasets: list[str]) -> None:
    from temarec.data.registry import load_dataset
    from temarec.data.splits import get_split

    md = [
        "# Tags by target popularity",
        "",
        f"Written by `benchmarks/tags_by_popularity.py`. Test {METRIC} of `{MODEL}` against `{NO_TAGS}` and "
        "against the best single-model baseline (highest overall NDCG@10 in the report), inside each bucket "
        "of how often the test target occurs in the training sequences (0 = cold item). Per instance the "
        "metric is averaged over the seeds, then paired t-test (t) and Wilcoxon signed-rank (W) over the "
        "bucket's test users. Buckets are those of the report's breakdown figures.",
        "",
    ]
    out: dict = {}
    for ds in datasets:
        runs = runs_of(ds)
        if not runs:
            md += [f"*{ds}: no run folders under results/{ds}.*", ""]
            continue
        try:
            split = get_split(load_dataset(ds), "auto")
        except (FileNotFoundError, OSError, ValueError) as e:
            print(f"skipping {ds}: its data could not be loaded ({e}); set TEMAREC_DATA", file=sys.stderr)
            md += [f"*{ds}: data not available when this was written.*", ""]
            continue
        for p in PROTOCOLS:
            lines, doc = section(ds, split, runs, p)
            md += lines
            out.setdefault(ds, {})[p] = doc
    (ROOT / "tags-by-popularity.md").write_text("\n".join(md), encoding="utf-8")
    (ROOT / "tags-by-popularity.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(f"wrote {ROOT / 'tags-by-popularity.md'}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["amazon-food-kitchen", "amazon-art-office"])
