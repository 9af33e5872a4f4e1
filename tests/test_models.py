"""Every model honours the interface: a finite differentiable loss and consistent scores."""

import pytest
import torch

from temarec.config import ModelConfig
from temarec.data.splits import leave_one_out
from temarec.models import MODELS, build_model
from temarec.models.base import domain_subsequence


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("negatives", [0, 16])
def test_interface(demo_ds, name, negatives):
    torch.manual_seed(0)
    info = demo_ds.info()
    model = build_model(info, ModelConfig(name=name, hidden=16, softmax_negatives=negatives), max_len=12)
    split = leave_one_out(demo_ds)
    model.fit_static(split.train)
    seq = torch.from_numpy(split.test.history.padded(12)[:8])
    if model.trainable:
        window = torch.from_numpy(split.train.padded(13)[:8])
        loss = model.loss(window)
        assert torch.isfinite(loss) and loss.item() > 0
        loss.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    for d in (0, 1):
        all_scores = model.score_all(seq, d)
        assert all_scores.shape == (8, info.domain_size[d])
        cands = torch.randint(0, info.domain_size[d], (8, 5)) + info.domain_offset[d]
        torch.testing.assert_close(
            model.score_candidates(seq, d, cands), all_scores.gather(1, cands - info.domain_offset[d])
        )
    # serving's every-domain path (one encoding of the history where the model allows) gives the same
    for d, scores in zip((1, 0), model.score_all_domains(seq, [1, 0]), strict=True):
        torch.testing.assert_close(scores, model.score_all(seq, d))


def test_domain_subsequence_keeps_order():
    item_domain = torch.tensor([-1, 0, 0, 1, 1, 0])
    seq = torch.tensor([[0, 1, 3, 2, 4, 5]])
    assert domain_subsequence(seq, item_domain, 0).tolist() == [[0, 0, 0, 1, 2, 5]]
    assert domain_subsequence(seq, item_domain, 1).tolist() == [[0, 0, 0, 0, 3, 4]]


def test_pop_counts_training_items_only(demo_ds):
    info = demo_ds.info()
    model = build_model(info, ModelConfig(name="pop"))
    split = leave_one_out(demo_ds)
    model.fit_static(split.train)
    assert model.counts.sum().item() == len(split.train.values)
