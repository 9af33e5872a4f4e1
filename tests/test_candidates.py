"""Invariants of stored candidate sets, and the evaluator on models whose ranks are known."""

import numpy as np
import pytest
import torch

from temarec.data.splits import leave_one_out
from temarec.evaluation.candidates import candidates_path, load_or_sample, sample_negatives
from temarec.evaluation.evaluator import Evaluator
from temarec.evaluation.protocol import parse_protocol
from temarec.models.base import RecModel


def check_invariants(es, info, cands, exclude_history=True):
    n, k = cands.shape
    assert n == len(es)
    srt = np.sort(cands, axis=1)
    assert (np.diff(srt, axis=1) > 0).all(), "candidates of an instance must be unique"
    dom = info.item_domain[cands]
    assert (dom == es.target_domain[:, None]).all(), "candidates must be in the target's domain"
    assert not (cands == es.target[:, None]).any(), "the positive is never a negative"
    if exclude_history:
        rows = es.exclude.row_ids()
        flat = np.zeros((n, info.n_items + 1), dtype=bool)
        flat[rows, es.exclude.values] = True
        assert not np.take_along_axis(flat, cands, axis=1).any(), "history items are never negatives"


def test_real_candidates_invariants(afk, tmp_path):
    split = leave_one_out(afk)
    info = afk.info()
    path = tmp_path / "c.npy"
    cands = load_or_sample(path, split.test, info, 999, seed=7, exclude_history=True)
    check_invariants(split.test, info, cands)
    # stored once: a second call reads the same file, a fresh draw with the same seed is identical
    np.testing.assert_array_equal(load_or_sample(path, split.test, info, 999, 7, True), cands)
    np.testing.assert_array_equal(sample_negatives(split.test, info, 999, seed=7), cands)
    assert not np.array_equal(sample_negatives(split.test, info, 999, seed=8), cands)


def test_demo_candidates_with_and_without_history(demo_ds):
    split = leave_one_out(demo_ds)
    info = demo_ds.info()
    check_invariants(split.valid, info, sample_negatives(split.valid, info, 50, seed=0))
    check_invariants(
        split.valid, info, sample_negatives(split.valid, info, 50, seed=0, exclude_history=False), False
    )


def test_too_few_eligible_negatives_is_an_error(demo_ds):
    split, info = leave_one_out(demo_ds), demo_ds.info()
    with pytest.raises(
        ValueError, match=r"uni99: user number \d+ has only \d+ items of domain .* N at most \d+, or"
    ):
        sample_negatives(split.test, info, 99, seed=0)
    size = int(info.domain_size[0])  # the first domain drawn
    with pytest.raises(
        ValueError, match=rf"uni5000: domain \w+ has only {size} items.*N at most {size - 1}, or full$"
    ):
        sample_negatives(split.test, info, 5000, seed=0, exclude_history=False)


class Oracle(RecModel):
    """Scores the target highest (a perfect model) or lowest (a hopeless one)."""

    name = "oracle"
    trainable = False

    def __init__(self, info, es, sign=1.0):
        super().__init__(info, None)
        self.es, self.sign = es, sign
        self.lookup = {tuple(es.history.row(i)[-5:]): es.target[i] for i in range(len(es))}

    def score_all(self, seq, domain):
        sl = self.info.domain_slice(domain)
        scores = torch.zeros(seq.shape[0], sl.stop - sl.start)
        for b, row in enumerate(seq.numpy()):
            t = self.lookup[tuple(row[row > 0][-5:])]
            scores[b, t - sl.start] = self.sign
        return scores


@pytest.mark.parametrize("protocol", ["full", "uni20"])
def test_evaluator_on_perfect_constant_and_worst_models(demo_ds, protocol):
    split = leave_one_out(demo_ds)
    info, es = demo_ds.info(), split.test
    p = parse_protocol(protocol)
    cands = None if p.is_full else sample_negatives(es, info, p.n_neg, seed=0)
    ev = Evaluator(info, es, p, cands, max_len=50, batch_size=37)
    perfect = ev.evaluate(Oracle(info, es, 1.0))
    assert perfect.metrics["all"]["HR@1"] == 1.0 and perfect.metrics["all"]["MRR"] == 1.0
    worst = ev.evaluate(Oracle(info, es, -1.0))
    assert worst.metrics["all"]["HR@10"] == 0.0
    const = ev.evaluate(Oracle(info, es, 0.0))  # every score equal: ties count against the positive
    assert const.metrics["all"]["HR@10"] == 0.0
    if p.is_full:
        # full ranking: worst rank = number of eligible negatives + 1, history excluded
        n_hist = np.array(
            [(info.item_domain[es.exclude.row(i)] == es.target_domain[i]).sum() for i in range(len(es))]
        )
        size = np.array(info.domain_size)[es.target_domain]
        np.testing.assert_array_equal(worst.ranks, size - n_hist + 1)
    else:
        assert (worst.ranks == p.n_neg + 1).all()


def test_candidates_path_names_everything(tmp_path):
    p = candidates_path(tmp_path, "afk-abc", "loo", "test", 999, 3, True)
    assert p.name == "loo-test-uni999-seed3-hist.npy" and p.parent.name == "afk-abc"
    # validation's second rule has files of its own: a draw of the first is never reused
    assert (
        candidates_path(tmp_path, "k", "loo", "valid", 99, 3, True).name
        == "loo-valid-v2-uni99-seed3-hist.npy"
    )


def test_validation_draws_from_its_own_stream_and_files_are_readable(demo_ds, tmp_path):
    split = leave_one_out(demo_ds)
    info = demo_ds.info()
    test = load_or_sample(tmp_path / "t.npy", split.test, info, 50, 3, True)
    valid = load_or_sample(tmp_path / "v.npy", split.valid, info, 50, 3, True, part="valid")
    np.testing.assert_array_equal(test, sample_negatives(split.test, info, 50, seed=3))  # as before
    check_invariants(split.valid, info, valid)
    # not the test draw's stream (stream 0), whose keys made same-domain instances share negatives
    assert not np.array_equal(valid, sample_negatives(split.valid, info, 50, seed=3))
    np.testing.assert_array_equal(valid, sample_negatives(split.valid, info, 50, seed=3, stream=1))
    mode = (tmp_path / "v.npy").stat().st_mode & 0o777
    assert mode & 0o044, oct(mode)  # group/other may read, as for every other file written


class AllItems(Oracle):
    """A common mistake: scores over every item of the catalogue instead of the domain's."""

    def score_all(self, seq, domain):
        return torch.zeros(seq.shape[0], self.info.n_items)


class DropsColumn(Oracle):
    def score_candidates(self, seq, domain, candidates):
        return super().score_candidates(seq, domain, candidates)[:, 1:]


def test_scores_of_the_wrong_shape_are_an_error_not_wrong_metrics(demo_ds):
    from temarec.serving.recommend import recommend

    split = leave_one_out(demo_ds)
    info, es = demo_ds.info(), split.test
    full = Evaluator(info, es, "full")  # a protocol name is parsed
    with pytest.raises(
        ValueError, match=r"AllItems.score_all returned scores of shape .*items of the domain"
    ):
        full.evaluate(AllItems(info, es))
    with pytest.raises(ValueError, match=r"AllItems.score_all returned"):
        recommend(AllItems(info, es), demo_ds, np.arange(5), 0)
    sampled = Evaluator(info, es, parse_protocol("uni20"), sample_negatives(es, info, 20, seed=0))
    with pytest.raises(ValueError, match=r"DropsColumn.score_candidates .*\[batch, candidates\]"):
        sampled.evaluate(DropsColumn(info, es))
    with pytest.raises(ValueError, match="ties"):
        Evaluator(info, es, "full", ties="optimistic")
