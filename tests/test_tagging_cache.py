"""The SQLite tag cache: keys, batches, merging shards, and a tagger killed with SIGKILL mid-run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from temarec.tagging.cache import CachedAnswer, CacheKey, TagCache, text_sha


def _key(i: int, pass_: str = "generate", backend: str = "b1") -> CacheKey:
    return CacheKey(f"k{i}", text_sha("Food", f"title {i}", None), backend, "p1", pass_)


def _ans(i: int, error: str | None = None) -> CachedAnswer:
    tags = [] if error else [f"tag{i}", "x"]
    return CachedAnswer(
        tags, None if error else [1.0, 0.5], raw="{}", error=error, transient=False, attempts=1
    )


def test_put_get_count_and_keys(tmp_path):
    with TagCache(tmp_path / "c.sqlite") as c:
        assert c.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        c.put_many([(_key(i), _ans(i)) for i in range(1200)] + [(_key(5, "refine"), _ans(50))])
        got = c.get_many([_key(i) for i in range(1300)])  # more than one query chunk
        assert len(got) == 1200 and got[_key(7)].tags == ["tag7", "x"] and got[_key(7)].weights == [1.0, 0.5]
        assert c.get(_key(5, "refine")).tags == ["tag50", "x"]
        assert c.get(_key(5, backend="b2")) is None
        assert c.count() == 1201 and c.count(pass_="refine") == 1
        # replacing an answer keeps one row per key
        c.put_many([(_key(7), _ans(7, error="echo"))])
        assert c.count() == 1201 and c.get(_key(7)).error == "echo" and not c.get(_key(7)).ok
        assert sum(1 for _ in c.iter_answers(pass_="generate")) == 1200
    # the text hash covers domain, title, description and (refine) the draft tags
    base = text_sha("Food", "t", "d")
    assert (
        len(
            {
                base,
                text_sha("Kitchen", "t", "d"),
                text_sha("Food", "t", None),
                text_sha("Food", "t", "d", ["a"]),
            }
        )
        == 4
    )
    assert text_sha("Food", "t", "d") == base


def test_failed_batch_is_not_half_written(tmp_path):
    with TagCache(tmp_path / "c.sqlite") as c:
        bad = [(_key(1), _ans(1)), (_key(2), CachedAnswer(["a"], None, "", None, False, "x"))]  # bad attempts
        with pytest.raises((ValueError, sqlite3.Error)):
            c.put_many(bad)
        assert c.count() == 0


def test_merge_shards(tmp_path):
    with TagCache(tmp_path / "a.sqlite") as a, TagCache(tmp_path / "b.sqlite") as b:
        a.put_many([(_key(i), _ans(i)) for i in range(0, 10)])
        b.put_many([(_key(i), _ans(100 + i)) for i in range(5, 20)])
    with TagCache(tmp_path / "a.sqlite") as a:
        assert a.merge_from(tmp_path / "b.sqlite") == 10
        assert a.count() == 20 and a.get(_key(6)).tags[0] == "tag6"  # existing answers win
        with pytest.raises(FileNotFoundError):
            a.merge_from(tmp_path / "none.sqlite")


def test_schema_version_is_checked(tmp_path):
    with TagCache(tmp_path / "c.sqlite") as c:
        c.conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(RuntimeError, match="schema"):
        TagCache(tmp_path / "c.sqlite")


# ---- kill -9 mid-run -----------------------------------------------------------------------------
SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys, time
    from temarec.data.demo import generate_demo
    from temarec.tagging.base import TagResult
    from temarec.tagging.cache import TagCache
    from temarec.tagging.runner import TagRunOptions, tag_dataset

    class Slow:
        identity = "fake:slow:v1"
        prompt_identity = "p1"
        supports_refine = True

        def __init__(self, delay):
            self.delay, self.calls = delay, 0

        def tag(self, requests, pass_="generate"):
            time.sleep(self.delay * len(requests))
            self.calls += len(requests)
            out = []
            for r in requests:
                if pass_ == "refine":
                    out.append(TagResult(r.item_id, tags=sorted(r.previous)[:3]))
                elif r.item_id % 17 == 0:
                    out.append(TagResult(r.item_id, error="not_json"))
                else:
                    h = hashlib.sha256((r.title or "").encode()).hexdigest()
                    words = (r.title or "x").lower().split()
                    out.append(TagResult(r.item_id, tags=[words[0], h[:4], h[4:8], words[-1]]))
            return out

        def close(self):
            pass

    cache_path, out_path, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    ds = generate_demo(seed=0, n_users=200, n_items_a=70, n_items_b=60)
    be = Slow(delay)
    with TagCache(cache_path) as cache:
        res = tag_dataset(ds, be, cache, TagRunOptions(refine=True, batch_size=4, progress=False))
    doc = {"tags": {str(k): v for k, v in res.tags.items()}, "calls": be.calls, "summary": res.summary}
    doc["errors"] = {str(k): v for k, v in res.errors.items()}
    json.dump(doc, open(out_path, "w"))
    """
)


def _run(script, cache, out, delay) -> dict:
    subprocess.run([sys.executable, str(script), str(cache), str(out), str(delay)], check=True, timeout=120)
    return json.loads(out.read_text())


def _rows(path) -> int:
    if not path.exists():
        return 0
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / "tagger.py"
    script.write_text(SCRIPT)
    ref = _run(script, tmp_path / "ref.sqlite", tmp_path / "ref.json", 0.0)
    n_rows = _rows(tmp_path / "ref.sqlite")
    assert ref["summary"]["failed_by_reason"].get("not_json", 0) > 0 and ref["calls"] == n_rows

    cache = tmp_path / "killed.sqlite"
    proc = subprocess.Popen([sys.executable, str(script), str(cache), str(tmp_path / "k.json"), "0.03"])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and _rows(cache) < 40:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    done = _rows(cache)
    assert 40 <= done < n_rows, "the kill must land part-way"
    con = sqlite3.connect(cache)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()

    resumed = _run(script, cache, tmp_path / "resumed.json", 0.0)
    assert resumed["calls"] == n_rows - done  # only what was missing was asked
    assert resumed["tags"] == ref["tags"] and resumed["errors"] == ref["errors"]
    con = sqlite3.connect(cache)
    keys = con.execute("SELECT COUNT(*), COUNT(DISTINCT item_key || '/' || pass) FROM answers").fetchone()
    con.close()
    assert keys == (n_rows, n_rows)  # no duplicated and no lost items

    again = _run(script, cache, tmp_path / "again.json", 0.0)
    assert again["calls"] == 0 and again["summary"]["model_calls"] == 0 and again["tags"] == ref["tags"]
