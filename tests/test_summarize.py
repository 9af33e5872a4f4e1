"""benchmarks/summarize.py: one row per bench variant (folder), never ablations averaged into tema."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "summarize.py"
_spec = importlib.util.spec_from_file_location("summarize", _PATH)
summarize = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(summarize)


def _doc(seed: int, hr: float) -> dict:
    m = {"HR@10": hr, "NDCG@10": hr / 2, "MRR": hr / 3}
    return {
        "model": "tema",  # ablations carry the model name of tema
        "protocol": "full",
        "seed": seed,
        "test": {"A": m, "B": m, "all": m},
        "training": {"seconds_per_epoch": 1.0, "epochs": 3, "best_epoch": 2},
        "wall_seconds": 10.0,
        "peak_rss_mb": 100.0,
    }


def test_rows_follow_variant_folders(tmp_path):
    for variant, seed, hr in [("tema", 0, 0.4), ("tema", 1, 0.2), ("tema-no-tags", 0, 0.1)]:
        d = tmp_path / variant / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps(_doc(seed, hr)))
    data = summarize.collect(tmp_path)
    assert {k: len(v) for k, v in data["full"].items()} == {"tema": 2, "tema-no-tags": 1}
    lines = summarize.table(data["full"], "full").splitlines()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines}
    assert rows["tema"].startswith("| tema | 0,1 | 0.3000 ± 0.1414")
    assert rows["tema-no-tags"].startswith("| tema-no-tags | 0 | 0.1000")
