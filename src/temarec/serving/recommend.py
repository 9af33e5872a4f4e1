"""Top-k next items per domain for given users, excluding what they already have."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from temarec.data.dataset import CDDataset
from temarec.models.base import RecModel

if TYPE_CHECKING:
    from temarec.serving.load import LoadedRun


@torch.no_grad()
def recommend(
    model: RecModel, ds: CDDataset, users: np.ndarray, domain: int, k: int = 10, max_len: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """`[n, k]` global item ids and scores for each user's next item in `domain` (history excluded)."""
    model.eval()
    info = ds.info()
    hist = ds.sequences.take(np.asarray(users))
    seq = torch.from_numpy(hist.padded(max_len))
    scores = model.score_all(seq, domain).float().clone()
    r, v = hist.row_ids(), hist.values
    keep = info.item_domain[v] == domain
    scores[torch.from_numpy(r[keep]), torch.from_numpy(v[keep] - info.domain_offset[domain])] = float("-inf")
    top = scores.topk(min(k, scores.shape[1]), dim=1)
    return top.indices.numpy() + info.domain_offset[domain], top.values.numpy()


def _title(ds: CDDataset, item: int) -> str | None:
    t = ds.items.at[item, "title"]
    return None if t is None or (isinstance(t, float) and np.isnan(t)) or not str(t).strip() else str(t)


def item_label(ds: CDDataset, item: int) -> str:
    """The item's title, or its key where it has none (for printing)."""
    return _title(ds, item) or f"(no title: item {ds.items.at[item, 'key']})"


def explained_recommendations(
    run: LoadedRun, user_keys: list[str], k: int = 10, domains: list[str] | None = None, n_tags: int = 3
) -> list[dict]:
    """Top-`k` next items per user and domain, each with the tags that link it to the user's history.

    One record per (user, domain), in the order given:
    `{"user", "domain", "items": [{"item", "title", "score", "because": [{"tag", "weight",
    "history_items"}]}]}`; item and history ids are the dataset's own keys. Items the user already has
    are never recommended. Explanations need tags (`because` is empty without them).
    """
    from temarec.serving.explain import linking_tags

    ds = run.ds
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    index = run.user_index
    missing = [u for u in user_keys if str(u) not in index]
    if missing:
        example = ", ".join(map(str, ds.user_keys[:3]))
        raise ValueError(
            f"unknown user key(s) {', '.join(map(repr, missing[:5]))} in dataset {ds.name!r} "
            f"({len(index):,} users, keys like {example})"
        )
    names = list(ds.domains) if not domains else list(domains)
    unknown = [d for d in names if d not in ds.domains]
    if unknown:
        raise ValueError(f"unknown domain(s) {unknown} in dataset {ds.name!r}; it has {list(ds.domains)}")
    users = np.asarray([index[str(u)] for u in user_keys], dtype=np.int64)
    keys = ds.items["key"]
    out = {}
    for name in names:
        d = ds.domains.index(name)
        ids, scores = recommend(run.model, ds, users, d, k=k, max_len=run.cfg.data.max_len)
        for row, u in enumerate(users):
            hist = ds.sequences.row(int(u))
            items = []
            for i, s in zip(ids[row], scores[row], strict=True):
                if not np.isfinite(s):  # fewer than k items of the domain left outside the history
                    break
                links = [] if run.features is None else linking_tags(run.features, hist, int(i), k=n_tags)
                because = [
                    {
                        "tag": x.tag,
                        "weight": round(x.weight, 4),
                        "history_items": [str(keys[h]) for h in x.history_items],
                    }
                    for x in links
                ]
                items.append(
                    {
                        "item": str(keys[int(i)]),
                        "title": _title(ds, int(i)),
                        "score": float(s),
                        "because": because,
                    }
                )
            out[(row, name)] = {"user": str(user_keys[row]), "domain": name, "items": items}
    return [out[(row, name)] for row in range(len(users)) for name in names]
