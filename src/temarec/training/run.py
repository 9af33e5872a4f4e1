"""One run: load data, split, train (selecting on validation), evaluate test, write `metrics.json`."""

from __future__ import annotations

import hashlib
import json
import platform
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from temarec import __version__
from temarec.config import RunConfig
from temarec.data.registry import load_dataset
from temarec.data.splits import get_split
from temarec.evaluation.candidates import candidates_path, load_or_sample
from temarec.evaluation.evaluator import Evaluator
from temarec.evaluation.protocol import parse_protocol
from temarec.models import build_model, build_model_class
from temarec.settings import artifacts_root
from temarec.training.trainer import Trainer, atomic_write


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "temarec": __version__,
    }


def code_info(where: Path | None = None) -> dict:
    """The code that produced a result: temarec's version and, from a git checkout, the commit.

    `git_dirty` says whether tracked files differed from that commit, in which case the commit alone does
    not reproduce the run. Both are None where the package is not in a git checkout (a wheel install) or
    git is missing.
    """
    where = Path(__file__).resolve().parent if where is None else where
    out: dict = {"temarec": __version__, "git_commit": None, "git_dirty": None}

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(
                ["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit:
        status = git("status", "--porcelain", "--untracked-files=no")
        out["git_commit"] = commit
        out["git_dirty"] = None if status is None else bool(status)
    return out


def _write_json(path: Path, obj: dict) -> None:
    text = json.dumps(obj, indent=2)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def build_evaluators(ds, split, cfg: RunConfig, part: str) -> dict[str, Evaluator]:
    """One evaluator per protocol for `part` ('valid' or 'test'), candidates loaded or drawn once."""
    info = ds.info()
    es = getattr(split, part)
    out = {}
    for name in cfg.eval.protocols:
        p = parse_protocol(name)
        cands = None
        if not p.is_full:
            path = candidates_path(
                artifacts_root(),
                f"{ds.name}-{ds.fingerprint()}",
                split.name,
                part,
                p.n_neg,
                cfg.eval.candidate_seed,
                cfg.eval.exclude_history,
            )
            cands = load_or_sample(path, es, info, p.n_neg, cfg.eval.candidate_seed, cfg.eval.exclude_history)
        out[p.name] = Evaluator(
            info,
            es,
            p,
            cands,
            max_len=cfg.data.max_len,
            batch_size=cfg.eval.batch_size,
            ties=cfg.eval.ties,
            exclude_history=cfg.eval.exclude_history,
        )
    return out


def features_for(ds, cfg: RunConfig, progress: bool = True):
    """The item features the configured model reads (built once, then from the cache), or None."""
    if not getattr(build_model_class(cfg.model.name), "needs_features", False):
        return None
    from temarec.features.build import load_item_features

    m = cfg.model
    return load_item_features(
        ds, cfg.features, progress=progress, use_text=m.use_text, use_tags=m.use_tags, use_image=m.use_image
    )


def run(cfg: RunConfig, output: Path, progress: bool = True, dataset=None) -> dict:
    """Train and evaluate as configured; returns the metrics document of the first protocol."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    t_start = time.perf_counter()
    ds = dataset if dataset is not None else load_dataset(cfg.data.dataset, demo_seed=cfg.data.demo_seed)
    split = get_split(ds, cfg.data.split)
    info = ds.info()
    protocols = [parse_protocol(p).name for p in cfg.eval.protocols]
    valid_eval = build_evaluators(ds, split, cfg, "valid")
    test_eval = build_evaluators(ds, split, cfg, "test")
    features = features_for(ds, cfg, progress)
    model = build_model(info, cfg.model, cfg.data.max_len, features=features)
    model.fit_static(split.train)  # popularity, seen items: statistics of the training data only
    cfg_json = cfg.model_dump_json()
    _write_json(output / "config.json", json.loads(cfg_json))
    fit_info: dict = {}
    if model.trainable:
        selector = valid_eval[protocols[0]]
        fingerprint = hashlib.sha256((cfg_json + ds.fingerprint()).encode()).hexdigest()[:16]
        trainer = Trainer(
            model,
            split.train,
            selector.evaluate,
            cfg.train,
            output,
            cfg.data.max_len,
            config_fingerprint=fingerprint,
            progress=progress,
        )
        fit_info = trainer.fit()
    docs, code = {}, code_info()
    for p in protocols:
        v = valid_eval[p].evaluate(model)
        t = test_eval[p].evaluate(model)
        np.savez_compressed(
            output / f"ranks-{p}.npz",
            valid_ranks=v.ranks,
            valid_users=v.users,
            valid_domain=v.target_domain,
            test_ranks=t.ranks,
            test_users=t.users,
            test_domain=t.target_domain,
        )
        docs[p] = {
            "dataset": ds.name,
            "model": cfg.model.name,
            "split": split.name,
            "protocol": p,
            "selected_on": f"valid {protocols[0]} mean over domains of {cfg.train.select_metric}",
            "seed": cfg.train.seed,
            "candidate_seed": cfg.eval.candidate_seed,
            "exclude_history": cfg.eval.exclude_history,
            "ties": cfg.eval.ties,
            "valid": v.metrics,
            "test": t.metrics,
            "training": fit_info,
            "features": features.describe() if features is not None else None,
            "wall_seconds": round(time.perf_counter() - t_start, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "machine": machine_info(),
            "code": code,
        }
    _write_json(output / "metrics.json", docs[protocols[0]])
    for p in protocols[1:]:
        _write_json(output / f"metrics-{p}.json", docs[p])
    return docs[protocols[0]]
