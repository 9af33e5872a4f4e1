"""Explanations: tags shared by a recommended item and the history, strongest first."""

from __future__ import annotations

import numpy as np

from temarec.features.item_features import ItemFeatures
from temarec.serving.explain import linking_tags


def test_linking_tags_rank_by_weight_and_support():
    names = ["coffee", "mug", "ceramic", "tea"]
    tag_ids = np.array([[-1, -1, -1], [0, 1, -1], [0, 2, -1], [3, -1, -1], [1, 0, 2]])
    weights = np.array([[0, 0, 0], [1, 0.5, 0], [1, 0.5, 0], [1, 0, 0], [1.0, 0.9, 0.2]], dtype=np.float32)
    f = ItemFeatures(n_items=4, tag_ids=tag_ids, tag_weights=weights, tag_names=names)
    links = linking_tags(f, np.array([0, 1, 2, 3]), item=4, k=3)
    # coffee: weight .9 x 2 history items beats mug 1.0 x 1; ceramic .2 x 1 comes last
    assert [x.tag for x in links] == ["coffee", "mug", "ceramic"]
    assert links[0].history_items == [2, 1]  # latest first
    assert linking_tags(f, np.array([3]), item=4) == []  # nothing shared
    assert linking_tags(ItemFeatures(n_items=4), np.array([1]), item=2) == []  # no tags at all
