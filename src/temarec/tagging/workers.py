"""Tag one catalogue with several local processes at once (`temarec tag --workers N`).

A small local model keeps a second thread poorly busy: on 2 cores, two 1-thread processes tagged 1.65x as
many items per second as one 2-thread process (`results/tagging.md`). Each worker is `temarec tag` on
one shard of the catalogue (`--shard i/N`), writing into the same SQLite cache (one writer at a time,
WAL); the parent only watches: a progress bar from the cache's row count, each worker's output in its own
log file, and every worker stopped if one fails or the parent is interrupted. Answers already committed
stay in the cache either way, so rerunning the command resumes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm


class WorkerError(RuntimeError):
    """A worker process exited with an error."""


def worker_command(args: list[str], i: int, n: int) -> list[str]:
    """The command line of worker `i` of `n`: `temarec tag ARGS` on shard i/n, quiet, without a
    vocabulary (the parent builds it once, from the cache, when every shard is done)."""
    return [sys.executable, "-m", "temarec", "tag", *args, "--shard", f"{i}/{n}", "--no-vocab", "--quiet"]


def run_workers(
    args: list[str],
    n: int,
    log_dir: Path,
    done: Callable[[], int] | None = None,
    total: int | None = None,
    progress: bool = True,
    poll_seconds: float = 1.0,
) -> None:
    """Run `n` shard workers of `temarec tag ARGS` and wait for all of them.

    `done()` (answers written so far) and `total` drive the progress bar. Raises `WorkerError` naming
    the log of every worker that failed; on any exit (error, Ctrl-C) workers still running are stopped.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[subprocess.Popen, Path]] = []
    logs = []
    bar = tqdm(total=total, unit="item", desc=f"tag generate ({n} workers)", disable=not progress)
    try:
        for i in range(n):
            log = log_dir / f"worker-{i}-of-{n}.log"
            f = open(log, "w", encoding="utf-8")  # noqa: SIM115 (closed in finally, after the worker)
            logs.append(f)
            cmd = worker_command(args, i, n)
            procs.append((subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT), log))

        def broken() -> list[tuple[subprocess.Popen, Path]]:
            return [(p, log) for p, log in procs if p.poll() not in (None, 0)]

        # until all are done, or one broke: then stop the others rather than tag half a catalogue
        while not broken() and any(p.poll() is None for p, _ in procs):
            time.sleep(poll_seconds)
            if done is not None:
                bar.n = done()
                bar.refresh()
        if done is not None:  # what the last second added
            bar.n = done()
            bar.refresh()
        if failed := broken():
            detail = "; ".join(f"exit code {p.returncode}, see {log}: {_tail(log)}" for p, log in failed)
            raise WorkerError(f"{len(failed)} of {n} tagging workers failed ({detail})")
    finally:
        bar.close()
        for p, _ in procs:
            if p.poll() is None:
                p.terminate()
        for p, _ in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in logs:
            f.close()


def _tail(path: Path, lines: int = 3) -> str:
    """The last non-empty lines of a worker's log, for the error message."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    text = [ln.strip() for ln in raw if ln.strip()]
    return " | ".join(text[-lines:]) or "(empty log)"
