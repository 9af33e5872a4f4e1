"""A crash-proof store of every tagging answer (SQLite in WAL mode).

Key: (item key, sha256 of the text the model saw, backend identity, prompt identity, pass). The answer is a
pure function of that key, so a rerun asks only for missing keys, shards of one catalogue tagged on several
machines merge by plain union, and a changed title, model or prompt is simply a miss.

Each committed batch is one transaction: `kill -9` mid-run loses at most the batch in flight, never a
committed answer, and never leaves a half-written row (SQLite's journal guarantees it; WAL also lets a reader
look at the store while a tagger writes).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    item_key  TEXT NOT NULL,
    text_sha  TEXT NOT NULL,
    backend   TEXT NOT NULL,
    prompt    TEXT NOT NULL,
    pass      TEXT NOT NULL,
    tags      TEXT NOT NULL,      -- JSON list of str
    weights   TEXT,               -- JSON list of float, or NULL
    raw       TEXT NOT NULL DEFAULT '',
    error     TEXT,               -- failure reason, NULL when ok
    transient INTEGER NOT NULL DEFAULT 0,  -- 1: the server failed, ask again on the next run
    attempts  INTEGER NOT NULL DEFAULT 1,
    created   REAL NOT NULL,
    PRIMARY KEY (item_key, text_sha, backend, prompt, pass)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLS = "item_key, text_sha, backend, prompt, pass, tags, weights, raw, error, transient, attempts, created"


def text_sha(domain: str, title: str | None, description: str | None, previous: Iterable[str] = ()) -> str:
    """What the model's answer depends on besides model and prompt (refine: also the draft tags)."""
    h = hashlib.sha256()
    for part in (domain, title or "", description or "", "\x1e".join(previous)):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


@dataclass(frozen=True)
class CacheKey:
    item_key: str
    text_sha: str
    backend: str
    prompt: str
    pass_: str

    def astuple(self) -> tuple[str, str, str, str, str]:
        return (self.item_key, self.text_sha, self.backend, self.prompt, self.pass_)


@dataclass
class CachedAnswer:
    tags: list[str]
    weights: list[float] | None
    raw: str
    error: str | None
    transient: bool
    attempts: int

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.tags)


class TagCache:
    """SQLite store of answers. One writer at a time (SQLite locks); readers are never blocked."""

    def __init__(self, path: str | Path, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives a killed process; FULL also survives power loss
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self.conn.executescript(_SCHEMA)
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row[0]) != SCHEMA_VERSION:
            raise RuntimeError(f"{self.path}: tag cache schema {row[0]}, this temarec reads {SCHEMA_VERSION}")

    # ---- reads -----------------------------------------------------------------------------------
    def get_many(self, keys: list[CacheKey], chunk: int = 500) -> dict[CacheKey, CachedAnswer]:
        """The stored answers among `keys` (queried in chunks, through a temporary key table)."""
        out: dict[CacheKey, CachedAnswer] = {}
        if not keys:
            return out
        by_tuple = {k.astuple(): k for k in keys}
        self.conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS want (item_key TEXT, text_sha TEXT, backend TEXT, prompt TEXT, "
            "pass TEXT)"
        )
        tuples = list(by_tuple)
        for i in range(0, len(tuples), chunk):
            part = tuples[i : i + chunk]
            self.conn.execute("BEGIN")
            self.conn.execute("DELETE FROM want")
            self.conn.executemany("INSERT INTO want VALUES (?, ?, ?, ?, ?)", part)
            rows = self.conn.execute(
                "SELECT a.item_key, a.text_sha, a.backend, a.prompt, a.pass, a.tags, a.weights, a.raw, "
                "a.error, a.transient, a.attempts FROM answers a JOIN want w USING "
                "(item_key, text_sha, backend, prompt, pass)"
            ).fetchall()
            self.conn.execute("COMMIT")
            for r in rows:
                out[by_tuple[tuple(r[:5])]] = _answer(r[5:])
        return out

    def get(self, key: CacheKey) -> CachedAnswer | None:
        return self.get_many([key]).get(key)

    def count(self, backend: str | None = None, prompt: str | None = None, pass_: str | None = None) -> int:
        sql, args = _where(backend, prompt, pass_)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM answers{sql}", args).fetchone()[0])

    def iter_answers(
        self, backend: str | None = None, prompt: str | None = None, pass_: str | None = None
    ) -> Iterator[tuple[CacheKey, CachedAnswer]]:
        sql, args = _where(backend, prompt, pass_)
        for r in self.conn.execute(
            f"SELECT {_COLS.rsplit(',', 1)[0]} FROM answers{sql} ORDER BY item_key, pass",
            args,
        ):
            yield CacheKey(*r[:5]), _answer(r[5:])

    # ---- writes ----------------------------------------------------------------------------------
    def put_many(self, rows: list[tuple[CacheKey, CachedAnswer]]) -> None:
        """Store a batch in one transaction: all of it is committed, or (killed mid-way) none of it."""
        if not rows:
            return
        now = time.time()
        data = [
            (
                *k.astuple(),
                json.dumps(a.tags, ensure_ascii=False),
                json.dumps(a.weights) if a.weights is not None else None,
                a.raw or "",
                a.error,
                int(bool(a.transient)),
                int(a.attempts),
                now,
            )
            for k, a in rows
        ]
        with self._transaction():
            self.conn.executemany(
                f"INSERT OR REPLACE INTO answers ({_COLS}) VALUES ({', '.join('?' * 12)})", data
            )

    def merge_from(self, other: str | Path) -> int:
        """Union with another cache file (a shard tagged elsewhere); existing answers win. Returns #added."""
        other = Path(other)
        if not other.is_file():
            raise FileNotFoundError(f"tag cache {other} not found")
        before = self.count()
        self.conn.execute("ATTACH DATABASE ? AS other", (str(other),))
        try:
            with self._transaction():
                self.conn.execute(
                    f"INSERT OR IGNORE INTO answers ({_COLS}) SELECT {_COLS} FROM other.answers"
                )
        finally:
            self.conn.execute("DETACH DATABASE other")
        return self.count() - before

    def _transaction(self):
        return _Tx(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> TagCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _answer(r: tuple) -> CachedAnswer:
    tags, weights, raw, error, transient, attempts = r
    return CachedAnswer(
        tags=json.loads(tags),
        weights=json.loads(weights) if weights is not None else None,
        raw=raw,
        error=error,
        transient=bool(transient),
        attempts=int(attempts),
    )


def _where(backend: str | None, prompt: str | None, pass_: str | None) -> tuple[str, list[str]]:
    conds, args = [], []
    for col, val in (("backend", backend), ("prompt", prompt), ("pass", pass_)):
        if val is not None:
            conds.append(f"{col} = ?")
            args.append(val)
    return (" WHERE " + " AND ".join(conds) if conds else ""), args
