"""Run a bench grid: list its cells, decide which are finished, run the others in their own processes.

A cell is one `temarec train` run in `<output>/<dataset>/<variant>/seed<N>/`. Each runs as a subprocess,
so it has its own peak memory (measured with `wait4`) and a crash fails that cell only; its output goes to
the folder's `train.log`, the bench's own measurements to `bench.json`.

A cell's state:

* **done**: every protocol's metrics file is there and its `config.json` is the run config this cell
  would use now (see `config_differences`); it is skipped.
* **stale**: its `config.json` differs from that; it is listed with the differences and skipped, unless
  `--rerun-stale` (its outputs are then deleted and it runs again).
* **partial**: a checkpoint without metrics (an interrupted run); the trainer resumes it.
* **todo**: nothing there yet.
* **skip**: it cannot run here (its dataset is absent); the reason is shown.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from temarec.bench.config import BenchConfig
from temarec.config import RunConfig, config_differences

#: config keys that change how a run executes, not what it computes: ignored when deciding staleness
STATES = ("done", "partial", "todo", "stale", "skip")
CHECKPOINT = "checkpoint.pt"  # temarec.training.trainer.CHECKPOINT (not imported: it pulls in torch)
BENCH_FILE = "bench.json"
_OFF = {"", "none", "off", "false", "no"}


def say(msg: str) -> None:
    """Print a line without breaking a progress bar."""
    tqdm.write(msg)


@dataclass
class Cell:
    """One run of the grid."""

    dataset: str  # as written in the config (a name, or a path)
    dataset_key: str  # its folder and report name
    variant: str
    model: str
    seed: int
    dir: Path
    args: list[str]  # `temarec train` arguments, without --output
    protocols: list[str]
    run_config: RunConfig

    @property
    def name(self) -> str:
        return f"{self.dataset_key}/{self.variant}/seed{self.seed}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "temarec.cli",
            "train",
            *self.args,
            "--output",
            str(self.dir),
            "--quiet",
        ]

    def metrics_files(self) -> list[Path]:
        """Each protocol's metrics file, named by the rule `temarec train` writes them with."""
        from temarec.training.run import metrics_files

        return [metrics_files(self.dir, self.run_config, p)[0] for p in self.protocols]


@dataclass
class CellStatus:
    cell: Cell
    state: str
    detail: str = ""
    diffs: list[str] = field(default_factory=list)


@dataclass
class CellResult:
    cell: Cell
    returncode: int
    wall_seconds: float
    peak_rss_mb: float | None
    message: str = ""


def select(cells: list[Cell], only: str | list[str] | None) -> list[Cell]:
    """The cells whose name (`dataset/variant/seedN`) contains `only`, or one of several (all without)."""
    only = [only] if isinstance(only, str) else list(only or [])
    return [c for c in cells if not only or any(o in c.name for o in only)]


def build_cells(cfg: BenchConfig, output: Path | None = None) -> list[Cell]:
    """Every cell of the grid in display order (dataset, variant, seed); `select` narrows them."""
    root = Path(output or cfg.output)
    cells = []
    for d in cfg.datasets:
        key = cfg.dataset_key(d)
        for v in cfg.variants:
            for s in cfg.variant_seeds(v):
                cells.append(
                    Cell(
                        dataset=d,
                        dataset_key=key,
                        variant=v,
                        model=cfg.variant_model(v),
                        seed=s,
                        dir=root / key / v / f"seed{s}",
                        args=cfg.cell_args(d, v, s),
                        protocols=list(cfg.protocols),
                        run_config=cfg.run_config(d, v, s),
                    )
                )
    return cells


# ---- staleness ---------------------------------------------------------------------------------------
def _needs_features(model: str) -> bool | None:
    from temarec.models import needs_features  # here: the models import torch

    return needs_features(model)


def cell_status(cell: Cell) -> CellStatus:
    """The state of a cell from its folder alone (see the module docstring)."""
    cfg_file = cell.dir / "config.json"
    if cfg_file.is_file():
        try:
            stored = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            return CellStatus(cell, "stale", f"unreadable config.json: {e}", [f"config.json: {e}"])
        diffs = config_differences(cell.run_config.model_dump(mode="json"), stored)
        if diffs:
            return CellStatus(cell, "stale", "; ".join(diffs), diffs)
    if all(p.is_file() for p in cell.metrics_files()):
        if cfg_file.is_file():
            return CellStatus(cell, "done")
        return CellStatus(cell, "stale", "metrics without config.json", ["config.json: absent"])
    if (cell.dir / CHECKPOINT).is_file():
        detail = "interrupted: resumes from checkpoint.pt"
        if cfg_file.is_file():
            detail += _adopt_threads(cell, stored)
        return CellStatus(cell, "partial", detail)
    return CellStatus(cell, "todo")


def _adopt_threads(cell: Cell, stored: dict) -> str:
    """Resume an interrupted run with the threads it started with: the trainer resumes only a checkpoint
    whose full config matches, and threads do not change the numbers."""
    old = stored.get("train", {}).get("threads")
    if old == cell.run_config.train.threads:
        return ""
    i = cell.args.index(f"train.threads={cell.run_config.train.threads}")
    cell.args[i] = f"train.threads={'null' if old is None else old}"
    cell.run_config = cell.run_config.model_copy(
        update={"train": cell.run_config.train.model_copy(update={"threads": old})}
    )
    return f" (with train.threads={old}, as it started)"


def dataset_problem(dataset: str) -> str | None:
    """Why a dataset cannot be loaded here (None when it can)."""
    if dataset == "demo":
        return None
    from temarec.data.errors import DatasetNotFoundError
    from temarec.data.registry import resolve

    try:
        resolve(dataset)
    except DatasetNotFoundError as e:
        return str(e)
    return None


def _stored_metrics(cell: Cell) -> dict:
    """A finished cell's `metrics.json` ({} where unreadable)."""
    try:
        doc = json.loads((cell.dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def stored_data_fingerprint(cell: Cell) -> str | None:
    """The fingerprint of the data a finished cell ran on (None for runs written before it was stored)."""
    return _stored_metrics(cell).get("data_fingerprint")


def stored_tags_fingerprint(cell: Cell) -> str | None:
    """The fingerprint of the tag vocabulary a finished cell read (None: no tags, or written before)."""
    feats = _stored_metrics(cell).get("features")
    tags = feats.get("tags") if isinstance(feats, dict) else None
    return tags.get("fingerprint") if isinstance(tags, dict) else None


def current_data_fingerprint(dataset: str, demo_seed: int) -> tuple[str, str] | None:
    """The dataset's (fingerprint, name) now (None where it cannot be loaded here)."""
    from temarec.data.registry import load_dataset

    if dataset_problem(dataset):
        return None
    try:
        ds = load_dataset(dataset, demo_seed=demo_seed)
    except Exception:  # noqa: BLE001 - an unreadable dataset: its cells cannot be checked, keep them
        return None
    return ds.fingerprint(), ds.name


def current_tags_fingerprint(dataset_name: str, tags: str | None) -> str | None:
    """The fingerprint of the vocabulary `features.tags` names now; None where none resolves."""
    from temarec.features.build import resolve_tag_source, tag_vocab_fingerprint

    try:
        folder = resolve_tag_source(dataset_name, tags)
        return None if folder is None else tag_vocab_fingerprint(folder)
    except (ValueError, OSError):
        return None


def _content_changes(c: Cell, memo: dict) -> list[str]:
    """What changed in a finished cell's inputs since it ran: its dataset, its tag vocabulary. Cells
    written before these were stored are not judged; `memo` keeps what was loaded for the next cell."""
    stored_data, stored_tags = stored_data_fingerprint(c), stored_tags_fingerprint(c)
    if not (stored_data or stored_tags):
        return []
    key = (c.dataset, c.run_config.data.demo_seed)
    if key not in memo:
        memo[key] = current_data_fingerprint(*key)
    if memo[key] is None:
        return []
    data_fp, name = memo[key]
    out = []
    if stored_data and data_fp != stored_data:
        out.append(f"data: fingerprint {stored_data} -> {data_fp} (the dataset changed since this run)")
    if stored_tags:
        tkey = (name, c.run_config.features.tags)
        if tkey not in memo:
            memo[tkey] = current_tags_fingerprint(*tkey)
        now = memo[tkey]
        if now != stored_tags:
            out.append(
                f"tags: fingerprint {stored_tags} -> {now or 'none'} (features.tags="
                f"{c.run_config.features.tags!r} names other tags than this run read)"
            )
    return out


def plan(cells: list[Cell], fingerprints: dict | None = None) -> list[CellStatus]:
    """States of `cells`; cells that would run but cannot (absent dataset, unknown model) become `skip`.

    A finished cell whose inputs changed since it ran (the data or tag-vocabulary fingerprint stored in its
    `metrics.json` is not what the dataset or `features.tags` gives now) is `stale`, as is one whose
    config changed: its numbers are not this data's. `fingerprints` memoises what was loaded to tell,
    across calls (`run_bench` plans twice).
    """
    fingerprints = {} if fingerprints is None else fingerprints
    problems: dict[str, str | None] = {}
    out = []
    for c in cells:
        st = cell_status(c)
        changes = _content_changes(c, fingerprints) if st.state == "done" else []
        if changes:
            st = CellStatus(c, "stale", "; ".join(changes), changes)
        if st.state in ("todo", "partial"):
            if c.dataset not in problems:
                problems[c.dataset] = dataset_problem(c.dataset)
            if problems[c.dataset]:
                st = CellStatus(c, "skip", f"dataset {c.dataset!r} is not available")
        out.append(st)
    return out


# ---- preparation: tags and item features, once per dataset before its cells ---------------------------
def _expand(options: dict[str, Any]) -> dict[str, Any]:
    from temarec.settings import data_root

    root = str(data_root())
    return {k: v.replace("${TEMAREC_DATA}", root) if isinstance(v, str) else v for k, v in options.items()}


def prepare(cfg: BenchConfig, cells: list[Cell]) -> None:
    """Create missing tags (`cfg.tags`) and fill the item-feature cache before content-aware cells start,
    so that parallel cells do not each embed the same catalogue. A failure here is reported and left to
    the cells, whose logs then say what is wrong."""
    by_ds: dict[str, list[Cell]] = {}
    for c in cells:
        if _needs_features(c.model):
            by_ds.setdefault(c.dataset, []).append(c)
    for dataset, fcells in by_ds.items():
        try:
            _prepare_dataset(cfg, dataset, fcells)
        except Exception as e:  # noqa: BLE001 - reported, the cells will fail with the full error
            say(f"warning: preparing {dataset} failed ({type(e).__name__}: {e}); its cells will say more")


def _prepare_dataset(cfg: BenchConfig, dataset: str, cells: list[Cell]) -> None:
    from temarec.data.registry import load_dataset
    from temarec.features.build import load_item_features
    from temarec.pipeline import tag_catalogue, tag_folder

    ds = load_dataset(dataset)
    rcs = [c.run_config for c in cells]
    spec = cfg.tags.get(dataset)
    wants_tags = any(r.model.use_tags and str(r.features.tags).strip().lower() not in _OFF for r in rcs)
    if spec is not None and wants_tags and not (tag_folder(ds, spec.source_name) / "vocab.json").is_file():
        say(f"{dataset}: tag source {spec.source_name!r} is missing; creating it ({spec.backend} backend)")
        t0 = time.perf_counter()
        _, summary = tag_catalogue(
            ds,
            spec.backend,
            source=spec.source_name,
            refine=spec.refine,
            progress=True,
            **_expand(spec.options),
        )
        say(
            f"{dataset}: tagged {summary['tagged']:,} items, vocabulary {summary['vocab_size']:,} tags "
            f"({time.perf_counter() - t0:.0f} s)"
        )
    groups: dict[str, list[RunConfig]] = {}
    for r in rcs:
        groups.setdefault(r.features.model_dump_json(), []).append(r)
    for group in groups.values():
        t0 = time.perf_counter()
        load_item_features(
            ds,
            group[0].features,
            progress=True,
            use_text=any(r.model.use_text for r in group),
            use_tags=any(r.model.use_tags for r in group),
            use_image=any(r.model.use_image for r in group),
        )
        say(f"{dataset}: item features ready ({time.perf_counter() - t0:.0f} s)")


# ---- execution -----------------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln and not ln.startswith("== ")]
    return lines[-1][:300] if lines else ""


#: A tiny parent for each cell. Linux starts a process's peak-RSS count from the memory of the process it
#: was forked from, so a cell forked straight from the bench (torch, the text encoder: about 1 GB) would
#: report at least that; forked from this ~10 MB launcher, both the bench's number and the run's own
#: `peak_rss_mb` measure the cell alone. It forwards SIGTERM (Ctrl-C reaches the cell directly) and
#: writes the cell's `ru_maxrss` to argv[1].
_LAUNCHER = """
import os, signal, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda n, f: p.send_signal(n))
_, status, ru = os.wait4(p.pid, 0)
p.returncode = code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as fh:
    fh.write(str(ru.ru_maxrss))
sys.exit(code if code >= 0 else 128 - code)
"""
RSS_FILE = ".peak_rss.tmp"


class _Running:
    """One cell's process, its log, and what the bench measures of it."""

    def __init__(self, cell: Cell, threads: int, env: dict[str, str]) -> None:
        self.cell = cell
        cell.dir.mkdir(parents=True, exist_ok=True)
        self.resumed = (cell.dir / CHECKPOINT).is_file()
        self.cmd = cell.command()
        self.rss_file = cell.dir / RSS_FILE
        self.rss_file.unlink(missing_ok=True)
        self.log = (cell.dir / "train.log").open("a", encoding="utf-8")
        self.log.write(f"== {_now()} temarec bench: {shlex.join(self.cmd)}\n")
        self.log.flush()
        self.started = _now()
        self.threads = threads
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(self.rss_file), *self.cmd],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )

    def _peak_rss_mb(self) -> float | None:
        try:
            kib = int(self.rss_file.read_text())
        except (OSError, ValueError):
            return None
        finally:
            self.rss_file.unlink(missing_ok=True)
        return round(kib / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)  # bytes on macOS

    def poll(self) -> CellResult | None:
        rc = self.proc.poll()
        if rc is None:
            return None
        wall = round(time.perf_counter() - self.t0, 2)
        self.log.close()
        rss = self._peak_rss_mb()
        doc = {
            "command": self.cmd,
            "started": self.started,
            "finished": _now(),
            "wall_seconds": wall,
            "peak_rss_mb": rss,
            "returncode": rc,
            "resumed": self.resumed,
            "threads": self.threads,
            "host": platform.node(),
        }
        (self.cell.dir / BENCH_FILE).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        msg = "" if rc == 0 else _last_line(self.cell.dir / "train.log")
        return CellResult(self.cell, rc, wall, rss, msg)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.rss_file.unlink(missing_ok=True)


def execute(cells: list[Cell], jobs: int, threads: int, poll_seconds: float = 0.2) -> list[CellResult]:
    """Run `cells`, `jobs` at a time, each with `threads` threads; a line per finished cell, a bar overall.

    Ctrl-C stops the running cells (their checkpoints stay: the next bench resumes them).
    """
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    todo = deque(cells)
    running: list[_Running] = []
    results: list[CellResult] = []
    bar = tqdm(total=len(cells), desc="bench", unit="cell", dynamic_ncols=True, disable=None)  # tty only
    try:
        while todo or running:
            while todo and len(running) < jobs:
                running.append(_Running(todo.popleft(), threads, env))
                bar.set_postfix_str(", ".join(r.cell.name for r in running), refresh=True)
            time.sleep(poll_seconds)
            for r in list(running):
                res = r.poll()
                if res is None:
                    continue
                running.remove(r)
                results.append(res)
                k = f"[{len(results)}/{len(cells)}]"
                rss = f", peak RSS {res.peak_rss_mb:,.0f} MB" if res.peak_rss_mb is not None else ""
                how = "resumed and finished" if r.resumed else "done"
                if res.returncode == 0:
                    say(f"{k} {how} {res.cell.name} in {res.wall_seconds:.1f} s{rss}")
                else:
                    say(
                        f"{k} FAILED {res.cell.name} (exit {res.returncode}) after {res.wall_seconds:.1f} s: "
                        f"{res.message}\n      log: {res.cell.dir / 'train.log'}"
                    )
                bar.update(1)
                bar.set_postfix_str(", ".join(x.cell.name for x in running), refresh=True)
    except BaseException:
        for r in running:
            r.stop()
        raise
    finally:
        bar.close()
    return results


# ---- the command ---------------------------------------------------------------------------------------
def _counts(statuses: list[CellStatus]) -> str:
    n = {s: sum(st.state == s for st in statuses) for s in STATES}
    return ", ".join(f"{v} {k}" for k, v in n.items() if v)


def run_bench(
    cfg: BenchConfig,
    *,
    output: Path | None = None,
    jobs: int | None = None,
    dry_run: bool = False,
    only_report: bool = False,
    rerun_stale: bool = False,
    only: str | list[str] | None = None,
    label: str | None = None,
) -> int:
    """The `temarec bench` command: plan, run what is missing, write the reports. Returns the exit code
    (0; 1 when a cell failed; 2 when `only` matches no cell)."""
    t_start = time.perf_counter()
    update: dict[str, Any] = {}
    if output is not None:
        update["output"] = Path(output)
    if jobs is not None:
        update["jobs"] = max(1, int(jobs))
    cfg = cfg.model_copy(update=update)
    label = label or (cfg.source.stem if cfg.source else "bench")
    every = build_cells(cfg)
    cells = select(every, only)
    if not cells:
        names = sorted({f"{c.dataset_key}/{c.variant}" for c in every})
        say(
            f"error: --filter {only!r} matches no cell; "
            "cells are named dataset/variant/seedN, "
            f"with dataset/variant in: {', '.join(names)}"
        )
        return 2
    fingerprints: dict = {}
    statuses = plan(cells, fingerprints)
    say(
        f"bench {label}: {len({c.dataset for c in cells})} dataset(s) x {len({c.variant for c in cells})} "
        f"variant(s) -> {len(cells)} cells in {cfg.output} (jobs {cfg.jobs}, threads {cfg.threads}); "
        + _counts(statuses)
    )
    for d in dict.fromkeys(st.cell.dataset for st in statuses if st.detail.startswith("dataset ")):
        n = sum(st.cell.dataset == d and st.state == "skip" for st in statuses)
        say(f"dataset {d!r} is absent, its {n} unfinished cell(s) are skipped: {dataset_problem(d)}")
    if dry_run:
        width = max(len(c.name) for c in cells)
        for st in statuses:
            say(
                (f"  {st.state:<8}{st.cell.name:<{width}}" + (f"  {st.detail}" if st.detail else "")).rstrip()
            )
        return 0
    stale = [st for st in statuses if st.state == "stale"]
    if stale:
        what = (
            "rerun (--rerun-stale)"
            if rerun_stale and not only_report
            else "skipped (--rerun-stale reruns them)"
        )
        say(f"{len(stale)} stale cell(s), their config or data differ from now; {what}:")
        for st in stale:
            say(f"  {st.cell.name}: {st.detail}")
    failed: list[CellResult] = []
    if not only_report:
        if rerun_stale:
            for st in stale:
                why = dataset_problem(st.cell.dataset) and f"dataset {st.cell.dataset!r} is not available"
                if why:  # keep the old outputs when nothing could replace them
                    st.state, st.detail = "skip", f"stale, kept: {why}"
                    continue
                shutil.rmtree(st.cell.dir)
                st.state, st.detail = "todo", "stale outputs removed"
        run = [st.cell for st in statuses if st.state in ("todo", "partial")]
        for st in statuses:
            if st.state == "skip":
                say(f"  skip {st.cell.name}: {st.detail}")
        if run:
            # the longest cells (content-aware models) first, so that the short ones fill the last slots
            run.sort(key=lambda c: not _needs_features(c.model))
            prepare(cfg, run)
            results = execute(run, cfg.jobs, cfg.threads)
            failed = [r for r in results if r.returncode != 0]
        else:
            say("nothing to run: every cell is done, stale or skipped")
    from temarec.bench.report import write_report

    for key in dict.fromkeys(c.dataset_key for c in cells):
        ds_statuses = plan([c for c in every if c.dataset_key == key], fingerprints)
        if not any(st.state == "done" for st in ds_statuses):
            say(f"{key}: no finished run yet, no report")
            continue
        paths = write_report(cfg, key, ds_statuses, label=label)
        say(f"wrote {paths[0]} and {paths[1]}")
    say(f"bench {label} finished in {time.perf_counter() - t_start:.0f} s")
    if failed:
        say(f"{len(failed)} cell(s) failed: " + ", ".join(r.cell.name for r in failed))
        return 1
    return 0
