"""The evaluator's arithmetic, checked against ranks and metrics computed by hand."""

import math

import numpy as np
import pytest
import torch

from temarec.evaluation.metrics import metrics_from_ranks, rank_of_positive
from temarec.evaluation.protocol import parse_protocol


def test_hand_computed_ranks():
    pos = torch.tensor([0.5, 0.9, 0.1])
    neg = torch.tensor([[0.6, 0.4, 0.5], [0.1, 0.2, 0.3], [0.1, 0.1, 0.2]])
    # row 0: one above (0.6), one tie (0.5) -> pessimistic 3, half 2.5
    # row 1: nothing above -> 1; row 2: one above, two ties -> 4 / 3
    np.testing.assert_allclose(rank_of_positive(pos, neg).numpy(), [3.0, 1.0, 4.0])
    np.testing.assert_allclose(rank_of_positive(pos, neg, ties="half").numpy(), [2.5, 1.0, 3.0])


def test_masked_negatives_do_not_count():
    pos = torch.tensor([0.5])
    neg = torch.tensor([[0.9, 0.8, 0.1]])
    valid = torch.tensor([[False, True, True]])
    assert rank_of_positive(pos, neg, valid).item() == 2.0


def test_constant_score_model_ranks_last():
    pos = torch.zeros(4)
    neg = torch.zeros(4, 999)
    ranks = rank_of_positive(pos, neg).numpy()
    assert (ranks == 1000).all()
    m = metrics_from_ranks(ranks)
    assert m["HR@10"] == 0.0 and m["NDCG@10"] == 0.0 and m["MRR"] == pytest.approx(1 / 1000)


def test_metrics_by_hand():
    m = metrics_from_ranks(np.array([1.0, 3.0, 7.0, 20.0]))
    assert m["HR@1"] == 0.25
    assert m["HR@5"] == 0.5
    assert m["HR@10"] == 0.75
    assert m["NDCG@5"] == pytest.approx((1 + 1 / math.log2(4)) / 4)
    assert m["NDCG@10"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(8)) / 4)
    assert m["MRR"] == pytest.approx((1 + 1 / 3 + 1 / 7 + 1 / 20) / 4)


def test_nan_scores_are_an_error():
    with pytest.raises(ValueError, match="NaN"):
        rank_of_positive(torch.tensor([float("nan")]), torch.zeros(1, 3))


def test_protocol_parsing():
    assert parse_protocol("full").is_full
    assert parse_protocol("uni999").n_neg == 999
    with pytest.raises(ValueError):
        parse_protocol("uni0")
    with pytest.raises(ValueError):
        parse_protocol("pop100")
