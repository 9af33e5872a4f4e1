"""Latency of explained recommendations from a finished run, by request size, as `temarec serve` answers.

Loads the run once (as the server does), then times `explained_recommendations` (ranking + the tags that
explain each item, every domain) for requests of 1, 10, 100 and 1,000 users, split into the model's part
(`rank_histories`) and the rest (explanations, JSON records). Each size is repeated and the median kept;
the first request (which encodes the catalogue once) is reported apart. The load average before and after
is recorded: numbers taken while something else runs are not this machine's.

Usage: python benchmarks/serving_latency.py RUN --out results/serving.json [--sizes 1,10,100,1000]
           [--k 10] [--repeat 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sizes", default="1,10,100,1000")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import numpy as np
    import torch

    from temarec.serving.load import load_run
    from temarec.serving.recommend import explained_recommendations, rank_histories
    from temarec.training.run import code_info, machine_info

    torch.set_num_threads(a.threads)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    run = load_run(a.run)
    load_s = time.perf_counter() - t0
    ds = run.ds
    doms = list(range(len(ds.domains)))
    t0 = time.perf_counter()
    explained_recommendations(run, [str(ds.user_keys[0])], k=a.k)
    first_s = time.perf_counter() - t0
    rows = []
    for n in (int(x) for x in a.sizes.split(",")):
        users = np.arange(min(n, len(ds.user_keys)))
        keys = [str(u) for u in ds.user_keys[users]]
        total, model = [], []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            rank_histories(run.model, ds, ds.sequences.take(users), doms, k=a.k, max_len=run.cfg.data.max_len)
            model.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            explained_recommendations(run, keys, k=a.k)
            total.append(time.perf_counter() - t0)
        med = statistics.median(total)
        rows.append(
            {
                "users": len(users),
                "seconds": round(med, 4),
                "model_seconds": round(statistics.median(model), 4),
                "users_per_second": round(len(users) / med, 1),
            }
        )
        print(f"{len(users):>5} users: {med:.3f} s ({rows[-1]['model_seconds']:.3f} s model)", flush=True)
    doc = {
        "run": str(a.run),
        "model": run.cfg.model.name,
        "dataset": ds.name,
        "domains": list(ds.domains),
        "k": a.k,
        "threads": a.threads,
        "repeat": a.repeat,
        "load_run_seconds": round(load_s, 2),
        "first_request_seconds": round(first_s, 3),
        "requests": rows,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine_info(),
        "code": code_info(),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
