"""Import two domains from the raw Amazon review dumps (2014 and 2018 schemas), optionally gzipped.

Reviews (both years): one JSON object per line with `reviewerID`, `asin`, `unixReviewTime`.
Metadata, 2014: Python dict literals (single quotes, so not JSON) with `asin`, `title`, `description`
(str), `categories` (list of category paths) and `imUrl`. Metadata, 2018: JSON with `asin`, `title`,
`description` (list of str), `category` (one path) and `imageURL` / `imageURLHighRes` (lists).

Each line is parsed with `json.loads`, falling back to `ast.literal_eval` (which only accepts literals;
nothing is ever executed). Filtering is vectorised over integer codes; only the parsing of lines is a
Python loop, with a progress bar.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from temarec.data.dataset import CDDataset, make_items_frame
from temarec.data.errors import DataFormatError
from temarec.data.ragged import Ragged

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]{1,19}\s*")  # ASCII digits only: int() also takes '²', '１２'
_I64 = 2**63
_PROGRESS_EVERY = 8192  # lines between progress-bar updates


@dataclass(frozen=True)
class AmazonSource:
    """One domain of an import.

    `category` keeps only items whose metadata lists it as one element of a category path (e.g.
    "Movies & TV"); it lets one big metadata file (or one reviews file) serve two domains, and needs
    `meta`. Items not in the metadata are then dropped, since their category is unknown.
    """

    name: str
    reviews: Path
    meta: Path | None = None
    category: str | None = None


@dataclass(frozen=True)
class _Meta:
    title: str | None
    description: str | None
    image: str | None
    categories: frozenset[str]


# ---- line reading ----------------------------------------------------------------------------------
def _records(path: Path, desc: str) -> Iterator[tuple[int, dict]]:
    """Every non-blank line of a (gzipped or plain) JSON-lines file as a dict, with its 1-based number."""
    path = Path(path)
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise DataFormatError(path, None, None, "file not found") from None
    with raw:
        gz = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        # GzipFile's own readline is slow; a big buffer in front of it roughly halves the cost
        stream = io.BufferedReader(gzip.GzipFile(fileobj=raw), buffer_size=1 << 20) if gz else raw
        size = os.fstat(raw.fileno()).st_size
        with tqdm(total=size, unit="B", unit_scale=True, desc=desc, disable=None, leave=False) as bar:
            done = 0
            try:
                for lineno, line in enumerate(stream, 1):
                    if lineno % _PROGRESS_EVERY == 0:
                        pos = raw.tell()
                        bar.update(pos - done)
                        done = pos
                    if line.strip():
                        yield lineno, _parse_line(path, lineno, line)
            except (OSError, EOFError) as e:  # truncated or corrupt gzip stream
                raise DataFormatError(path, None, None, f"cannot read: {e}") from None
            bar.update(size - done)


def _parse_line(path: Path, lineno: int, line: bytes) -> dict:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise DataFormatError(path, lineno, None, "not UTF-8 text") from None
    if lineno == 1:
        text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    try:
        rec = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, too many digits, too deeply nested
        try:
            rec = ast.literal_eval(text.strip())  # 2014 metadata: Python dict literals
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise DataFormatError(path, lineno, None, "neither JSON nor a Python dict literal") from None
    if not isinstance(rec, dict):
        raise DataFormatError(path, lineno, None, f"expected an object, got {type(rec).__name__}")
    return rec


def _required_str(path: Path, lineno: int, rec: dict, field: str) -> str:
    v = rec.get(field)
    if v is None:
        raise DataFormatError(path, lineno, field, "missing")
    if not isinstance(v, str) or not v:
        raise DataFormatError(path, lineno, field, f"expected a non-empty string, got {v!r}")
    return v


def _unix_time(path: Path, lineno: int, rec: dict, field: str = "unixReviewTime") -> int:
    v = rec.get(field)
    if v is None:
        raise DataFormatError(path, lineno, field, "missing")
    t: int | None = None
    if isinstance(v, int) and not isinstance(v, bool):
        t = v
    elif isinstance(v, float) and math.isfinite(v) and v.is_integer():
        t = int(v)
    elif isinstance(v, str) and _INT_TEXT.fullmatch(v):
        t = int(v)
    if t is None:
        raise DataFormatError(path, lineno, field, f"expected integer unix seconds, got {v!r}"[:200])
    if not -_I64 <= t < _I64:
        raise DataFormatError(path, lineno, field, f"{t} is out of the 64-bit range of unix seconds"[:200])
    return t


def _read_reviews(path: Path, desc: str) -> pd.DataFrame:
    """Columns user, asin, ts, in file order."""
    users: list[str] = []
    asins: list[str] = []
    times: list[int] = []
    for lineno, rec in _records(path, desc):
        u, a, t = rec.get("reviewerID"), rec.get("asin"), rec.get("unixReviewTime")
        fast = type(u) is str and type(a) is str and type(t) is int and u and a and -_I64 <= t < _I64
        if not fast:
            # slow path: accept numeric strings, or say exactly what is wrong
            u = _required_str(path, lineno, rec, "reviewerID")
            a = _required_str(path, lineno, rec, "asin")
            t = _unix_time(path, lineno, rec)
        users.append(u)
        asins.append(a)
        times.append(t)
    if not users:
        raise DataFormatError(path, None, None, "no reviews in the file (it is empty or blank)")
    df = pd.DataFrame(
        {
            "user": np.asarray(users, dtype=object),
            "asin": np.asarray(asins, dtype=object),
            "ts": np.asarray(times, dtype=np.int64),
        }
    )
    _refuse_unclean_ids(path, df, desc)
    return df


def _refuse_unclean_ids(path: Path, df: pd.DataFrame, desc: str) -> None:
    """The canonical format's rule for ids (no control character, no whitespace at either end), checked
    on the distinct values at once; only when one fails is the file read again to name its line."""
    from temarec.data.canonical import key_problem, unclean_keys

    for col, field in (("user", "reviewerID"), ("asin", "asin")):
        uniq = pd.unique(df[col])
        bad = np.flatnonzero(unclean_keys(uniq))
        if len(bad):
            value = uniq[bad[0]]
            line = next((n for n, rec in _records(path, desc) if rec.get(field) == value), None)
            raise DataFormatError(path, line, field, f"value {key_problem(value)}")


# ---- metadata --------------------------------------------------------------------------------------
def _text(v: object) -> str | None:
    """A text field as one stripped string; lists (2018 descriptions) are joined with spaces.

    Numbers become their digits; anything else (a dict, bytes, inf) is not text and counts as missing,
    so a malformed record does not turn into a title like "{'a': 1}".
    """
    if isinstance(v, list | tuple):
        v = " ".join(s for s in (_text(x) for x in v) if s)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        return None
    s = str(v).strip()
    return s or None


def _first(v: object) -> str | None:
    if isinstance(v, list | tuple):
        return next((s for s in (_text(x) for x in v) if s), None)
    return _text(v)


def _categories(rec: dict) -> frozenset[str]:
    """Every element of every category path (2014 `categories`: paths; 2018 `category`: one path)."""
    out: set[str] = set()
    for key in ("categories", "category"):
        v = rec.get(key)
        stack = [v]
        while stack:
            x = stack.pop()
            if isinstance(x, list | tuple):
                stack.extend(x)
            elif isinstance(x, str) and x.strip():
                out.add(x.strip())
    return frozenset(out)


def _read_meta(path: Path, wanted: set[str], desc: str) -> dict[str, _Meta]:
    """Metadata of the reviewed items only (the full files are far bigger than any one import)."""
    out: dict[str, _Meta] = {}
    for lineno, rec in _records(path, desc):
        asin = _required_str(path, lineno, rec, "asin")
        if asin not in wanted or asin in out:
            continue
        image = _first(rec.get("imageURLHighRes")) or _first(rec.get("imageURL")) or _text(rec.get("imUrl"))
        out[asin] = _Meta(
            title=_text(rec.get("title")),
            description=_text(rec.get("description")),
            image=image,
            categories=_categories(rec),
        )
    return out


# ---- filtering -------------------------------------------------------------------------------------
def _filter(
    user: np.ndarray, item: np.ndarray, dom: np.ndarray, k_core: int, min_per_domain: int
) -> np.ndarray:
    """Rows kept by the iterative k-core on users and items plus the per-domain activity rule.

    Both rules only ever remove rows and removing rows never makes a rule pass that failed, so applying
    them together until nothing changes gives the same (largest) result as alternating them.
    """
    n_users = int(user.max()) + 1 if len(user) else 0
    n_items = int(item.max()) + 1 if len(item) else 0
    keep = np.ones(len(user), dtype=bool)
    while True:
        idx = np.flatnonzero(keep)
        u, i, d = user[idx], item[idx], dom[idx]
        ok = np.ones(len(idx), dtype=bool)
        if k_core > 1:
            ok &= np.bincount(u, minlength=n_users)[u] >= k_core
            ok &= np.bincount(i, minlength=n_items)[i] >= k_core
        if min_per_domain > 0:
            per = np.bincount(u * 2 + d, minlength=2 * n_users).reshape(n_users, 2)
            ok &= per.min(axis=1)[u] >= min_per_domain
        if ok.all():
            return keep
        keep[idx[~ok]] = False


def import_amazon(
    domain_a: AmazonSource,
    domain_b: AmazonSource,
    k_core: int = 5,
    min_per_domain: int = 1,
    max_len: int | None = None,
    name: str = "amazon",
) -> CDDataset:
    """Build a two-domain dataset from raw Amazon reviews (+ metadata for titles and category filters).

    Steps: read reviews (a user reviewing an item twice keeps the earliest); an item listed under both
    sources belongs to domain A; iteratively keep users and items with >= `k_core` interactions over
    both domains and users with >= `min_per_domain` in each domain, until stable; optionally keep each
    user's last `max_len` interactions; sort each user's interactions by time (ties keep file order,
    domain A's file first). Items are ordered A then B, by ASIN within a domain; users by reviewerID.
    Items without metadata get no text.
    """
    sources = (domain_a, domain_b)
    if not domain_a.name or not domain_b.name or domain_a.name == domain_b.name:
        raise ValueError(f"two distinct domain names needed, got {domain_a.name!r} and {domain_b.name!r}")
    for src in sources:
        if src.category is not None and src.meta is None:
            raise ValueError(f"domain {src.name!r}: a category filter needs a metadata file")
    if k_core < 0 or min_per_domain < 0 or (max_len is not None and max_len < 1):
        raise ValueError("k_core and min_per_domain must be >= 0 and max_len >= 1")

    # reviews; a file shared by both sources is read once
    review_cache: dict[Path, pd.DataFrame] = {}
    frames = []
    for src in sources:
        key = Path(src.reviews).resolve()
        if key not in review_cache:
            review_cache[key] = _read_reviews(Path(src.reviews), f"{src.name} reviews")
        frames.append(review_cache[key])

    # metadata, restricted to the reviewed items; a file shared by both sources is read once
    wanted: dict[Path, set[str]] = {}
    for src, frame in zip(sources, frames, strict=True):
        if src.meta is not None:
            wanted.setdefault(Path(src.meta).resolve(), set()).update(pd.unique(frame["asin"]))
    meta_cache: dict[Path, dict[str, _Meta]] = {}
    metas: list[dict[str, _Meta]] = []
    for src in sources:
        if src.meta is None:
            metas.append({})
            continue
        key = Path(src.meta).resolve()
        if key not in meta_cache:
            meta_cache[key] = _read_meta(Path(src.meta), wanted[key], f"{src.name} metadata")
        metas.append(meta_cache[key])

    for d, src in enumerate(sources):
        if src.meta is not None and src.category is None and len(frames[d]):
            reviewed = pd.unique(frames[d]["asin"])
            if not any(a in metas[d] for a in reviewed):
                log.warning(
                    "domain %r: none of its %d reviewed items is in its metadata file %s, so they get no "
                    "title or description (metadata of another category, or the two metadata files swapped?)",
                    src.name,
                    len(reviewed),
                    src.meta,
                )
        if src.category is not None:
            cat = src.category.strip()
            in_cat = [a for a, m in metas[d].items() if cat in m.categories]
            frames[d] = frames[d][frames[d]["asin"].isin(in_cat)]

    df = pd.concat([f.assign(domain=np.int8(d)) for d, f in enumerate(frames)], ignore_index=True)
    ucode, ukeys = pd.factorize(df["user"])
    icode, ikeys = pd.factorize(df["asin"])
    ts = df["ts"].to_numpy(dtype=np.int64)
    order = np.arange(len(df), dtype=np.int64)  # file order, domain A's file first
    item_dom = np.ones(len(ikeys), dtype=np.int8)
    np.minimum.at(item_dom, icode, df["domain"].to_numpy(dtype=np.int8))
    in_both = np.zeros(len(ikeys), dtype=np.int8)
    np.bitwise_or.at(in_both, icode, np.where(df["domain"].to_numpy() == 0, 1, 2).astype(np.int8))
    both = np.flatnonzero(in_both == 3)
    if len(both) and not (item_dom == 1).any():
        why = (
            f"its category filter ({domain_b.category!r}) keeps only items that domain {domain_a.name!r} "
            "keeps too; give domain A a category that excludes them"
            if domain_a.category is not None or domain_b.category is not None
            else "the same reviews file twice? one file can serve two domains through "
            "--a-category/--b-category"
        )
        raise ValueError(
            f"every item reviewed for domain {domain_b.name!r} is also reviewed for {domain_a.name!r}, so "
            f"domain {domain_b.name!r} has no items ({why})"
        )
    if len(both):
        log.warning(
            "%d item(s) are reviewed in both sources (e.g. %s); each is kept in domain %r, the first",
            len(both),
            ", ".join(map(str, ikeys[both[:3]])),
            domain_a.name,
        )

    # same user and item twice: keep the earliest (ties: file order)
    first = np.lexsort((order, ts))
    pair = pd.Series(ucode[first].astype(np.int64) * max(len(ikeys), 1) + icode[first])
    rows = np.sort(first[~pair.duplicated().to_numpy()])
    n_deduped = len(rows)
    u, i, t = ucode[rows], icode[rows], ts[rows]

    keep = _filter(u, i, item_dom[i], k_core, min_per_domain)
    u, i, t, o = u[keep], i[keep], t[keep], rows[keep]
    if len(u) == 0:
        raise ValueError(
            f"no interactions left after filtering (k_core={k_core}, min_per_domain={min_per_domain}); "
            "lower the thresholds or check that the two sources share users"
        )

    # users by key; each user's interactions by time, ties in file order
    user_keys_all = np.asarray(ukeys, dtype=object)
    kept_users = np.unique(u)
    user_rank = np.empty(len(ukeys), dtype=np.int64)
    by_key = kept_users[np.argsort(user_keys_all[kept_users].astype(str), kind="stable")]
    user_rank[by_key] = np.arange(len(by_key))
    ur = user_rank[u]
    seq = np.lexsort((o, t, ur))
    ur, i, t = ur[seq], i[seq], t[seq]
    lengths = np.bincount(ur, minlength=len(by_key))
    if max_len is not None:
        starts = np.repeat(np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        pos = np.arange(len(ur)) - starts
        last = pos >= np.repeat(lengths, lengths) - max_len
        ur, i, t = ur[last], i[last], t[last]
        lengths = np.minimum(lengths, max_len)

    # items: A then B, by ASIN within a domain
    item_codes = np.unique(i)
    cat = pd.DataFrame({"code": item_codes, "key": np.asarray(ikeys, dtype=object)[item_codes]})
    cat["domain"] = item_dom[item_codes]
    cat = cat.sort_values(["domain", "key"], kind="stable").reset_index(drop=True)
    gid_of_code = np.zeros(len(ikeys), dtype=np.int64)
    gid_of_code[cat["code"].to_numpy()] = np.arange(1, len(cat) + 1)
    info = [
        metas[dm].get(k) or metas[1 - dm].get(k)
        for k, dm in zip(cat["key"], cat["domain"].to_numpy(dtype=int), strict=True)
    ]
    items = make_items_frame(
        cat["key"].to_numpy(dtype=object),
        cat["domain"].to_numpy(dtype=np.int8),
        titles=[m.title if m else None for m in info],
        descriptions=[m.description if m else None for m in info],
        images=[m.image if m else None for m in info],
    )
    return CDDataset(
        name=name,
        domains=(domain_a.name, domain_b.name),
        items=items,
        user_keys=user_keys_all[by_key],
        sequences=Ragged.from_lengths(lengths, gid_of_code[i]),
        timestamps=Ragged.from_lengths(lengths, t),
        source=f"amazon-raw: {domain_a.reviews}, {domain_b.reviews}",
        notes={
            "import": {
                "k_core": k_core,
                "min_per_domain": min_per_domain,
                "max_len": max_len,
                "deduplicated_interactions": int(n_deduped),
                "items_in_both_sources": int((in_both == 3).sum()),
            }
        },
    )
