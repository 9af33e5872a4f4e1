import numpy as np

from temarec.data.ragged import Ragged


def test_padded_keeps_latest_items_left_padded():
    r = Ragged.from_lists([[1, 2, 3, 4], [5], []])
    np.testing.assert_array_equal(r.padded(3), [[2, 3, 4], [0, 0, 5], [0, 0, 0]])


def test_take_truncate_and_row_ids():
    r = Ragged.from_lists([[1, 2], [3, 4, 5], [6]])
    assert r.take(np.array([2, 0])).tolist() == [[6], [1, 2]]
    assert r.truncate(np.array([1, 2, 0])).tolist() == [[1], [3, 4], []]
    np.testing.assert_array_equal(r.row_ids(), [0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(r.lengths, [2, 3, 1])
