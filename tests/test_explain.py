"""Explanations: tags shared by a recommended item and the history, strongest first."""

from __future__ import annotations

import numpy as np

from temarec.data.ragged import Ragged
from temarec.features.item_features import ItemFeatures
from temarec.serving.explain import link_table, linking_tags, linking_tags_many


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


def test_linking_tags_many_matches_one_item_at_a_time():
    rng = np.random.default_rng(0)
    n, t = 40, 5
    tag_ids = rng.integers(0, 12, size=(n + 1, t))
    tag_ids[rng.random((n + 1, t)) < 0.3] = -1
    weights = rng.random((n + 1, t)).astype(np.float32)
    f = ItemFeatures(n_items=n, tag_ids=tag_ids, tag_weights=weights, tag_names=[f"t{i}" for i in range(12)])
    history = rng.integers(1, n + 1, size=9)
    items = np.arange(1, n + 1)
    many = linking_tags_many(f, history, items, k=3)
    latest_first = [h for h in history[::-1].tolist() if h > 0]
    for i, links in zip(items, many, strict=True):  # reference: plain loops over the item's tags
        cands = []
        for j in range(t):
            if tag_ids[i, j] < 0:
                continue
            carriers = [h for h in latest_first if tag_ids[i, j] in tag_ids[h]]
            if carriers:
                cands.append((-weights[i, j] * len(carriers), j, carriers))
        expect = [(f"t{tag_ids[i, j]}", c) for _, j, c in sorted(cands)[:3]]
        assert [(x.tag, x.history_items) for x in links] == expect
    assert any(many)


def test_link_table_of_many_histories_matches_one_history_at_a_time():
    rng = np.random.default_rng(1)
    n, t = 30, 4
    tag_ids = rng.integers(0, 9, size=(n + 1, t))
    tag_ids[rng.random((n + 1, t)) < 0.3] = -1
    tag_ids[0] = -1
    weights = rng.random((n + 1, t)).astype(np.float32)
    f = ItemFeatures(n_items=n, tag_ids=tag_ids, tag_weights=weights, tag_names=[f"t{i}" for i in range(9)])
    rows = [rng.integers(1, n + 1, size=s).tolist() for s in (0, 1, 6, 12)] + [[]]
    items = rng.integers(1, n + 1, size=(len(rows), 7))
    table = link_table(f, Ragged.from_lists(rows), items, k=2)
    for b, row in enumerate(rows):
        one = linking_tags_many(f, np.asarray(row, dtype=np.int64), items[b], k=2)
        for i, links in enumerate(one):
            got = [
                (f.tag_names[table.tag[b, i, j]], table.carriers[s : s + c].tolist())
                for j, (s, c) in enumerate(zip(table.start[b, i], table.count[b, i], strict=True))
                if c > 0
            ]
            assert got == [(x.tag, x.history_items) for x in links]
    assert (table.count[0] == 0).all() and (table.count[-1] == 0).all()  # empty histories link nothing
    empty = table.count == 0  # a slot without a link says nothing: no tag, no weight, no carriers
    assert (
        (table.tag[empty] == -1).all()
        and (table.weight[empty] == 0).all()
        and (table.start[empty] == 0).all()
    )
    assert table.weight.dtype == np.float32
    assert table.count.any()
