"""Why an item is recommended: the tags it shares with the user's history.

A recommendation is explained by the tags of the recommended item that also occur on items the user
interacted with, strongest first (the item's own tag weight times how often the history carries the tag).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from temarec.features.item_features import ItemFeatures


@dataclass
class TagLink:
    tag: str
    weight: float  # the tag's weight on the recommended item
    history_items: list[int]  # global ids of history items that carry the tag, latest first


def linking_tags(feats: ItemFeatures, history: np.ndarray, item: int, k: int = 3) -> list[TagLink]:
    """Up to `k` tags shared by `item` and the `history` (global ids, oldest first)."""
    return linking_tags_many(feats, history, np.asarray([item]), k)[0]


def linking_tags_many(
    feats: ItemFeatures, history: np.ndarray, items: np.ndarray, k: int = 3
) -> list[list[TagLink]]:
    """`linking_tags` of several items against one history, compared in one array operation."""
    items = np.asarray(items, dtype=np.int64)
    if feats.tag_ids is None or feats.tag_names is None or len(items) == 0 or k < 1:
        return [[] for _ in items]
    ids, w = feats.tag_ids[items], feats.tag_weights[items]  # [n, T]
    hist = np.asarray(history)[::-1]
    hist = hist[hist > 0]
    hist_tags = feats.tag_ids[hist]  # [H, T]
    # carries[h, i, j]: history item h has tag j of item i (an absent tag, -1, is never carried)
    carries = (hist_tags[:, None, :, None] == ids[None, :, None, :]).any(2) & (ids >= 0)[None]
    support = carries.sum(0)  # [n, T]
    order = np.argsort(-np.where(support > 0, w * support, -1.0), axis=1, kind="stable")[:, :k]
    return [
        [
            TagLink(feats.tag_names[ids[i, j]], float(w[i, j]), hist[carries[:, i, j]].tolist())
            for j in order[i]
            if support[i, j] > 0
        ]
        for i in range(len(items))
    ]
