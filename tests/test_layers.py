"""The fast dropout and the right-anchored positions of the SASRec encoder."""

import pytest
import torch

from temarec.models.layers import Dropout
from temarec.models.sasrec import SASRecEncoder


def test_dropout_keeps_the_expectation_and_rate():
    torch.manual_seed(0)
    drop = Dropout(0.3)
    assert drop.p_eff == 77 / 256  # rounded to a multiple of 1/256
    x = torch.ones(3, 66_667)  # not a multiple of the 8 bytes drawn per word
    y = drop(x)
    assert y.shape == x.shape
    assert abs((y == 0).float().mean().item() - 0.3) < 0.01
    assert abs(y.mean().item() - 1.0) < 0.01
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - 77 / 256)))
    assert Dropout(0.5).p_eff == 0.5
    drop.eval()
    assert torch.equal(drop(x), x)


def test_dropout_masks_are_independent_across_calls_and_seeded():
    drop = Dropout(0.5)
    x = torch.ones(10_000)
    torch.manual_seed(1)
    a, b = drop(x), drop(x)
    assert 0.4 < ((a == 0) == (b == 0)).float().mean().item() < 0.6
    torch.manual_seed(1)
    assert torch.equal(drop(x), a)


def test_dropout_rejects_bad_rates():
    with pytest.raises(ValueError):
        Dropout(1.0)


def test_encoder_gives_the_same_states_to_a_sequence_cut_to_its_tail():
    """Positions count from the latest item, so cutting left padding changes nothing (TEMA relies on it)."""
    torch.manual_seed(0)
    enc = SASRecEncoder(dim=16, max_len=10, layers=2, heads=2, dropout=0.1).eval()
    seq = torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5, 6, 7], [0, 0, 0, 0, 0, 0, 0, 1, 2, 9]])
    x = torch.randn(2, 10, 16) * (seq > 0).unsqueeze(-1)
    full = enc(x, seq)
    tail = enc(x[:, 5:], seq[:, 5:])
    assert torch.allclose(full[:, 5:], tail, atol=1e-5)
    with pytest.raises(ValueError, match="max_len"):
        enc(torch.zeros(1, 11, 16), torch.ones(1, 11, dtype=torch.long))
