"""Top-k next items per domain for given users, or for histories the caller sends, excluding what they
already have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from temarec.data.dataset import CDDataset
from temarec.data.ragged import Ragged
from temarec.evaluation.evaluator import check_scores
from temarec.models.base import RecModel
from temarec.serving.explain import LinkTable, link_table

if TYPE_CHECKING:
    from temarec.serving.load import LoadedRun


@torch.no_grad()
def rank_histories(
    model: RecModel,
    ds: CDDataset,
    hist: Ragged,
    domains: list[int],
    k: int = 10,
    max_len: int = 50,
    empty: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per domain of `domains`, `[n, k]` global item ids and scores of the next item after each history
    (global ids, oldest first; its items excluded); the histories are encoded once for all domains where
    the model allows it. `empty` (scores per global item id, e.g. training popularity) ranks the empty
    histories instead of the model's all-padding state, which is no preference at all."""
    model.eval()
    info = ds.info()
    seq = torch.from_numpy(hist.padded(max_len))
    r, v = hist.row_ids(), hist.values
    out = []
    for domain, scores in zip(domains, model.score_all_domains(seq, list(domains)), strict=True):
        check_scores(model, "score_all", scores, (len(hist), int(info.domain_size[domain])))
        scores = scores.float().clone()
        if empty is not None:
            rows = np.flatnonzero(hist.lengths == 0)
            if len(rows):
                lo = int(info.domain_offset[domain])
                fallback = torch.from_numpy(np.asarray(empty[lo : lo + scores.shape[1]], dtype=np.float32))
                scores[torch.from_numpy(rows)] = fallback
        keep = info.item_domain[v] == domain
        local = v[keep] - info.domain_offset[domain]
        scores[torch.from_numpy(r[keep]), torch.from_numpy(local)] = float("-inf")
        top = scores.topk(min(k, scores.shape[1]), dim=1)
        out.append((top.indices.numpy() + info.domain_offset[domain], top.values.numpy()))
    return out


def recommend(
    model: RecModel, ds: CDDataset, users: np.ndarray, domain: int, k: int = 10, max_len: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """`[n, k]` global item ids and scores for each dataset user's next item in `domain` (history
    excluded)."""
    hist = ds.sequences.take(np.asarray(users))
    return rank_histories(model, ds, hist, [domain], k=k, max_len=max_len)[0]


class UnknownUserError(ValueError):
    """A user key the served dataset does not have."""


class UnknownDomainError(ValueError):
    """A domain name the served dataset does not have."""


class UnknownItemError(ValueError):
    """An item key the served dataset does not have."""


def _check_request(run: LoadedRun, k: int, domains: list[str] | None, n_tags: int = 0) -> list[str]:
    """The domains asked for (each once, in order); wrong types fail here with a TypeError rather than
    deep in torch (`k=2.5`) or as nonsense (`domains='Food'` read letter by letter)."""
    ds = run.ds
    for name, v in (("k", k), ("n_tags", n_tags)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n_tags < 0:
        raise ValueError(f"n_tags must be >= 0, got {n_tags}")
    if isinstance(domains, str):
        raise TypeError(f"domains must be a list of domain names, got the string {domains!r}")
    names = list(ds.domains) if not domains else list(dict.fromkeys(domains))
    unknown = [d for d in names if d not in ds.domains]
    if unknown:
        raise UnknownDomainError(
            f"unknown domain(s) {unknown} in dataset {ds.name!r}; it has {list(ds.domains)}"
        )
    return names


def _explained(
    run: LoadedRun,
    hist: Ragged,
    labels: list[dict],
    k: int,
    names: list[str],
    n_tags: int,
    empty: np.ndarray | None = None,
) -> list[dict]:
    """One record per (history, domain): `labels[i]` plus the domain and its explained top-k items."""
    ds = run.ds
    keys, titles = run.item_keys, run.item_titles
    ranked = rank_histories(
        run.model,
        ds,
        hist,
        [ds.domains.index(n) for n in names],
        k=k,
        max_len=run.cfg.data.max_len,
        empty=empty,
    )
    per_domain = []  # [domain][history] records
    for name, (ids, scores) in zip(names, ranked, strict=True):
        shown = np.isfinite(scores).tolist()  # fewer than k left when a history covers the rest
        width = ids.shape[1]
        because = (
            _because(run, link_table(run.features, hist, ids, k=n_tags)) if run.features is not None else None
        )
        item_keys, item_titles, score_list = keys[ids].tolist(), titles[ids].tolist(), scores.tolist()
        per_domain.append(
            [
                {
                    **labels[row],
                    "domain": name,
                    "items": [
                        {
                            "item": item_keys[row][i],
                            "title": item_titles[row][i],
                            "score": score_list[row][i],
                            "because": because[row * width + i] if because is not None else [],
                        }
                        for i in range(width)
                        if shown[row][i]
                    ],
                }
                for row in range(len(hist))
            ]
        )
    return [records[row] for row in range(len(hist)) for records in per_domain]


def _because(run: LoadedRun, t: LinkTable) -> list[list[dict]]:
    """The `because` list of every recommended item of a link table, flat in `[history, item]` order,
    with the dataset's own keys (only the slots that hold a link become Python objects)."""
    names = run.features.tag_names
    held = t.count > 0  # [B, n, k]; boolean indexing below reads the held slots in that same order
    ends = np.cumsum(held.sum(2).ravel()).tolist()
    carriers = run.item_keys[t.carriers].tolist()
    links = [
        {"tag": names[g], "weight": x, "history_items": carriers[s : s + c]}
        for g, x, s, c in zip(
            t.tag[held].tolist(),
            np.round(t.weight[held].astype(np.float64), 4).tolist(),
            t.start[held].tolist(),
            t.count[held].tolist(),
            strict=True,
        )
    ]
    return [links[s:e] for s, e in zip([0, *ends[:-1]], ends, strict=True)]


def explained_recommendations(
    run: LoadedRun, user_keys: list[str], k: int = 10, domains: list[str] | None = None, n_tags: int = 3
) -> list[dict]:
    """Top-`k` next items per user and domain, each with the tags that link it to the user's history.

    One record per (user, domain), in the order given:
    `{"user", "domain", "items": [{"item", "title", "score", "because": [{"tag", "weight",
    "history_items"}]}]}`; item and history ids are the dataset's own keys. Items the user already has
    are never recommended. Explanations need tags (`because` is empty without them).
    """
    names = _check_request(run, k, domains, n_tags)
    _require_list(user_keys, "user_keys", "user keys")
    if len(user_keys) == 0:
        return []
    users = _user_rows(run, user_keys)
    labels = [{"user": str(u)} for u in user_keys]
    return _explained(run, run.ds.sequences.take(users), labels, k, names, n_tags)


def _require_list(v: object, name: str, what: str) -> None:
    if isinstance(v, str | bytes) or not hasattr(v, "__len__"):
        raise TypeError(f"{name} must be a list of {what}, got {type(v).__name__} {v!r:.60}")


def _user_rows(run: LoadedRun, user_keys: list[str]) -> np.ndarray:
    """Row of each user key in the dataset; an unknown key is an error naming it."""
    missing = [u for u in user_keys if str(u) not in run.user_index]
    if missing:
        example = ", ".join(map(str, run.ds.user_keys[:3]))
        raise UnknownUserError(
            f"unknown user key(s) {', '.join(map(repr, missing[:5]))} in dataset {run.ds.name!r} "
            f"({len(run.user_index):,} users, keys like {example})"
        )
    return np.asarray([run.user_index[str(u)] for u in user_keys], dtype=np.int64)


def explained_recommendations_for_histories(
    run: LoadedRun,
    histories: list[list[str]],
    k: int = 10,
    domains: list[str] | None = None,
    n_tags: int = 3,
) -> list[dict]:
    """The same for histories the caller sends (item keys, oldest first), e.g. a visitor who is not in
    the dataset or a session newer than it. Records carry `"history": i` (its position in `histories`)
    instead of a user. Every item of a history is excluded from its recommendations and can explain
    them; the model reads the latest `max_len`. An item that is not in the dataset is an error naming
    it (the model has no vector for it). An empty history (a new visitor) gets the most popular items of
    the run's training data, `"basis": "popularity"` (else `"model"`): the model has nothing to condition
    on, and its all-padding state ranks items arbitrarily.
    """
    names = _check_request(run, k, domains, n_tags)
    _require_list(histories, "histories", "histories (lists of item keys)")
    if len(histories) == 0:
        return []
    index = run.item_index
    rows = []
    for i, h in enumerate(histories):
        if isinstance(h, str) or not isinstance(h, list | tuple):
            raise ValueError(f"history {i}: a list of item keys expected, got {type(h).__name__}")
        h = [str(x) for x in h]
        unknown = [x for x in h if x not in index]
        if unknown:
            example = ", ".join(map(str, run.item_keys[1:4]))
            raise UnknownItemError(
                f"history {i}: unknown item key(s) {', '.join(map(repr, unknown[:5]))} in dataset "
                f"{run.ds.name!r} ({len(index):,} items, keys like {example})"
            )
        rows.append([index[x] for x in h])
    labels = [{"history": i, "basis": "model" if r else "popularity"} for i, r in enumerate(rows)]
    return _explained(run, Ragged.from_lists(rows), labels, k, names, n_tags, empty=run.popularity)


def export_recommendations(
    run: LoadedRun,
    path: str | Path,
    k: int = 10,
    domains: list[str] | None = None,
    n_tags: int = 3,
    users: list[str] | None = None,
    batch_size: int = 1024,
    progress: bool = True,
) -> int:
    """Write the explained top-`k` of every user (or of `users`) as JSON lines, one record per (user,
    domain) in the shape of `explained_recommendations`, ranked `batch_size` users at a time.

    The file appears whole or not at all: lines go to a temporary file beside `path`, renamed over it at
    the end, so an interrupted export leaves the previous file (if any) as it was. Returns the number of
    records written. A path ending in `.gz` is gzip-compressed.
    """
    import gzip

    from tqdm.auto import tqdm

    from temarec.files import atomic_write

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    names = _check_request(run, k, domains, n_tags)
    if users is not None:
        _require_list(users, "users", "user keys")
    keys = [str(u) for u in run.ds.user_keys] if users is None else [str(u) for u in users]
    # checked once, here: unknown keys fail before anything is written
    rows = np.arange(len(keys), dtype=np.int64) if users is None else _user_rows(run, keys)
    path = Path(path)
    written = 0

    def write(tmp: str) -> None:
        nonlocal written
        with (
            (gzip.open if path.suffix == ".gz" else open)(tmp, "wt", encoding="utf-8") as f,
            tqdm(total=len(keys), unit="user", desc="recommend", disable=not progress) as bar,
        ):
            for s in range(0, len(keys), batch_size):
                part = keys[s : s + batch_size]
                hist = run.ds.sequences.take(rows[s : s + batch_size])
                labels = [{"user": u} for u in part]
                for rec in _explained(run, hist, labels, k, names, n_tags):
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    written += 1
                bar.update(len(part))

    atomic_write(path, write)
    return written
