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


def test_auto_uses_published_split_where_there_is_one(demo_ds):
    assert get_split(demo_ds).name == "loo"


def test_a_dataset_nobody_can_be_evaluated_on_is_refused(demo_ds):
    """Users with fewer than 3 interactions only train; with none left there is nothing to select on,
    and the metrics would be NaN."""
    short = demo_ds.sequences.truncate(np.minimum(demo_ds.sequences.lengths, 2))
    ds = dataclasses.replace(demo_ds, sequences=short, timestamps=None)
    with pytest.raises(ValueError, match="no user can be evaluated"):
        get_split(ds, "loo")
