"""The synthetic demo world: determinism, shape guarantees and a real cross-domain signal."""

from __future__ import annotations

import time

import numpy as np
import pytest

from temarec.data.demo import DEMO_THEMES, DOMAINS, demo_item_themes, generate_demo

SMALL = dict(n_users=300, n_items_a=200, n_items_b=150)


@pytest.fixture(scope="module")
def demo():
    return generate_demo()


def _same(a, b) -> bool:
    return (
        a.fingerprint() == b.fingerprint()
        and np.array_equal(a.timestamps.values, b.timestamps.values)
        and a.items.equals(b.items)
        and np.array_equal(a.user_keys, b.user_keys)
    )


def test_deterministic_per_seed():
    a, b = generate_demo(seed=3, **SMALL), generate_demo(seed=3, **SMALL)
    assert _same(a, b)
    c = generate_demo(seed=4, **SMALL)
    assert not np.array_equal(a.sequences.values[:200], c.sequences.values[:200])
    assert not a.items["title"].equals(c.items["title"])
    assert a.fingerprint() != c.fingerprint()


def test_sizes_keys_and_notes(demo):
    assert demo.name == "demo" and demo.domains == DOMAINS == ("Food", "Kitchen")
    assert demo.n_users == 2000 and demo.n_items == 1500
    info = demo.info()
    assert info.domain_offset == (1, 801) and info.domain_size == (800, 700)
    keys = demo.items["key"].astype(str)
    assert keys.iloc[0] == "F000001" and keys.iloc[799] == "F000800"
    assert keys.iloc[800] == "K000001" and keys.iloc[-1] == "K000700"
    assert keys.str.match(r"^[FK]\d{6}$").all() and keys.is_unique
    assert (keys.str[0] == np.where(demo.items["domain"] == 0, "F", "K")).all()
    assert len(set(demo.user_keys)) == demo.n_users
    assert demo.notes == {"generator": "temarec demo", "seed": 0}
    small = generate_demo(seed=1, name="tiny", **SMALL)
    assert small.name == "tiny" and small.n_users == 300 and small.info().domain_size == (200, 150)


def test_sequence_guarantees(demo):
    seqs = demo.sequences
    lengths = seqs.lengths
    assert lengths.min() >= 8 and lengths.max() <= 40
    assert 15 <= lengths.mean() <= 30
    dom = demo.item_domain[seqs.values]
    rows = seqs.row_ids()
    per_dom = np.stack([np.bincount(rows[dom == d], minlength=demo.n_users) for d in (0, 1)])
    assert per_dom.min() >= 2  # every user: at least 2 interactions in each domain
    # no repeated item within a user's sequence
    pairs = rows * (demo.n_items + 1) + seqs.values
    assert len(np.unique(pairs)) == len(pairs)
    # every item id valid; the catalogue is broadly used
    assert seqs.values.min() >= 1 and seqs.values.max() <= demo.n_items
    assert len(np.unique(seqs.values)) > 0.8 * demo.n_items


def test_timestamps(demo):
    ts, seqs = demo.timestamps, demo.sequences
    assert np.array_equal(ts.offsets, seqs.offsets)
    v = ts.values
    assert (v % 86400 == 0).all()  # day resolution
    d = np.diff(v)
    within = np.ones(len(d), dtype=bool)
    within[seqs.offsets[1:-1] - 1] = False  # drop the jumps between users
    assert (d[within] >= 0).all()
    assert (d[within] == 0).any()  # ties happen
    assert v.min() >= 1546300800 and v.max() < 1735689600  # 2019 .. 2024


def test_items_text(demo):
    titles = demo.items["title"]
    missing = titles.isna().mean()
    assert 0.06 <= missing <= 0.14
    assert demo.items.loc[titles.isna(), "description"].isna().all()
    assert titles.dropna().str.len().min() > 5
    food = titles[(demo.items["domain"] == 0) & titles.notna()]
    assert food.str.contains(r", \S").all()  # "..., 4 oz"
    # the theme vocabulary shows up in titles: tea items mention tea words
    themes = demo_item_themes(0, 800, 700)
    tea = DEMO_THEMES.index("tea")
    tea_titles = titles[(themes[1:, 0] == tea) & titles.notna().to_numpy()]
    assert len(tea_titles) > 10
    assert tea_titles.str.contains(r"Tea|Matcha|Honey|Oolong|Kettle|Infuser|Strainer").mean() > 0.9


def test_item_themes_shape_and_popularity(demo):
    themes = demo_item_themes(0, 800, 700)
    assert themes.shape == (1501, 2) and (themes[0] == -1).all()
    assert themes[1:, 0].min() >= 0 and themes[1:, 0].max() < len(DEMO_THEMES)
    has2 = themes[1:, 1] >= 0
    assert 0.2 < has2.mean() < 0.5 and (themes[1:, 1][has2] != themes[1:, 0][has2]).all()
    for d in (0, 1):  # every theme exists in both domains
        dom = demo.items["domain"].to_numpy() == d
        assert set(themes[1:, 0][dom]) == set(range(len(DEMO_THEMES)))
    # skewed popularity: the top 10% of items take far more than 10% of interactions
    counts = np.sort(np.bincount(demo.sequences.values, minlength=1501)[1:])[::-1]
    assert counts[:150].sum() / counts.sum() > 0.3
    assert np.array_equal(themes, demo_item_themes(0, 800, 700))
    assert not np.array_equal(themes, demo_item_themes(1, 800, 700))


def test_cross_domain_signal(demo):
    """A user's Food themes rank that user's held-out Kitchen items far better than random, and far
    better than someone else's Food themes do."""
    themes = demo_item_themes(0, 800, 700)
    n_k = len(DEMO_THEMES)
    seqs = demo.sequences
    rows, items = seqs.row_ids(), seqs.values
    dom = demo.item_domain[items]
    # per-user theme profile from Food interactions only
    prof = np.zeros((demo.n_users, n_k))
    fa = dom == 0
    np.add.at(prof, (rows[fa], themes[items[fa], 0]), 1.0)
    sec = fa & (themes[items, 1] >= 0)
    np.add.at(prof, (rows[sec], themes[items[sec], 1]), 0.5)
    # Kitchen items as theme vectors; scores = profile . item themes
    kitchen = np.arange(801, 1501)
    onehot = np.zeros((len(kitchen), n_k))
    onehot[np.arange(len(kitchen)), themes[kitchen, 0]] = 1.0
    s2 = themes[kitchen, 1] >= 0
    onehot[np.flatnonzero(s2), themes[kitchen[s2], 1]] += 0.5
    pos = np.zeros((demo.n_users, len(kitchen)), dtype=bool)
    kb = dom == 1
    pos[rows[kb], items[kb] - 801] = True

    def mean_auc(profile: np.ndarray) -> float:
        rng = np.random.default_rng(0)
        score = profile @ onehot.T + 1e-6 * rng.random(pos.shape)  # random tie-break
        rank = score.argsort(1).argsort(1) + 1.0
        n_pos = pos.sum(1)
        n_neg = pos.shape[1] - n_pos
        auc = ((rank * pos).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        return float(auc.mean())

    true_auc = mean_auc(prof)
    other_auc = mean_auc(prof[np.random.default_rng(1).permutation(demo.n_users)])
    random_auc = mean_auc(np.zeros_like(prof))
    assert abs(random_auc - 0.5) < 0.02
    assert true_auc > 0.68  # about 0.74 for seed 0
    assert true_auc - other_auc > 0.15  # another user's themes: about 0.51


def test_sequential_and_complement_signal(demo):
    """Consecutive items share a theme much more often than random pairs do, and a domain switch often
    lands on the previous item's hand-written complement (matcha -> tea whisk)."""
    themes = demo_item_themes(0, 800, 700)
    seqs = demo.sequences
    v = seqs.values
    same_user = np.ones(len(v) - 1, dtype=bool)
    same_user[seqs.offsets[1:-1] - 1] = False
    a, b = v[:-1][same_user], v[1:][same_user]

    def share(x, y):
        tx, ty = themes[x], themes[y]
        return (
            (tx[:, 0] == ty[:, 0]) | (tx[:, 0] == ty[:, 1]) | ((tx[:, 1] >= 0) & (tx[:, 1] == ty[:, 0]))
        ).mean()

    rng = np.random.default_rng(0)
    consecutive = share(a, b)
    shuffled = share(a, rng.permutation(b))
    assert consecutive > shuffled + 0.2
    # cross-domain steps: same theme well above chance
    dom = demo.item_domain
    switch = dom[a] != dom[b]
    assert share(a[switch], b[switch]) > share(a[switch], rng.permutation(b[switch])) + 0.2


def test_matcha_whisk_complement(demo):
    titles = demo.items["title"]
    matcha = demo.items.index[titles.str.contains("Matcha Green Tea Powder", na=False)].to_numpy()
    whisk = set(demo.items.index[titles.str.contains("Tea Whisk|Matcha Bowl", na=False)])
    v, off = demo.sequences.values, demo.sequences.offsets
    nxt = np.flatnonzero(np.isin(v[:-1], matcha) & ~np.isin(np.arange(1, len(v)), off[1:-1]))
    followed = v[nxt + 1]
    kitchen_next = followed[demo.item_domain[followed] == 1]
    assert len(kitchen_next) > 5
    frac = np.isin(kitchen_next, list(whisk)).mean()
    assert frac > 0.2  # vs. a few % for a random Kitchen item


def test_fast_enough():
    t0 = time.perf_counter()
    generate_demo(seed=7)
    assert time.perf_counter() - t0 < 3.0


def test_rejects_too_small_catalogue():
    with pytest.raises(ValueError):
        generate_demo(n_items_a=20)
    with pytest.raises(ValueError):
        generate_demo(n_users=0)


def test_demo_seeds_are_catalogues_of_their_own_name():
    """Other seeds give other items under the same keys; a name of their own keeps tags (kept by name)
    apart, so seed 1 never reads seed 0's vocabulary."""
    from temarec.data.registry import load_dataset

    zero, one = load_dataset("demo"), load_dataset("demo", demo_seed=1)
    assert zero.items["key"].tolist() == one.items["key"].tolist()
    assert (zero.name, one.name) == ("demo", "demo-seed1")
