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


def test_register_model_and_constructor_arguments(demo_ds, monkeypatch):
    """A model of one's own: registered (or an entry point), built with the arguments it takes."""
    from temarec import models
    from temarec.config import RunConfig
    from temarec.models import register_model
    from temarec.models.sasrec import SASRec

    monkeypatch.setattr(models, "MODELS", dict(MODELS))

    class MySAS(SASRec):
        name = "mysas"

    register_model(MySAS)
    cfg = RunConfig.model_validate({"model": {"name": "mysas", "hidden": 16, "layers": 1}})
    m = build_model(demo_ds.info(), cfg.model, max_len=80)
    assert isinstance(m, MySAS) and m.encoder.pos.num_embeddings == 80  # a subclass gets max_len too
    with pytest.raises(ValueError, match="already registered"):
        register_model(type("Other", (SASRec,), {"name": "mysas"}))
    with pytest.raises(ValueError, match="class attribute `name`"):
        register_model(type("NoName", (SASRec,), {"name": "base"}))
    with pytest.raises(TypeError, match="RecModel subclass"):
        register_model(object)
    with pytest.raises(TypeError, match="ModelConfig"):
        build_model(demo_ds.info(), "sasrec")


def test_models_from_entry_points_are_found(monkeypatch):
    """Installed packages add models for the command line and the bench's subprocesses too."""
    import importlib.metadata as md

    from temarec import models
    from temarec.models.gru4rec import GRU4Rec

    class Plugged(GRU4Rec):
        name = "plugged"

    ep = md.EntryPoint("plugged", "x:Plugged", models.ENTRY_POINT_GROUP)
    monkeypatch.setattr(md.EntryPoint, "load", lambda self: Plugged)
    monkeypatch.setattr(
        md, "entry_points", lambda group=None: [ep] if group == models.ENTRY_POINT_GROUP else []
    )
    monkeypatch.setattr(models, "MODELS", dict(MODELS))
    monkeypatch.setattr(models, "_plugins_loaded", False)
    assert models.known_model("plugged") == "plugged" and models.needs_features("plugged") is False


def test_a_model_of_ones_own_trains_and_evaluates_through_run(demo_ds, tmp_path, monkeypatch):
    """The README's recipe: a RecModel subclass, registered, run by `run` like a built-in model."""
    from torch import nn

    from temarec import models
    from temarec.config import RunConfig
    from temarec.models import register_model
    from temarec.models.base import RecModel, shift
    from temarec.training.run import run

    monkeypatch.setattr(models, "MODELS", dict(MODELS))

    @register_model
    class MeanPool(RecModel):
        name = "meanpool"

        def __init__(self, info, cfg, max_len=50):
            super().__init__(info, cfg)
            self.emb = nn.Embedding(info.n_items + 1, cfg.hidden, padding_idx=0)

        def _user(self, seq):
            mask = (seq > 0).float().unsqueeze(-1)
            return (self.emb(seq) * mask).sum(1) / mask.sum(1).clamp(min=1) * self.cfg.params["scale"]

        def score_all(self, seq, domain):
            return self._user(seq) @ self.emb.weight[self.info.domain_slice(domain)].T

        def loss(self, window):
            inputs, targets = shift(window)
            last = targets[:, -1]
            logits = self._user(inputs) @ self.emb.weight.T
            return nn.functional.cross_entropy(logits[last > 0], last[last > 0])

    cfg = RunConfig.model_validate(
        {
            "data": {"max_len": 20},
            "model": {"name": "meanpool", "hidden": 16, "params": {"scale": 2.0}},
            "train": {"epochs": 2, "threads": 1},
            "eval": {"protocols": ["full", "uni20"]},
        }
    )
    doc = run(cfg, tmp_path / "mp", progress=False, dataset=demo_ds)
    assert doc["model"] == "meanpool" and doc["training"]["epochs"] == 2
    assert 0 < doc["test"]["all"]["NDCG@10"] <= doc["test"]["all"]["HR@10"] <= 1
    assert (tmp_path / "mp" / "metrics-uni20.json").is_file()
    # its own hyperparameters are part of the stored config, so the run can be loaded and compared
    from temarec.serving.load import read_run_config

    assert read_run_config(tmp_path / "mp").model.params == {"scale": 2.0}
    # trained from a dataset object: config.json names the default dataset, so loading says what to do
    from temarec.serving.load import RunLoadError, load_run

    with pytest.raises(RunLoadError, match=r"load_run\(path, dataset=\.\.\.\)"):
        load_run(tmp_path / "mp")
    assert load_run(tmp_path / "mp", dataset=demo_ds).model.cfg.params == {"scale": 2.0}
    changed = cfg.model_copy(deep=True)
    changed.model.params = {"scale": 3.0}
    from temarec.training.run import check_run_folder

    assert check_run_folder(tmp_path / "mp", cfg) == []
    assert check_run_folder(tmp_path / "mp", changed) == ["model.params.scale: 2.0 -> 3.0"]
    changed.model.params = {}  # a parameter dropped is a difference too
    assert check_run_folder(tmp_path / "mp", changed) == ["model.params.scale: 2.0 -> absent"]


@pytest.mark.parametrize("params", [{"x": float("nan")}, {"x": {1, 2}}, {"x": object()}])
def test_model_params_must_be_json(params):
    from temarec.config import ModelConfig

    with pytest.raises(ValueError, match="model.params must hold JSON values"):
        ModelConfig(params=params)


def test_model_params_are_refused_for_builtin_models():
    """Built-in models read ModelConfig's own fields; a parameter there would be ignored silently."""
    from temarec.config import ModelConfig

    with pytest.raises(
        ValueError, match=r"model.params \(pool\) is for models of your own; sasrec reads none"
    ):
        ModelConfig(name="sasrec", params={"pool": "max"})
