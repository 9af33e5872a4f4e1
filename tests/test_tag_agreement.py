"""Embedding-based agreement between predicted and reference tag lists."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("sentence_transformers", reason="needs the text extra: pip install temarec[text]")

from temarec.features.text_encoder import load_text_encoder  # noqa: E402
from temarec.tagging.agreement import tag_agreement  # noqa: E402


@pytest.fixture(scope="module")
def enc():
    return load_text_encoder()


def test_identical_and_surface_variants_agree_fully(enc):
    ref = {1: ["coffee mug", "ceramic"], 2: ["dark chocolate"]}
    pred = {1: ["Coffee Mugs", "Ceramic"], 2: ["dark-chocolate"]}
    out = tag_agreement(pred, ref, enc)
    assert out["precision"] == out["recall"] == out["f1"] == 1.0
    assert out["n_items"] == 2 and out["threshold"] == 0.7


def test_unrelated_tags_do_not_agree(enc):
    out = tag_agreement({1: ["sewing needle"]}, {1: ["dark chocolate"]}, enc)
    assert out["precision"] == 0.0 and out["recall"] == 0.0 and out["f1"] == 0.0


def test_synonyms_count_and_threshold_matters(enc):
    pred = {1: ["coffee cup", "sewing needle"]}
    ref = {1: ["coffee mug"]}
    out = tag_agreement(pred, ref, enc, threshold=0.7)
    assert out["precision"] == 0.5 and out["recall"] == 1.0
    assert out["f1"] == pytest.approx(2 * 0.5 / 1.5)
    strict = tag_agreement(pred, ref, enc, threshold=0.99)
    assert strict["precision"] == 0.0 and strict["recall"] == 0.0


def test_micro_average_over_common_items_only(enc):
    pred = {1: ["olive oil"], 2: ["paint brush", "canvas", "easel"], 3: ["tea"], "4": ["pasta"]}
    ref = {1: ["olive oil", "cooking"], 2: ["chocolate"], 4: ["pasta"], 9: ["unused"]}
    out = tag_agreement(pred, ref, enc)
    assert out["n_items"] == 3  # items 1, 2 and 4 ("4" as a string key counts); 3 and 9 have no partner
    assert out["n_pred"] == 5 and out["n_ref"] == 4
    assert out["precision"] == pytest.approx(2 / 5)  # olive oil, pasta
    assert out["recall"] == pytest.approx(2 / 4)  # olive oil, pasta


def test_no_common_items_is_nan(enc):
    out = tag_agreement({1: ["a tag"]}, {2: ["a tag"]}, enc)
    assert out["n_items"] == 0 and math.isnan(out["precision"]) and math.isnan(out["f1"])
    with pytest.raises(ValueError):
        tag_agreement({1: ["x"]}, {1: ["x"]}, enc, threshold=2.0)
