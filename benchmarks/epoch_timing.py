"""Seconds per training epoch and peak memory of each model on one dataset, measured in isolation.

Each model trains for a few epochs in its own subprocess (so peak RSS is its own) with the thread count
given; the first epoch is reported separately (warm-up). Results go to a JSON file and stdout.

Usage: python benchmarks/epoch_timing.py --dataset amazon-food-kitchen --models sasrec,tema --epochs 2 \
           --threads 2 --out results/amazon-food-kitchen/timing.json [--set model.softmax_negatives=1000 ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path


def measure(dataset: str, model: str, epochs: int, threads: int, overrides: list[str]) -> dict:
    import numpy as np
    import torch

    from temarec.config import load_config
    from temarec.data.registry import load_dataset
    from temarec.data.splits import get_split
    from temarec.models import build_model
    from temarec.training.run import features_for
    from temarec.training.trainer import Trainer

    torch.set_num_threads(threads)
    cfg = load_config(None, [f"data.dataset={dataset}", f"model.name={model}", *overrides])
    ds = load_dataset(dataset)
    split = get_split(ds, cfg.data.split)
    features = features_for(ds, cfg, progress=False)
    torch.manual_seed(0)
    net = build_model(ds.info(), cfg.model, cfg.data.max_len, features=features)
    net.fit_static(split.train)
    trainer = Trainer(
        net, split.train, lambda _: None, cfg.train, Path("/nonexistent"), cfg.data.max_len, progress=False
    )
    secs = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        trainer.train_epoch()
        secs.append(time.perf_counter() - t0)
    return {
        "model": model,
        "threads": threads,
        "epoch_seconds": [round(s, 2) for s in secs],
        "seconds_per_epoch": round(float(np.mean(secs[1:] if len(secs) > 1 else secs)), 2),
        "sequences_per_epoch": len(trainer.windows),
        "parameters": sum(p.numel() for p in net.parameters()),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "overrides": overrides,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="amazon-food-kitchen")
    ap.add_argument("--models", default="sasrec,gru4rec,sasrec-single")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(measure(a.dataset, a.one, a.epochs, a.threads, a.overrides)))
        return
    rows = []
    for model in a.models.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--dataset",
            a.dataset,
            "--epochs",
            str(a.epochs),
            "--threads",
            str(a.threads),
            "--one",
            model,
        ] + [f"--set={o}" for o in a.overrides]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
        print(json.dumps(rows[-1]))
    doc = {
        "dataset": a.dataset,
        "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count()},
        "note": "train epochs only (no validation); first epoch excluded from the mean",
        "runs": rows,
    }
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
