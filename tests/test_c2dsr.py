"""C2DSR: interface, item graphs from training data only, no look-ahead, the switchable infomax term."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from temarec.config import ModelConfig
from temarec.data.ragged import Ragged
from temarec.data.splits import leave_one_out
from temarec.models import build_model
from temarec.models.c2dsr import C2DSR


def _model(ds, max_len: int = 12, **kw) -> C2DSR:
    torch.manual_seed(0)
    cfg = ModelConfig(name="c2dsr", hidden=16, layers=1, **kw)
    return build_model(ds.info(), cfg, max_len=max_len)


@pytest.fixture(scope="module")
def split(demo_ds):
    return leave_one_out(demo_ds)


def _edges(adj: torch.Tensor) -> set[tuple[int, int]]:
    r, c = adj.coalesce().indices().tolist()
    return set(zip(r, c, strict=True))


@pytest.mark.parametrize("negatives", [0, 16])
def test_scores_have_the_right_shapes(demo_ds, split, negatives):
    info = demo_ds.info()
    model = _model(demo_ds, softmax_negatives=negatives)
    model.fit_static(split.train)
    model.eval()
    seq = torch.from_numpy(split.test.history.padded(12)[:8])
    with torch.no_grad():
        for d in (0, 1):
            full = model.score_all(seq, d)
            assert full.shape == (8, info.domain_size[d]) and torch.isfinite(full).all()
            cands = torch.randint(0, info.domain_size[d], (8, 5)) + info.domain_offset[d]
            part = model.score_candidates(seq, d, cands)
            assert part.shape == (8, 5)
            torch.testing.assert_close(part, full.gather(1, cands - info.domain_offset[d]))
        assert model.hidden(seq).shape == (8, 12, 3, 16)


def test_loss_is_finite_and_decreases(demo_ds, split):
    model = _model(demo_ds, dropout=0.0)
    model.fit_static(split.train)
    window = torch.from_numpy(split.train.padded(13)[:64])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = model.loss(window)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_graphs_come_from_the_training_sequences_only(demo_ds):
    info = demo_ds.info()
    a1, a2, a3 = (info.domain_offset[0] + i for i in range(3))
    b1, b2 = info.domain_offset[1], info.domain_offset[1] + 1
    model = _model(demo_ds)
    model.fit_static(Ragged.from_lists([[a1, b1, a2], [a2, a3, a3], [b2]]))
    sym = lambda pairs: {(u, v) for p in pairs for u, v in (p, p[::-1])}  # noqa: E731
    assert _edges(model.adj_mix) == sym([(a1, b1), (b1, a2), (a2, a3)])  # no self-loop a3-a3
    assert _edges(model.adj_dom) == sym([(a1, a2), (a2, a3)])  # A subsequence a1 a2; B has no pair
    deg = {a1: 1, a2: 2, a3: 1}
    dense = model.adj_dom.to_dense()
    assert dense[a1, a2].item() == pytest.approx((deg[a1] * deg[a2]) ** -0.5)
    # items seen only outside training (here b2 alone, and every other item) have no edge at all
    assert dense[b2].abs().sum() == 0 and model.adj_mix.to_dense()[b2].abs().sum() == 0


def test_leave_one_out_graph_ignores_valid_and_test(demo_ds, split):
    info = demo_ds.info()
    model = _model(demo_ds)
    held_out = int(split.test.target[0])
    train = split.train
    # remove every training occurrence of one test target: it must then have no edge
    keep = train.values != held_out
    lengths = np.bincount(train.row_ids()[keep], minlength=len(train))
    model.fit_static(Ragged.from_lengths(lengths, train.values[keep]))
    nodes = {u for u, _ in _edges(model.adj_mix)} | {u for u, _ in _edges(model.adj_dom)}
    assert held_out not in nodes
    assert nodes <= set(train.values[keep].tolist())
    assert 0 not in nodes and max(nodes) <= info.n_items


def test_graphs_are_rebuilt_not_saved(demo_ds, split):
    model = _model(demo_ds)
    assert not any("adj" in k for k in model.state_dict())
    seq = torch.from_numpy(split.test.history.padded(12)[:4])
    with pytest.raises(RuntimeError, match="fit_static"):
        model.eval()
        model.score_all(seq, 0)
    model.fit_static(split.train)
    model.eval()
    with torch.no_grad():
        before = model.score_all(seq, 1)
    other = _model(demo_ds)
    other.fit_static(split.train)
    other.load_state_dict(model.state_dict())
    other.eval()
    with torch.no_grad():
        torch.testing.assert_close(other.score_all(seq, 1), before)


def test_eval_cache_follows_weight_changes(demo_ds, split):
    model = _model(demo_ds)
    model.fit_static(split.train)
    model.eval()
    seq = torch.from_numpy(split.test.history.padded(12)[:4])
    with torch.no_grad():
        before = model.score_all(seq, 0)
        model.item_emb.weight.mul_(2.0)  # in place, as an optimiser step or load_state_dict would
        after = model.score_all(seq, 0)
    assert not torch.allclose(before, after)


def test_no_information_from_later_positions(demo_ds, split):
    """Changing a later item, even to the other domain, leaves every earlier state unchanged."""
    info = demo_ds.info()
    model = _model(demo_ds, max_len=10)
    model.fit_static(split.train)
    model.eval()
    a, b = info.domain_offset[0], info.domain_offset[1]
    seq = torch.tensor([[0, 0, a, b, a + 1, a + 2, b + 1, a + 3, b + 2, a + 4]])
    with torch.no_grad():
        base = model.hidden(seq)
        for col, new in [(5, b + 7), (7, a + 9), (9, b + 3), (6, a + 5)]:
            changed = seq.clone()
            changed[0, col] = new
            h = model.hidden(changed)
            torch.testing.assert_close(h[:, :col], base[:, :col])
            assert not torch.allclose(h[:, col:], base[:, col:])


def test_domain_state_is_the_last_item_of_that_domain(demo_ds, split):
    info = demo_ds.info()
    model = _model(demo_ds, max_len=6)
    model.fit_static(split.train)
    model.eval()
    a, b = info.domain_offset[0], info.domain_offset[1]
    seq = torch.tensor([[0, b, a, b + 1, b + 2, a + 1]])
    with torch.no_grad():
        h = model.hidden(seq)
    torch.testing.assert_close(h[0, 1, 1], model.empty.detach())  # no A item yet
    torch.testing.assert_close(h[0, 3, 1], h[0, 2, 1])  # a B item does not move the A state
    torch.testing.assert_close(h[0, 4, 1], h[0, 2, 1])
    torch.testing.assert_close(h[0, 2, 2], h[0, 1, 2])
    assert not torch.allclose(h[0, 5, 1], h[0, 4, 1])


def test_user_state_matches_the_last_position(demo_ds, split):
    """The trimmed scoring path equals the head of the full hidden states."""
    model = _model(demo_ds)
    model.fit_static(split.train)
    model.eval()
    seq = torch.from_numpy(split.test.history.padded(12)[:16])
    with torch.no_grad():
        h = model.hidden(seq)[:, -1]
        for d in (0, 1):
            torch.testing.assert_close(model.user_state(seq, d), model.head(h, d))


def test_infomax_can_be_switched_off(demo_ds, split):
    window = torch.from_numpy(split.train.padded(13)[:32])
    rows_seen: list[int] = []
    losses = {}
    for lam in (0.0, 0.5):
        model = _model(demo_ds, dropout=0.0, c2dsr_lambda=lam)
        model.fit_static(split.train)
        hook = model.mixed.register_forward_hook(lambda _m, args, _out: rows_seen.append(args[0].shape[0]))
        loss = model.loss(window)
        hook.remove()
        loss.backward()
        disc_grad = sum(p.grad.abs().sum().item() for p in model.disc.parameters() if p.grad is not None)
        if lam == 0:
            assert disc_grad == 0  # no discriminator, and no corrupted pass through the mixed encoder
            assert rows_seen[-1] == 32
            with torch.no_grad():  # the loss is then exactly the next-item cross-entropy
                inputs, targets = window[:, :-1], window[:, 1:].masked_fill(window[:, :-1] == 0, 0)
                ce = model.domain_softmax_loss(model.hidden(inputs), targets)
            torch.testing.assert_close(loss.detach(), ce)
        else:
            assert disc_grad > 0 and rows_seen[-1] == 32 + 16
        losses[lam] = loss.item()
    assert losses[0.5] > losses[0.0]  # same weights (same seed): the BCE term adds to it


def test_corruption_replaces_one_domain_within_that_domain(demo_ds):
    info = demo_ds.info()
    model = _model(demo_ds)
    a, b = info.domain_offset[0], info.domain_offset[1]
    seq = torch.tensor([[0, a, b, a + 1, b + 1], [0, 0, a + 2, a + 3, a + 4], [0, 0, 0, 0, 0]])
    torch.manual_seed(1)
    corrupt, which = model._corrupt(seq)
    assert which[1].item() == 0  # only domain A to corrupt
    for r in range(3):
        dom = model.item_domain[seq[r]]
        changed = dom == which[r]
        assert torch.equal(corrupt[r][~changed], seq[r][~changed])
        assert (model.item_domain[corrupt[r][changed]] == which[r]).all()
    assert torch.equal(corrupt[2], seq[2])
