import dataclasses

import numpy as np
import pytest

from temarec.data.splits import get_split, leave_one_out


def test_leave_one_out_by_time(afk):
    sp = leave_one_out(afk)
    seqs = afk.sequences
    assert len(sp.test) == afk.n_users  # every user has >= 10 interactions
    for u in (0, 17, afk.n_users - 1):
        s = seqs.row(u)
        assert sp.test.target[u] == s[-1] and sp.valid.target[u] == s[-2]
        assert sp.test.history.row(u).tolist() == s[:-1].tolist()
        assert sp.valid.history.row(u).tolist() == s[:-2].tolist()
        assert sp.train.row(u).tolist() == s[:-2].tolist()
    np.testing.assert_array_equal(sp.test.target_domain, afk.item_domain[sp.test.target])
    # the test split is never part of training
    assert len(sp.train.values) == len(seqs.values) - 2 * afk.n_users


def test_validation_excludes_nothing_that_came_after_its_target(demo_ds):
    """Selection may not see the test item: a validation ranking once hid it (rule 1)."""
    sp = leave_one_out(demo_ds)
    seqs = demo_ds.sequences.take(sp.valid.users)
    for i in range(0, len(sp.valid), 97):
        s = seqs.row(i)
        assert sp.valid.exclude.row(i).tolist() == s[:-1].tolist()  # history and its own target
        assert sp.test.exclude.row(i).tolist() == s.tolist()
    # where the test item appears only last, it is not excluded from its validation ranking
    np.testing.assert_array_equal(sp.valid.exclude.lengths, sp.test.exclude.lengths - 1)


def test_a_published_split_never_excludes_a_test_target_from_validation(need_real):
    """Published splits hold validation and test users apart (amazon-art-office): nothing leaks."""
    need_real("amazon-art-office")
    from temarec.data.registry import load_dataset

    sp = load_dataset("amazon-art-office").published_split
    test_target = dict(zip(sp.test.users.tolist(), sp.test.target.tolist(), strict=True))
    for i, u in enumerate(sp.valid.users.tolist()):
        if u in test_target:
            before = set(sp.valid.history.row(i).tolist()) | {int(sp.valid.target[i])}
            t = test_target[u]
            assert t in before or t not in set(sp.valid.exclude.row(i).tolist())


def test_auto_uses_published_split_where_there_is_one(demo_ds):
    assert get_split(demo_ds).name == "loo"


def test_a_dataset_nobody_can_be_evaluated_on_is_refused(demo_ds):
    """Users with fewer than 3 interactions only train; with none left there is nothing to select on,
    and the metrics would be NaN."""
    short = demo_ds.sequences.truncate(np.minimum(demo_ds.sequences.lengths, 2))
    ds = dataclasses.replace(demo_ds, sequences=short, timestamps=None)
    with pytest.raises(ValueError, match="no user can be evaluated"):
        get_split(ds, "loo")
