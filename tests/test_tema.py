"""TEMA model: the shared interface, every ablation flag, missing modalities and cold-start items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from temarec.config import ModelConfig
from temarec.data.ragged import Ragged
from temarec.features.item_features import ItemFeatures
from temarec.models import build_model
from temarec.models.base import DotModel


@pytest.fixture(scope="module")
def feats(demo_ds):
    """Synthetic but well-formed features: some items lack text, some lack tags."""
    n = demo_ds.info().n_items
    rng = np.random.default_rng(0)
    text = rng.normal(size=(n + 1, 24)).astype(np.float32)
    text[[0, 3, 4]] = 0
    tag_ids = rng.integers(0, 30, size=(n + 1, 4))
    tag_ids[:, 3] = -1
    tag_ids[[0, 5, 6]] = -1
    return ItemFeatures(
        n_items=n, text=text, tag_ids=tag_ids, tag_text=rng.normal(size=(30, 24)).astype(np.float32)
    )


ABLATIONS = [
    {},
    {"use_tags": False},
    {"tag_fusion": "mean"},
    {"tag_fusion": "rank"},
    {"tag_fusion": "idf"},
    {"cross_attention": False},
    {"intra_attention": False},
    {"tag_attention": False},
    {"use_text": False},
    {"id_only": True},
    {"softmax_negatives": 20},
    {"softmax_negatives": 20, "modality_fusion": "sum", "id_dropout": 0.5, "item_dropout": 0.1},
    {"intra_layers": 2, "history_tags": 2},
    {"intra_positions": "compact"},
    {"head_linear": False},
    {"stream_loss": 0.5},
    {"stream_loss": 1.0, "cross_attention": False, "softmax_negatives": 20},
    {"stream_loss": 1.0, "intra_attention": False},
]


def _seq(ds, n=16, length=12):
    return torch.from_numpy(ds.sequences.take(np.arange(n)).padded(length))


@pytest.mark.parametrize(
    "flags", ABLATIONS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "full"
)
def test_every_ablation_trains_and_scores(demo_ds, feats, flags):
    torch.manual_seed(0)
    info = demo_ds.info()
    model = build_model(info, ModelConfig(name="tema", hidden=16, layers=1, **flags), 11, features=feats)
    window = _seq(demo_ds, length=12)
    loss = model.loss(window)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.eval()
    seq = window[:, 1:]
    with torch.no_grad():
        for d in (0, 1):
            full = model.score_all(seq, d)
            assert full.shape == (16, info.domain_size[d]) and torch.isfinite(full).all()
            cands = torch.arange(info.domain_offset[d], info.domain_offset[d] + 7).expand(16, -1)
            part = model.score_candidates(seq, d, cands)
            torch.testing.assert_close(part, full[:, :7], rtol=1e-4, atol=1e-5)


def test_ablation_flags_change_the_network(demo_ds, feats):
    info = demo_ds.info()
    full = build_model(info, ModelConfig(name="tema", hidden=16), 11, features=feats)
    assert full.items.use_text and full.items.use_tags and full.cross is not None and full.intra is not None
    assert full.tag_att is not None
    idonly = build_model(info, ModelConfig(name="tema", hidden=16, id_only=True), 11, features=feats)
    assert idonly.items.gate is None and idonly.tag_att is None
    nocross = build_model(
        info, ModelConfig(name="tema", hidden=16, cross_attention=False), 11, features=feats
    )
    assert nocross.cross is None
    with pytest.raises(ValueError, match="cross_attention or intra_attention"):
        build_model(info, ModelConfig(name="tema", cross_attention=False, intra_attention=False), 11, feats)


def test_cold_start_item_is_scored_from_content(demo_ds, feats):
    """An item never seen in training gets a content vector, not its untrained ID vector."""
    info = demo_ds.info()
    model = build_model(info, ModelConfig(name="tema", hidden=16, layers=1), 11, features=feats)
    cold = 10
    train = Ragged.from_lists([[i for i in range(1, info.n_items + 1) if i != cold]])
    model.fit_static(train)
    model.eval()
    with torch.no_grad():
        before = model.embed(torch.tensor([cold, 11]))
        model.items.id_emb.weight[cold].add_(100.0)  # the ID vector of an unseen item must not matter
        model.items.id_emb.weight[11].add_(100.0)
        after = model.embed(torch.tensor([cold, 11]))
    torch.testing.assert_close(after[0], before[0])
    assert not torch.allclose(after[1], before[1])


def test_item_without_any_content_keeps_its_id(demo_ds, feats):
    info = demo_ds.info()
    f = ItemFeatures(
        n_items=feats.n_items, text=feats.text.copy(), tag_ids=feats.tag_ids.copy(), tag_text=feats.tag_text
    )
    f.text[5] = 0
    f.text_mask[5] = False  # item 5 has neither text nor tags (see the fixture)
    model = build_model(info, ModelConfig(name="tema", hidden=16, layers=1), 11, features=f)
    model.eval()
    with torch.no_grad():
        vec = model.embed(torch.tensor([5, 0]))
    assert torch.isfinite(vec).all() and vec[0].abs().sum() > 0 and vec[1].abs().sum() == 0


def test_intra_states_follow_each_domain(demo_ds, feats):
    """The intra stream at a position is the domain encoder's state at that domain's last item so far;
    the encoder reads the mixed window with the other domain masked, so items keep their mixed positions."""
    info = demo_ds.info()
    model = build_model(info, ModelConfig(name="tema", hidden=8, layers=1, dropout=0.0), 6, features=feats)
    model.eval()
    a0, a1, b0 = info.domain_offset[0], info.domain_offset[0] + 1, info.domain_offset[1]
    seq = torch.tensor([[0, a0, b0, a1, b0 + 1, b0 + 2]])
    masked = torch.tensor([[0, a0, 0, a1, 0, 0]])
    with torch.no_grad():
        st = model._intra_states(seq, 0)
        alone = model.intra[0](model.embed(masked), masked)
    torch.testing.assert_close(st[0, 0], model.empty.detach())  # nothing of domain A yet
    torch.testing.assert_close(st[0, 1], alone[0, 1])
    torch.testing.assert_close(st[0, 2], alone[0, 1])  # a B item does not move the A state
    torch.testing.assert_close(st[0, 3], alone[0, 3])
    torch.testing.assert_close(st[0, 5], alone[0, 3])


@pytest.mark.parametrize("name,expect_seen", [("tema", True), ("sasrec", False)])
def test_training_negatives_come_from_seen_items_for_content_models(demo_ds, feats, name, expect_seen):
    """An item absent from training is only ever a negative; a content model must not learn to bury it."""
    info = demo_ds.info()
    cfg = ModelConfig(name=name, hidden=16, layers=1, softmax_negatives=50)
    model = build_model(info, cfg, 11, features=feats if name == "tema" else None)
    train = demo_ds.sequences.take(np.arange(40))  # a small training set: many items stay unseen
    model.fit_static(train)
    seen = set(np.unique(train.values).tolist())
    drawn = torch.cat([n for n in model.sample_negatives(torch.device("cpu")) if n is not None]).tolist()
    assert all(info.item_domain[i] in (0, 1) for i in drawn)
    assert set(drawn) <= seen if expect_seen else not set(drawn) <= seen


def test_full_softmax_leaves_unseen_items_out(demo_ds, feats):
    info = demo_ds.info()
    model = build_model(
        info, ModelConfig(name="tema", hidden=16, layers=1, negatives="seen"), 11, features=feats
    )
    train = demo_ds.sequences.take(np.arange(40))
    model.fit_static(train)
    loss = model.loss(_seq(demo_ds, length=12)[:40])
    assert torch.isfinite(loss)
    # the pool's columns only: the same loss as the whole domain with unseen items masked out
    model.eval()
    seen = np.unique(train.values[train.values > 0])
    for d in (0, 1):
        off, vec = info.domain_offset[d], model.item_vectors(d)
        targets = torch.from_numpy(seen[info.item_domain[seen] == d][:7])
        u = torch.randn(len(targets), vec.shape[1])
        logits = u @ vec.T
        keep = torch.zeros(vec.shape[0], dtype=torch.bool)
        keep[torch.from_numpy(seen[info.item_domain[seen] == d] - off)] = True
        assert not keep.all()  # some items of the domain are unseen
        ref = torch.nn.functional.cross_entropy(
            logits.masked_fill(~keep, float("-inf")), targets - off, reduction="sum"
        )
        torch.testing.assert_close(model.softmax_ce(u, targets, d), ref)
    unseen = torch.tensor([int(np.setdiff1d(np.arange(1, info.n_items + 1), seen)[0])])
    with pytest.raises(ValueError, match="not seen in training"):
        model.softmax_ce(torch.randn(1, 16), unseen, int(info.item_domain[unseen[0]]))


@pytest.mark.parametrize("flags", [{}, {"cross_attention": False}])
def test_no_state_depends_on_a_later_item(demo_ds, feats, flags):
    """Changing the last item (even to the other domain) leaves every earlier position's streams as they were.

    Every position is trained against its own next item, so any dependence on later items leaks the target.
    """
    torch.manual_seed(0)
    info = demo_ds.info()
    model = build_model(
        info, ModelConfig(name="tema", hidden=16, layers=1, **flags), 12, features=feats
    ).eval()
    seq = _seq(demo_ds, n=16, length=12)
    before = model.hidden(seq)
    changed = seq.clone()
    dom = info.item_domain[changed[:, -1].numpy()]
    changed[:, -1] = torch.from_numpy(np.where(dom == 0, info.domain_offset[1], info.domain_offset[0]) + 2)
    after = model.hidden(changed)
    assert torch.allclose(before[:, :-1], after[:, :-1], atol=1e-6)
    assert not torch.allclose(before[:, -1], after[:, -1])


def test_compact_positions_read_the_domain_subsequence_as_sasrec_single(demo_ds, feats):
    """`intra_positions=compact`: at the last position, domain d's stream is the encoder run on d's
    right-aligned subsequence; earlier positions never depend on *which* later item comes (only, as in
    SASRec, on how many of the same domain follow)."""
    from temarec.models.base import domain_subsequence

    torch.manual_seed(0)
    info = demo_ds.info()
    cfg = ModelConfig(name="tema", hidden=16, layers=1, intra_positions="compact", cross_attention=False)
    model = build_model(info, cfg, 12, features=feats).eval()
    seq = _seq(demo_ds, n=16, length=12)
    h = model.hidden(seq)  # streams: intra A, intra B, tags
    for d in (0, 1):
        sub = domain_subsequence(seq, model.item_domain, d)
        has = (sub > 0).any(1)
        direct = model.intra[d](model.embed(sub), sub)[:, -1]
        assert torch.allclose(h[has, -1, d], direct[has], atol=1e-5)
    changed = seq.clone()
    last = changed[:, -1].numpy()
    dom = info.item_domain[last]
    first = np.asarray(info.domain_offset)[dom]
    other = np.where(last == first + 1, first + 2, first + 1)
    changed[:, -1] = torch.from_numpy(other)  # another item of the same domain
    assert torch.allclose(model.hidden(changed)[:, :-1], h[:, :-1], atol=1e-6)


@pytest.mark.parametrize("negatives", [0, 20])
def test_stream_loss_adds_a_loss_per_stream(demo_ds, feats, negatives):
    """The auxiliary loss is off by default and, when on, adds a positive term (same draws).

    Full (0) or sampled softmax: every item vector of the step is encoded once (one id-dropout draw),
    so the weights differ only in the auxiliary term.
    """
    info = demo_ds.info()
    torch.manual_seed(0)
    cfg = ModelConfig(name="tema", hidden=16, layers=1, softmax_negatives=negatives, stream_loss=1.0)
    model = build_model(info, cfg, 11, features=feats)
    window = _seq(demo_ds, length=12)
    losses = {}
    for w in (0.0, 0.5, 1.0):
        model.cfg.stream_loss = w
        torch.manual_seed(1)  # the same id-dropout and negative draws for every weight
        losses[w] = model.loss(window).item()
    aux = losses[1.0] - losses[0.0]
    assert aux > 0
    assert losses[0.5] - losses[0.0] == pytest.approx(aux / 2, rel=1e-4)


@pytest.mark.parametrize("negatives", [0, 20])
def test_a_training_step_encodes_its_items_once(demo_ds, feats, negatives, monkeypatch):
    """The item encoder (the costly part of a step) runs once per step, also under the full softmax."""
    info = demo_ds.info()
    torch.manual_seed(0)
    cfg = ModelConfig(name="tema", hidden=16, layers=1, softmax_negatives=negatives, stream_loss=1.0)
    model = build_model(info, cfg, 11, features=feats)
    model.train()
    calls = []
    encode = model.items.encode
    monkeypatch.setattr(model.items, "encode", lambda ids: calls.append(len(ids)) or encode(ids))
    loss = model.loss(_seq(demo_ds, length=12))
    loss.backward()
    assert len(calls) == 1
    if negatives == 0:  # the whole catalogue (and padding) was encoded in that one call
        assert calls[0] == info.n_items + 1
    assert model.items.id_emb.weight.grad is not None


def test_the_step_table_gives_the_same_domain_vectors(demo_ds, feats):
    """Inside `loss` the whole domain is read from the step's table; without dropout that must be
    exactly the domain's own encoding (the full-softmax loss equals the one from uncached vectors)."""
    info = demo_ds.info()
    torch.manual_seed(0)
    model = build_model(
        info, ModelConfig(name="tema", hidden=16, layers=1, negatives="all"), 11, features=feats
    )
    model.eval()
    window = _seq(demo_ds, length=12)
    with torch.no_grad():
        reference = DotModel.loss(model, window)  # item_vectors encodes each domain itself
        via_table = model.loss(window)
    torch.testing.assert_close(via_table, reference)


def test_eval_mode_encodes_the_catalogue_once_and_forgets_it_when_weights_change(demo_ds, feats):
    """In eval mode item vectors come from one encoding of the catalogue: the same vectors as encoding
    on demand, kept across eval() calls (a served request must not re-encode), dropped on train() and on
    loading other weights."""
    torch.manual_seed(0)
    info = demo_ds.info()
    model = build_model(info, ModelConfig(name="tema", hidden=16, layers=1), 12, features=feats).eval()
    seq = _seq(demo_ds, n=8, length=12)
    with torch.no_grad():
        torch.testing.assert_close(model.embed(seq), model.items(seq))
        for d in (0, 1):
            sl = info.domain_slice(d)
            torch.testing.assert_close(model.item_vectors(d), model.items(torch.arange(sl.start, sl.stop)))
        table = model._eval_vectors()
        model.eval()
        assert model._eval_vectors() is table  # no re-encoding for a second request
        before = model.score_all(seq, 0)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        state["items.id_emb.weight"] += 1.0
        model.load_state_dict(state)
        assert model._eval_vectors() is not table
        assert not torch.allclose(model.score_all(seq, 0), before)
        table = model._eval_vectors()
        model.train()
        model.eval()
        assert model._eval_vectors() is not table
        table = model._eval_vectors()
        model.double()  # a dtype or device move makes new tensors whose version counters may start equal
        assert model._eval_vectors().dtype == torch.float64
        model.float()
    # with autograd on (a loss in eval mode), gradients reach the item encoder: no cached table
    model.score_all(seq, 0).sum().backward()
    assert model.items.id_emb.weight.grad is not None and model.items.id_emb.weight.grad.abs().sum() > 0
