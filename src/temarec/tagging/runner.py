"""Tag a whole catalogue: select (shard, sample, limit), skip cached answers, batch, refine, account.

The runner owns everything that is not the model: which items, in which order, what is already known, when
answers are committed (one cache transaction per batch, so a killed run resumes where it stopped), and the
counts a user needs to trust the output (cached, asked, failed by reason, items per second).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from temarec.data.dataset import CDDataset
from temarec.tagging.base import BackendFatalError, Pass, TagBackend, TagRequest, TagResult
from temarec.tagging.cache import CachedAnswer, CacheKey, TagCache, text_sha
from temarec.tagging.parse import BACKEND, EXAMPLE_ECHO, NO_TEXT, TRANSIENT, drop_example_echo, text_words

if TYPE_CHECKING:
    import pandas as pd

    from temarec.tagging.vocab import TagVocab

log = logging.getLogger(__name__)


@dataclass
class TagRunOptions:
    """What to tag and how; the defaults tag every item once, without refinement."""

    refine: bool = False
    shard: tuple[int, int] = (0, 1)  # (i, n): this run tags items whose key hashes to i mod n
    sample: int | None = None  # a fixed random subset of this many items (before sharding)
    sample_seed: int = 0
    limit: int | None = None  # at most this many items (after sample and shard), for trials
    batch_size: int = 16  # items per backend call and per cache transaction
    retry_failed: bool = False  # ask again for items whose stored answer failed (transient ones always are)
    drop_example_echo: bool = True  # drop worked-example tags the item's text does not support
    progress: bool = True


@dataclass
class PassStats:
    """Counts of one pass."""

    items: int = 0  # items this pass had to answer
    cached: int = 0  # ... of which the cache already held an answer
    asked: int = 0  # ... sent to the backend (model calls, one per item)
    ok: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # time spent in the backend
    attempts: int = 0  # backend attempts for the asked items (retries included)


@dataclass
class TagRunResult:
    """Final tags per item (refined where refinement succeeded), failures, and the run's counts."""

    tags: dict[int, list[str]]
    weights: dict[int, list[float] | None]
    errors: dict[int, str]  # items without tags: the reason (of the first pass)
    backend: str
    prompt: str
    summary: dict
    reads_text: bool = True  # the backend's tags come from the items' text (not: imported from a file)

    def to_jsonl(self, ds: CDDataset, path: str | Path) -> Path:
        """One line per selected item: id, key, domain, tags, weights, error; written atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        keys = ds.items["key"]
        dom = ds.items["domain"]
        with tmp.open("w", encoding="utf-8") as f:
            for iid in sorted(set(self.tags) | set(self.errors)):
                rec = {
                    "item_id": int(iid),
                    "key": str(keys.at[iid]),
                    "domain": ds.domains[int(dom.at[iid])],
                    "tags": self.tags.get(iid, []),
                    "weights": self.weights.get(iid),
                    "error": self.errors.get(iid),
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        tmp.replace(path)
        return path


def read_tags_jsonl(path: str | Path) -> tuple[dict[int, list[str]], dict[int, list[float] | None]]:
    """Tags and weights back from `TagRunResult.to_jsonl` (items that failed are left out)."""
    tags: dict[int, list[str]] = {}
    weights: dict[int, list[float] | None] = {}
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("tags"):
                tags[int(rec["item_id"])] = [str(t) for t in rec["tags"]]
                weights[int(rec["item_id"])] = rec.get("weights")
    return tags, weights


def check_tags_jsonl_keys(path: str | Path, keys: np.ndarray | list[str]) -> None:
    """Raise ValueError unless every line of `path` names its item by the key `keys[item_id - 1]`.

    The check for vocabularies saved before they recorded their catalogue's keys: tags.jsonl, written in
    the same run, still says which key each item id had then.
    """
    path = Path(path)
    keys = np.asarray(keys, dtype=object)
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
                iid, key = int(rec["item_id"]), str(rec["key"])
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}: line {n}: not a tag record ({type(e).__name__}: {e})") from None
            if not 1 <= iid <= len(keys) or keys[iid - 1] != key:
                now = repr(keys[iid - 1]) if 1 <= iid <= len(keys) else "no such item"
                raise ValueError(
                    f"{path}: line {n}: item {iid} was {key!r} when tagged, the dataset now has {now} "
                    "(items.csv re-sorted or edited?); its tags would go to the wrong items"
                )


def write_tag_source(
    res: TagRunResult, ds: CDDataset, out_dir: Path, source: str, vocab: bool = True, progress: bool = True
) -> TagVocab | None:
    """Write `tags.jsonl` and, when `vocab` and some item has tags, the vocabulary into `out_dir`.

    A vocabulary already there is removed first: it was built from other answers, and the feature stage
    would read it beside the new tags.jsonl (after a run where every item failed, with `vocab=False`, or
    when the run is killed before the new vocabulary is saved). The vocabulary records each item's text
    hash, so that the feature stage can name items edited since; not for imported tags (the file backend),
    which do not depend on the text.
    """
    from temarec.tagging.vocab import ARRAYS_FILE, JSON_FILE, build_vocab, item_text_hashes

    out_dir = Path(out_dir)
    # vocab.json first: without it the source is not offered; summary.json too, which described the old run
    for name in (JSON_FILE, ARRAYS_FILE, "summary.json"):
        (out_dir / name).unlink(missing_ok=True)
    res.to_jsonl(ds, out_dir / "tags.jsonl")
    if not vocab or not res.tags:
        return None
    from temarec.features.build import CachedTextEncoder

    voc = build_vocab(
        res.tags,
        res.weights,
        ds.item_domain,
        encoder=CachedTextEncoder(progress=progress),
        source=source,
        domains=ds.domains,
        item_keys=ds.items["key"].to_numpy(),
        text_hash=item_text_hashes(ds.items["title"].to_numpy(), ds.items["description"].to_numpy())
        if res.reads_text
        else None,
    )
    # what made it, saved with it (atomically): `features.tags=auto` ranks sources by this
    voc.meta["tagged_with"] = {
        "backend": res.backend,
        **{k: res.summary.get(k) for k in ("sample", "limit", "refine")},
    }
    voc.save(out_dir)
    return voc


# ---- selection -----------------------------------------------------------------------------------
def parse_shard(spec: str) -> tuple[int, int]:
    """`"i/n"` -> (i, n) with 0 <= i < n."""
    try:
        i_s, n_s = spec.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise ValueError(f"shard must look like i/n (e.g. 0/4), not {spec!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard {spec!r}: need 0 <= i < n")
    return i, n


def shard_output(out_dir: Path, shard: tuple[int, int]) -> Path:
    """Where a shard run writes its partial tag set: its own folder under the source's output."""
    return out_dir / f"shard-{shard[0]}-of-{shard[1]}"


def shard_ids(keys: np.ndarray | list[str], n: int) -> np.ndarray:
    """Stable shard of each key (sha1, not Python's salted hash): the same on every machine and run."""
    return np.fromiter(
        (int.from_bytes(hashlib.sha1(str(k).encode()).digest()[:8], "big") % n for k in keys),
        dtype=np.int64,
        count=len(keys),
    )


def select_items(ds: CDDataset, opts: TagRunOptions) -> np.ndarray:
    """Global item ids to tag, ascending: sample (seeded), then shard, then limit."""
    ids = ds.items.index.to_numpy(dtype=np.int64)
    if opts.sample is not None and opts.sample < len(ids):
        rng = np.random.default_rng(opts.sample_seed)
        ids = np.sort(rng.choice(ids, size=opts.sample, replace=False))
    i, n = opts.shard
    if n > 1:
        keys = ds.items["key"].to_numpy()[ids - 1]
        ids = ids[shard_ids(keys, n) == i]
    if opts.limit is not None:
        ids = ids[: opts.limit]
    return ids


def _text(v: object) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    s = str(v).strip()
    return s or None


def build_requests(
    ds: CDDataset, ids: np.ndarray, needs_text: bool = True
) -> tuple[list[TagRequest], list[int]]:
    """Requests for items with a title or description, and the ids of items with neither (which get a
    request too when the backend `needs_text` is False: imported tags)."""
    sub = ds.items.loc[ids, ["key", "domain", "title", "description"]]
    reqs: list[TagRequest] = []
    no_text: list[int] = []
    for iid, key, d, title, desc in zip(
        sub.index.to_numpy(),
        sub["key"].to_numpy(),
        sub["domain"].to_numpy(),
        sub["title"],
        sub["description"],
        strict=True,
    ):
        t, s = _text(title), _text(desc)
        if t is None and s is None and needs_text:
            no_text.append(int(iid))
            continue
        reqs.append(TagRequest(int(iid), str(key), ds.domains[int(d)], t, s))
    return reqs, no_text


# ---- running -------------------------------------------------------------------------------------
def backend_prompt_identity(backend: TagBackend) -> str:
    """The prompt part of cache keys: the backend's prompt set, or '-' for backends without prompts."""
    return str(getattr(backend, "prompt_identity", "-"))


def _key(req: TagRequest, backend: str, prompt: str, pass_: Pass) -> CacheKey:
    return CacheKey(
        req.key, text_sha(req.domain, req.title, req.description, req.previous), backend, prompt, pass_
    )


def _settled(a: CachedAnswer | None, opts: TagRunOptions) -> bool:
    """A cached answer that is not asked again: present, not a transient failure, and ok unless
    failures are to be retried."""
    return a is not None and not a.transient and (a.ok or not opts.retry_failed)


def pending(ds: CDDataset, backend: TagBackend, cache: TagCache, opts: TagRunOptions) -> int:
    """How many items the first pass of `tag_dataset` would ask the backend about (not yet settled in
    the cache), e.g. to size a progress bar over worker processes."""
    reqs, _ = build_requests(ds, select_items(ds, opts), getattr(backend, "needs_text", True))
    keys, found = _lookup(backend, cache, reqs, "generate")
    return sum(not _settled(found.get(k), opts) for k in keys)


def _lookup(
    backend: TagBackend, cache: TagCache, reqs: list[TagRequest], pass_: Pass
) -> tuple[list[CacheKey], dict[CacheKey, CachedAnswer]]:
    """The cache keys of `reqs` in one pass, and the answers stored under them."""
    ident, prompt = backend.identity, backend_prompt_identity(backend)
    keys = [_key(r, ident, prompt, pass_) for r in reqs]
    return keys, cache.get_many(keys)


def _run_pass(
    backend: TagBackend,
    cache: TagCache,
    reqs: list[TagRequest],
    pass_: Pass,
    opts: TagRunOptions,
) -> tuple[dict[int, CachedAnswer], PassStats]:
    """Answers for `reqs` in one pass: cached ones read, missing ones asked batch by batch and committed."""
    keys, found = _lookup(backend, cache, reqs, pass_)
    answers: dict[int, CachedAnswer] = {}
    todo: list[tuple[TagRequest, CacheKey]] = []
    st = PassStats(items=len(reqs))
    for r, k in zip(reqs, keys, strict=True):
        a = found.get(k)
        if _settled(a, opts):
            answers[r.item_id] = a
            st.cached += 1
        else:
            todo.append((r, k))
    bar = tqdm(
        total=len(todo),
        desc=f"tag {pass_}",
        unit="item",
        disable=not opts.progress or not todo,
        smoothing=0.1,
    )
    fails: Counter = Counter()
    try:
        for b in range(0, len(todo), opts.batch_size):
            batch = todo[b : b + opts.batch_size]
            t0 = time.perf_counter()
            try:
                results = backend.tag([r for r, _ in batch], pass_)
                if len(results) != len(batch):
                    raise RuntimeError(f"backend returned {len(results)} results for {len(batch)} requests")
            except BackendFatalError:
                raise  # configuration problems: stop, everything committed so far stays
            except Exception as e:  # one broken batch must not end a long run
                log.warning("backend failed on a batch of %d: %s", len(batch), e)
                results = [TagResult(r.item_id, error=BACKEND, raw=str(e)[:500]) for r, _ in batch]
            st.seconds += time.perf_counter() - t0
            rows = []
            for (r, k), res in zip(batch, results, strict=True):
                ok = res.ok
                err = None if ok else (res.error or "empty")
                a = CachedAnswer(
                    tags=list(res.tags) if ok else [],
                    weights=list(res.weights) if ok and res.weights is not None else None,
                    raw=res.raw or "",
                    error=err,
                    transient=err in TRANSIENT,
                    attempts=res.attempts,
                )
                rows.append((k, a))
                answers[r.item_id] = a
                st.attempts += res.attempts
                if err:
                    fails[err] += 1
            cache.put_many(rows)  # one transaction per batch: the unit that a crash can lose
            st.asked += len(batch)
            bar.update(len(batch))
            if fails:
                bar.set_postfix(failed=sum(fails.values()))
    finally:
        bar.close()
    for a in answers.values():
        if a.ok:
            st.ok += 1
        else:
            st.failed += 1
            st.failed_by_reason[a.error or "empty"] = st.failed_by_reason.get(a.error or "empty", 0) + 1
    st.failed_by_reason = dict(sorted(st.failed_by_reason.items(), key=lambda kv: -kv[1]))
    return answers, st


def _drop_example_echo(
    backend: TagBackend,
    reqs: list[TagRequest],
    final: dict[int, CachedAnswer],
    errors: dict[int, str],
    first: dict[int, CachedAnswer],
) -> dict | None:
    """Remove, in place, final tags that repeat the prompt's worked examples without support in the
    item's text; a refined list left empty falls back to the first pass's (guarded too), an item left
    with none moves to `errors`. Applied after the cache, so the stored answers stay the model's own
    and `--keep-example-tags` gets them back without asking again. Returns the counts (None for
    backends without prompts)."""
    prompts = getattr(backend, "prompts", None)
    if prompts is None:
        return None
    examples = {d: prompts.example_phrases(d) for d in {r.domain for r in reqs}}
    dropped = items = emptied = 0
    for r in reqs:
        a = final.get(r.item_id)
        if a is None:
            continue
        words = text_words(r.title, r.description)
        tags, weights, n = drop_example_echo(a.tags, a.weights, examples[r.domain], words)
        if not n:
            continue
        dropped, items = dropped + n, items + 1
        if not tags and (f := first.get(r.item_id)) is not None and f is not a and f.ok:
            tags, weights, _ = drop_example_echo(f.tags, f.weights, examples[r.domain], words)
            a = f
        if tags:
            final[r.item_id] = replace(a, tags=tags, weights=weights)
        else:
            del final[r.item_id]
            errors[r.item_id] = EXAMPLE_ECHO
            emptied += 1
    return {"tags_dropped": dropped, "items_with_echo": items, "items_left_without_tags": emptied}


def _failure_examples(answers: dict[int, CachedAnswer], keys: pd.Series, chars: int = 200) -> dict[str, str]:
    """The first failed item of each reason: its key and raw text (cut to `chars` characters), so that
    the item can be found in the catalogue or the tags file."""
    out: dict[str, str] = {}
    for iid in sorted(answers):
        a = answers[iid]
        if not a.ok and (a.error or "empty") not in out:
            out[a.error or "empty"] = f"item {keys.at[iid]}: {' '.join((a.raw or '').split())[:chars]!r}"
    return out


def tag_dataset(
    ds: CDDataset,
    backend: TagBackend,
    cache: TagCache,
    opts: TagRunOptions | None = None,
) -> TagRunResult:
    """Tag the selected items of `ds` with `backend`, through `cache`; refine with a second pass if asked."""
    opts = opts or TagRunOptions()
    t_start = time.perf_counter()
    ids = select_items(ds, opts)
    reqs, no_text = build_requests(ds, ids, getattr(backend, "needs_text", True))
    gen, gst = _run_pass(backend, cache, reqs, "generate", opts)
    final = {iid: a for iid, a in gen.items() if a.ok}
    errors = {iid: (a.error or "empty") for iid, a in gen.items() if not a.ok}
    errors.update({iid: NO_TEXT for iid in no_text})
    rst: PassStats | None = None
    refine = opts.refine and bool(getattr(backend, "supports_refine", False))
    if opts.refine and not refine:
        log.warning("backend %s has no refinement pass; --refine ignored", backend.identity)
    if refine:
        rreqs = [
            TagRequest(r.item_id, r.key, r.domain, r.title, r.description, tuple(final[r.item_id].tags))
            for r in reqs
            if r.item_id in final
        ]
        ref, rst = _run_pass(backend, cache, rreqs, "refine", opts)
        for iid, a in ref.items():
            if a.ok:  # a failed refinement keeps the first pass's tags
                final[iid] = a
    echo = _drop_example_echo(backend, reqs, final, errors, gen) if opts.drop_example_echo else None
    elapsed = time.perf_counter() - t_start
    asked = gst.asked
    summary = {
        "backend": backend.identity,
        "prompt": backend_prompt_identity(backend),
        "refine": refine,
        "shard": f"{opts.shard[0]}/{opts.shard[1]}",
        "sample": opts.sample,
        "sample_seed": opts.sample_seed if opts.sample is not None else None,
        "limit": opts.limit,
        "selected": int(len(ids)),
        "no_text": len(no_text),
        "tagged": len(final),
        "failed": len(errors) - len(no_text),
        # the first pass's reasons, and items the example-echo guard left without tags
        "failed_by_reason": dict(Counter(e for e in errors.values() if e != NO_TEXT).most_common()),
        # what the model or server said for the first item of each reason (a server's error text, say)
        "failed_example": _failure_examples(gen, ds.items["key"]),
        "example_echo": echo,
        "generate": asdict(gst),
        "refine_pass": asdict(rst) if rst is not None else None,
        "model_calls": gst.asked + (rst.asked if rst else 0),
        "seconds": round(elapsed, 3),
        "backend_seconds": round(gst.seconds + (rst.seconds if rst else 0.0), 3),
        "items_per_s": round(asked / (gst.seconds + (rst.seconds if rst else 0.0)), 3)
        if asked and (gst.seconds + (rst.seconds if rst else 0.0)) > 0
        else None,
        "tags_per_item": round(float(np.mean([len(a.tags) for a in final.values()])), 3) if final else 0.0,
    }
    return TagRunResult(
        tags={iid: list(a.tags) for iid, a in sorted(final.items())},
        weights={iid: a.weights for iid, a in sorted(final.items())},
        errors=dict(sorted(errors.items())),
        backend=backend.identity,
        prompt=backend_prompt_identity(backend),
        summary=summary,
        reads_text=getattr(backend, "needs_text", True),
    )
