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
    if feats.tag_ids is None or feats.tag_names is None:
        return []
    ids, w = feats.tag_ids[item], feats.tag_weights[item]
    keep = ids >= 0
    ids, w = ids[keep], w[keep]
    if len(ids) == 0:
        return []
    hist = np.asarray(history)[::-1]
    hist = hist[hist > 0]
    hist_tags = feats.tag_ids[hist]  # [H, T]
    carries = (hist_tags[:, :, None] == ids[None, None, :]).any(1)  # [H, n_item_tags]
    support = carries.sum(0)
    order = np.argsort(-(w * support), kind="stable")
    out = []
    for j in order[:k]:
        if support[j] == 0:
            break
        out.append(TagLink(feats.tag_names[ids[j]], float(w[j]), hist[carries[:, j]].tolist()))
    return out
