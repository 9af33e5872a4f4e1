"""benchmarks/summarize.py: the README's per-dataset tables laid out from the bench report's JSON."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "summarize.py"
_spec = importlib.util.spec_from_file_location("summarize", _PATH)
summarize = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(summarize)


def _variant(seeds: list[int], hr: float, std: float | None, baseline: bool) -> dict:
    cols = {"HR@10": hr, "NDCG@10": hr / 2, "MRR": hr / 3}
    return {
        "seeds": seeds,
        "mean": {d: dict(cols) for d in ("A", "B", "all")},
        "std": {d: {m: std for m in cols} for d in ("A", "B", "all")},
        "model": "tema" if not baseline else "sasrec",
        "baseline": baseline,
    }


def _run(variant: str, seed: int, spe: float | None, rss: float) -> dict:
    return {
        "variant": variant, "seed": seed, "epochs": None if spe is None else 5,
        "best_epoch": None if spe is None else 3, "seconds_per_epoch": spe,
        "wall_seconds": 10.0 + seed, "peak_rss_mb": rss,
    }  # fmt: skip


def _doc() -> dict:
    test = {"diff": -0.1, "significant": True}
    block = {
        "domains": ["A", "B", "all"],
        "variants": {
            "sasrec": _variant([0], 0.5, None, True),
            "tema": _variant([0, 1], 0.4, 0.01, False),
            "tema-no-tags": _variant([0], 0.1, None, False),
        },
        "significance": {
            "tema": {d: dict.fromkeys(("HR@10", "NDCG@10", "MRR"), test) for d in ("A", "B", "all")}
        },
    }
    runs = [_run("sasrec", 0, 2.0, 100.0), _run("tema", 0, 4.0, 300.0), _run("tema", 1, 6.0, 500.0)]
    return {"results": {"uni999": block, "full": block}, "runs": runs + [_run("tema-no-tags", 0, None, 50.0)]}


def test_one_row_per_variant_from_the_report():
    text = summarize.tables(_doc())
    assert text.index("**full**") < text.index("**uni999**")
    results = text.split("| variant | s/epoch")[0]  # the timing table repeats the variant names
    rows = {line.split(" | ")[0].lstrip("| "): line for line in results.splitlines() if line.startswith("| ")}
    assert rows["sasrec (baseline)"].startswith("| sasrec (baseline) | 0 | **0.5000** |")
    assert rows["tema"].startswith("| tema | 0,1 | 0.4000 ± 0.0100 ▼ |")
    assert rows["tema-no-tags"].startswith("| tema-no-tags | 0 | 0.1000 |")


def test_timing_rows_aggregate_runs_of_a_variant():
    lines = summarize.timing(_doc()["runs"]).splitlines()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert rows["tema"] == "| tema | 5.0 | 5,5 | 3,3 | 10 | 500 |"
    assert rows["tema-no-tags"] == "| tema-no-tags | – | – | – | 10 | 50 |"
