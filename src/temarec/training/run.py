"""One run: load data, split, train (selecting on validation), evaluate test, write `metrics.json`."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from temarec import __version__
from temarec.config import RunConfig, config_differences
from temarec.data.registry import load_dataset
from temarec.data.splits import VALIDATION_RULE, get_split
from temarec.evaluation.candidates import TooFewNegativesError, candidates_path, load_or_sample
from temarec.evaluation.evaluator import Evaluator
from temarec.evaluation.protocol import parse_protocol
from temarec.files import atomic_write
from temarec.models import build_model, needs_features
from temarec.settings import artifacts_root, slug
from temarec.training.trainer import BEST, CHECKPOINT, Trainer

log = logging.getLogger(__name__)


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
                f"{slug(ds.name)}-{ds.fingerprint()}",
                split.name,
                part,
                p.n_neg,
                cfg.eval.candidate_seed,
                cfg.eval.exclude_history,
            )
            try:
                cands = load_or_sample(
                    path, es, info, p.n_neg, cfg.eval.candidate_seed, cfg.eval.exclude_history, part
                )
            except TooFewNegativesError as e:  # name the user as the data does
                raise e.naming(str(ds.user_keys[e.user])) from None
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
    if not needs_features(cfg.model.name):
        return None
    from temarec.features.build import load_item_features, tags_off

    m = cfg.model
    feats = load_item_features(
        ds, cfg.features, progress=progress, use_text=m.use_text, use_tags=m.use_tags, use_image=m.use_image
    )
    if m.use_tags and feats.tag_ids is None and not tags_off(cfg.features.tags):  # tema without its tags
        log.warning(
            "no tag vocabulary for dataset %r: %s runs without tags (run `temarec tag --dataset ...` first, "
            "or set features.tags=none to say that this is meant)",
            ds.name,
            m.name,
        )
    return feats


#: what `run` writes in a run folder (`overwrite` removes these, and nothing else)
RUN_FILES = (
    "config.json",
    "metrics.json",
    "metrics-*.json",
    "ranks-*.npz",
    "epochs.jsonl",
    "epochs.csv",
    BEST,
    CHECKPOINT,
)


def run_fingerprint(cfg: RunConfig, ds) -> str:
    """What a run's checkpoint must match to be resumed (or served before it finished): its settings
    and its data. Without model.params while that is empty, so checkpoints from before it resume."""
    text = cfg.model_dump_json() if cfg.model.params else cfg.model_dump_json(exclude={"model": {"params"}})
    return hashlib.sha256((text + ds.fingerprint()).encode()).hexdigest()[:16]


class RunFolderError(ValueError):
    """The output folder holds a run of another configuration."""


def check_run_folder(output: Path, cfg: RunConfig) -> list[str]:
    """The settings where a run already in `output` differs from `cfg` (empty: none there, or the same
    run, which then resumes or is evaluated again)."""
    path = Path(output) / "config.json"
    if not path.is_file():
        return []
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return [f"config.json: unreadable ({e})"]
    if not isinstance(stored, dict):
        return ["config.json: not a JSON object"]
    return config_differences(json.loads(cfg.model_dump_json()), stored, ignore=None)


def clear_run_folder(output: Path) -> list[Path]:
    """Remove what an earlier run wrote in `output` (`RUN_FILES`); other files are left alone."""
    removed = []
    for pattern in RUN_FILES:
        for p in sorted(Path(output).glob(pattern)):
            if p.is_file():
                p.unlink()
                removed.append(p)
    return removed


def run(cfg: RunConfig, output: Path, progress: bool = True, dataset=None, overwrite: bool = False) -> dict:
    """Train and evaluate as configured; returns the metrics document of the first protocol.

    A folder that holds a run of another configuration is refused before anything is written (its
    files would otherwise sit beside the new run's, or its checkpoint block the resume), unless
    `overwrite`, which removes the earlier run's files first. The same configuration resumes.
    """
    output = Path(output)
    diffs = check_run_folder(output, cfg)
    if overwrite:
        clear_run_folder(output)
    elif diffs:
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise RunFolderError(
            f"{output} holds a run of another configuration ({shown}); give another --output, or "
            "--overwrite to replace that run"
        )
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
    output.mkdir(parents=True, exist_ok=True)  # only now: a run refused above leaves no folder behind
    _write_json(output / "config.json", json.loads(cfg_json))
    fit_info: dict = {}
    if model.trainable:
        selector = valid_eval[protocols[0]]
        fingerprint = run_fingerprint(cfg, ds)
        trainer = Trainer(
            model,
            split.train,
            selector.evaluate,
            cfg.train,
            output,
            cfg.data.max_len,
            config_fingerprint=fingerprint,
            progress=progress,
            tags_fingerprint=features.tag_fingerprint if features is not None else None,
        )
        fit_info = trainer.fit()
    docs = evaluate_and_record(
        model,
        ds,
        split,
        cfg,
        valid_eval,
        test_eval,
        features,
        fit_info,
        t_start,
        files=lambda p: metrics_files(output, cfg, p),
    )
    return docs[protocols[0]]


def _save_ranks(path: Path, v, t) -> None:
    """Per-instance ranks of validation and test (for paired tests), written atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy would add '.npz' to a temp name
            np.savez_compressed(
                f,
                valid_ranks=v.ranks,
                valid_users=v.users,
                valid_domain=v.target_domain,
                test_ranks=t.ranks,
                test_users=t.users,
                test_domain=t.target_domain,
            )

    atomic_write(path, write)


def metrics_files(output: Path, cfg: RunConfig, protocol: str, candidate_seed: int | None = None):
    """Where a protocol's metrics and ranks go in a run folder: `metrics.json` for the protocol that
    selected the checkpoint, else `metrics-<protocol>.json`, and `ranks-<protocol>.npz`. A candidate draw
    other than the run's (`candidate_seed`) gets its own suffix, so that a report or a significance test
    never takes it for the run's own numbers."""
    p = parse_protocol(protocol)
    tag = p.name
    if candidate_seed is not None and candidate_seed != cfg.eval.candidate_seed and not p.is_full:
        tag = f"{p.name}-candidates{candidate_seed}"
    first = parse_protocol(cfg.eval.protocols[0]).name
    metrics = output / ("metrics.json" if tag == first else f"metrics-{tag}.json")
    return metrics, output / f"ranks-{tag}.npz"


def evaluate_and_record(
    model,
    ds,
    split,
    cfg: RunConfig,
    valid_eval: dict[str, Evaluator],
    test_eval: dict[str, Evaluator],
    features,
    fit_info: dict,
    t_start: float,
    files,
    candidate_seed: int | None = None,
    extra: dict | None = None,
) -> dict[str, dict]:
    """Evaluate validation and test under each protocol and write what `files(protocol)` names.

    `files(protocol)` gives the (metrics.json, ranks.npz) paths of a protocol, or None to write
    nothing for it. Everything is evaluated before anything is written, and `metrics.json` (the file
    that marks a run finished) is written last. `cfg` is the run's config; `candidate_seed` the draw the
    sampled evaluators use when it is not the run's. Returns the metrics document of each protocol.
    """
    docs, ranks, code, data_fp = {}, {}, code_info(), ds.fingerprint()
    select = parse_protocol(cfg.eval.protocols[0]).name
    for p in valid_eval:
        v = valid_eval[p].evaluate(model)
        t = test_eval[p].evaluate(model)
        ranks[p] = (v, t)
        docs[p] = {
            "dataset": ds.name,
            "model": cfg.model.name,
            "data_fingerprint": data_fp,
            "split": split.name,
            "protocol": p,
            "selected_on": f"valid {select} mean over domains of {cfg.train.select_metric}",
            "validation_rule": VALIDATION_RULE,
            "seed": cfg.train.seed,
            # full ranking draws nothing: it keeps the run's seed, so it pairs with the run's own files
            "candidate_seed": cfg.eval.candidate_seed
            if candidate_seed is None or parse_protocol(p).is_full
            else candidate_seed,
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
            **(extra or {}),
        }
    targets = [(p, t) for p in docs if (t := files(p)) is not None]
    targets.sort(key=lambda pt: pt[1][0].name == "metrics.json")  # False first: metrics.json last
    for p, (metrics, rank_file) in targets:
        _save_ranks(rank_file, *ranks[p])
        _write_json(metrics, docs[p])
    return docs


def require_finished(path: Path, then: str) -> None:
    """ValueError unless the run in `path` finished: `metrics.json` is written last, so without it the
    weights are an unfinished run's best so far and there are no test metrics to use."""
    if not (Path(path) / "metrics.json").is_file():
        raise ValueError(
            f"{path}: no metrics.json, so its training has not finished; rerun its `temarec train` "
            f"command to resume it, then {then}"
        )


def evaluate_run(
    path: str | Path,
    protocols: list[str] | str,
    candidate_seed: int | None = None,
    dataset=None,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, dict]:
    """Evaluate a finished run's selected checkpoint again, under other protocols or candidate draws.

    Nothing is retrained or reselected: the weights are those `temarec train` selected on validation.
    Each protocol's metrics and ranks go into the run folder beside the run's own (`metrics_files`),
    unless that file exists and `overwrite` is off; the documents are returned either way, each with
    `written` (the metrics file, or None where an existing one was kept).
    """
    from temarec.serving.load import load_run

    path = Path(path)
    t_start = time.perf_counter()
    if isinstance(protocols, str):  # one name, not its letters
        protocols = [protocols]
    names = [parse_protocol(p).name for p in protocols]  # a bad name fails before anything is loaded
    if not names:
        raise ValueError("no protocol to evaluate: give at least one (full, uni999, uniN)")
    own = path / "metrics.json"
    if (path / "config.json").is_file():
        require_finished(path, "evaluate")
    loaded = load_run(path, dataset=dataset, progress=progress)
    cfg = loaded.cfg
    seed = cfg.eval.candidate_seed if candidate_seed is None else candidate_seed
    ecfg = cfg.model_copy(
        update={"eval": cfg.eval.model_copy(update={"protocols": names, "candidate_seed": seed})}
    )
    split = loaded.split
    valid_eval = build_evaluators(loaded.ds, split, ecfg, "valid")
    test_eval = build_evaluators(loaded.ds, split, ecfg, "test")
    fit_info = json.loads(own.read_text(encoding="utf-8")).get("training", {})
    written: dict[str, Path | None] = {}

    def files(p: str):
        metrics, ranks = metrics_files(path, cfg, p, seed)
        written[p] = metrics if overwrite or not metrics.exists() else None
        return None if written[p] is None else (metrics, ranks)

    docs = evaluate_and_record(
        loaded.model,
        loaded.ds,
        split,
        cfg,
        valid_eval,
        test_eval,
        loaded.features,
        fit_info,
        t_start,
        files=files,
        candidate_seed=seed,
        extra={"evaluated_after_training": True},
    )
    return {p: {**doc, "written": None if written[p] is None else str(written[p])} for p, doc in docs.items()}
