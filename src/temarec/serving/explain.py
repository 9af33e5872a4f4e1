"""Why an item is recommended: the tags it shares with the user's history.

A recommendation is explained by the tags of the recommended item that also occur on items the user
interacted with, strongest first (the item's own tag weight times how often the history carries the tag).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from temarec.data.ragged import Ragged
from temarec.features.item_features import ItemFeatures


@dataclass
class TagLink:
    tag: str
    weight: float  # the tag's weight on the recommended item
    history_items: list[int]  # global ids of history items that carry the tag, latest first


@dataclass
class LinkTable:
    """The linking tags of `[B, n]` recommended items against B histories, as arrays: slot `[b, i, j]` is
    item i's j-th strongest link (`tag < 0`: none), carried by `carriers[start : start + count]`."""

    tag: np.ndarray  # [B, n, k] tag ids, -1 where the item has fewer links
    weight: np.ndarray  # [B, n, k] the tag's weight on the item, 0 where no link
    start: np.ndarray  # [B, n, k] into `carriers`
    count: np.ndarray  # [B, n, k] history items carrying the tag (the link's support)
    carriers: np.ndarray  # global ids of history items, grouped by (history, tag), latest first


def link_table(feats: ItemFeatures, hist: Ragged, items: np.ndarray, k: int = 3) -> LinkTable:
    """Up to `k` tags each of `items[b]` shares with history `b` (global ids, oldest first), for every
    history at once: the histories' (row, tag) pairs are sorted once and the items' tags looked up in them,
    so the cost grows with the number of tags, not with histories x items x tags squared."""
    items = np.asarray(items, dtype=np.int64).reshape(len(hist), -1)
    b, n = items.shape
    k = max(int(k), 0)
    if feats.tag_ids is None or feats.tag_names is None or k == 0 or n == 0:
        none = np.zeros((b, n, 0), dtype=np.int64)
        return LinkTable(none, none.astype(np.float32), none, none, np.zeros(0, dtype=np.int64))
    vocab = max(len(feats.tag_names), int(feats.tag_ids.max()) + 1, 1)
    # every (history entry, tag) pair; an entry that lists a tag twice carries it once
    entry = np.flatnonzero(hist.values > 0)
    tags = feats.tag_ids[hist.values[entry]]  # [E, T]
    e, slot = np.nonzero(tags >= 0)
    pair = np.unique(entry[e] * vocab + tags[e, slot])
    entry, tag = pair // vocab, pair % vocab
    key = hist.row_ids()[entry] * vocab + tag
    order = np.lexsort((-entry, key))  # by (history, tag), the latest entry first
    key, carriers = key[order], hist.values[entry[order]]
    # a sentinel key past every real one keeps the lookups in range when the histories carry no tag
    keys, first, support = np.unique(np.append(key, b * vocab), return_index=True, return_counts=True)
    # look every tag of every recommended item up in that table
    ids, w = feats.tag_ids[items], feats.tag_weights[items]  # [B, n, T]
    query = np.arange(b, dtype=np.int64)[:, None, None] * vocab + ids
    at = np.searchsorted(keys, query)  # ids >= 0 keeps `query` below the sentinel, so `at` is in range
    count = np.where((ids >= 0) & (keys[at] == query), support[at], 0)
    best = np.argsort(-np.where(count > 0, w * count, -1.0), axis=2, kind="stable")[:, :, :k]
    count, ids, w, start = (np.take_along_axis(a, best, axis=2) for a in (count, ids, w, first[at]))
    live = count > 0  # slots past an item's links: tag -1, weight 0, start 0
    return LinkTable(
        np.where(live, ids, -1), np.where(live, w, 0.0), np.where(live, start, 0), count, carriers
    )


def linking_tags(feats: ItemFeatures, history: np.ndarray, item: int, k: int = 3) -> list[TagLink]:
    """Up to `k` tags shared by `item` and the `history` (global ids, oldest first)."""
    return linking_tags_many(feats, history, np.asarray([item]), k)[0]


def linking_tags_many(
    feats: ItemFeatures, history: np.ndarray, items: np.ndarray, k: int = 3
) -> list[list[TagLink]]:
    """`linking_tags` of several items against one history."""
    items = np.asarray(items, dtype=np.int64)
    t = link_table(feats, Ragged.from_lists([np.asarray(history)]), items[None], k)
    names = feats.tag_names
    return [
        [
            TagLink(names[t.tag[0, i, j]], float(t.weight[0, i, j]), t.carriers[s : s + c].tolist())
            for j, (s, c) in enumerate(zip(t.start[0, i].tolist(), t.count[0, i].tolist(), strict=True))
            if c > 0
        ]
        for i in range(len(items))
    ]
