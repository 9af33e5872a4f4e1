"""Top-k next items per domain for given users, excluding what they already have."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from temarec.data.dataset import CDDataset
from temarec.models.base import RecModel
from temarec.serving.explain import linking_tags_many

if TYPE_CHECKING:
    from temarec.serving.load import LoadedRun


@torch.no_grad()
def recommend_domains(
    model: RecModel, ds: CDDataset, users: np.ndarray, domains: list[int], k: int = 10, max_len: int = 50
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per domain of `domains`, `[n, k]` global item ids and scores of each user's next item there
    (history excluded); the history is encoded once for all of them where the model allows it."""
    model.eval()
    info = ds.info()
    hist = ds.sequences.take(np.asarray(users))
    seq = torch.from_numpy(hist.padded(max_len))
    r, v = hist.row_ids(), hist.values
    out = []
    for domain, scores in zip(domains, model.score_all_domains(seq, list(domains)), strict=True):
        scores = scores.float().clone()
        keep = info.item_domain[v] == domain
        local = v[keep] - info.domain_offset[domain]
        scores[torch.from_numpy(r[keep]), torch.from_numpy(local)] = float("-inf")
        top = scores.topk(min(k, scores.shape[1]), dim=1)
        out.append((top.indices.numpy() + info.domain_offset[domain], top.values.numpy()))
    return out


def recommend(
    model: RecModel, ds: CDDataset, users: np.ndarray, domain: int, k: int = 10, max_len: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """`[n, k]` global item ids and scores for each user's next item in `domain` (history excluded)."""
    return recommend_domains(model, ds, users, [domain], k=k, max_len=max_len)[0]


class UnknownUserError(ValueError):
    """A user key the served dataset does not have."""


class UnknownDomainError(ValueError):
    """A domain name the served dataset does not have."""


def explained_recommendations(
    run: LoadedRun, user_keys: list[str], k: int = 10, domains: list[str] | None = None, n_tags: int = 3
) -> list[dict]:
    """Top-`k` next items per user and domain, each with the tags that link it to the user's history.

    One record per (user, domain), in the order given:
    `{"user", "domain", "items": [{"item", "title", "score", "because": [{"tag", "weight",
    "history_items"}]}]}`; item and history ids are the dataset's own keys. Items the user already has
    are never recommended. Explanations need tags (`because` is empty without them).
    """
    ds = run.ds
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    missing = [u for u in user_keys if str(u) not in run.user_index]
    if missing:
        example = ", ".join(map(str, ds.user_keys[:3]))
        raise UnknownUserError(
            f"unknown user key(s) {', '.join(map(repr, missing[:5]))} in dataset {ds.name!r} "
            f"({len(run.user_index):,} users, keys like {example})"
        )
    names = list(ds.domains) if not domains else list(domains)
    unknown = [d for d in names if d not in ds.domains]
    if unknown:
        raise UnknownDomainError(
            f"unknown domain(s) {unknown} in dataset {ds.name!r}; it has {list(ds.domains)}"
        )
    users = np.asarray([run.user_index[str(u)] for u in user_keys], dtype=np.int64)
    keys, titles = run.item_keys, run.item_titles
    out = {}
    ranked = recommend_domains(
        run.model, ds, users, [ds.domains.index(n) for n in names], k=k, max_len=run.cfg.data.max_len
    )
    for name, (ids, scores) in zip(names, ranked, strict=True):
        for row, u in enumerate(users):
            n = int(np.isfinite(scores[row]).sum())  # fewer than k left when the history covers the rest
            top = ids[row, :n]
            links = (
                [[]] * n
                if run.features is None
                else linking_tags_many(run.features, ds.sequences.row(int(u)), top, k=n_tags)
            )
            items = [
                {
                    "item": keys[i],
                    "title": titles[i],
                    "score": float(s),
                    "because": [
                        {
                            "tag": x.tag,
                            "weight": round(x.weight, 4),
                            "history_items": keys[x.history_items].tolist(),
                        }
                        for x in why
                    ],
                }
                for i, s, why in zip(top, scores[row, :n], links, strict=True)
            ]
            out[(row, name)] = {"user": str(user_keys[row]), "domain": name, "items": items}
    return [out[(row, name)] for row in range(len(users)) for name in names]
