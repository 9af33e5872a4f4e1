"""The whole pipeline on a tiny demo world: keyphrase tags, vocabulary, features, tema, explanation."""

from __future__ import annotations

import numpy as np
import pytest

from temarec.features.build import load_item_features
from temarec.models import build_model
from temarec.pipeline import tag_catalogue, tag_folder
from temarec.serving.explain import linking_tags
from temarec.serving.recommend import recommend
from temarec.training.run import run
from temarec.training.trainer import BEST, load_weights


def test_pipeline_end_to_end(tmp_path, demo_ds, tiny_tema):
    source, summary = tag_catalogue(demo_ds, "keyphrase", progress=False)
    assert (tag_folder(demo_ds, source) / "vocab.json").is_file()
    with_text = demo_ds.items["title"].notna().sum()
    assert summary["tagged"] >= 0.9 * with_text and summary["vocab_size"] > 20
    cfg = tiny_tema(source)
    doc = run(cfg, tmp_path, progress=False, dataset=demo_ds)
    assert doc["features"]["tags"]["vocabulary"] == summary["vocab_size"]
    assert doc["features"]["text"]["dim"] == 384
    assert set(doc["test"]) == {"Food", "Kitchen", "all"}
    # a second source lookup hits the caches: same features, no new tagging calls
    again, summary2 = tag_catalogue(demo_ds, "keyphrase", progress=False)
    assert again == source and summary2["generate"]["asked"] == 0
    feats = load_item_features(demo_ds, cfg.features, progress=False)
    model = build_model(demo_ds.info(), cfg.model, cfg.data.max_len, features=feats)
    load_weights(model, tmp_path / BEST)
    ids, scores = recommend(model, demo_ds, np.arange(5), 1, k=5, max_len=20)
    assert ids.shape == (5, 5) and np.all(demo_ds.item_domain[ids] == 1) and np.isfinite(scores).all()
    hist = demo_ds.sequences.row(0)
    assert not set(ids[0]) & set(hist)
    for link in linking_tags(feats, hist, int(ids[0, 0])):
        assert set(link.history_items) <= set(hist.tolist())


def test_the_demo_tags_with_the_local_llm_where_installed_else_says_it_does_not():
    from temarec.pipeline import choose_demo_tagger

    assert choose_demo_tagger("auto", lambda: True) == ("llamacpp", "")
    tagger, note = choose_demo_tagger("auto", lambda: False)
    assert tagger == "keyphrase" and "not installed" in note and "instead of an LLM" in note
    assert choose_demo_tagger("llamacpp", lambda: False)[0] == "keyphrase"
    assert choose_demo_tagger("keyphrase", lambda: True) == ("keyphrase", "")
    assert choose_demo_tagger("none", lambda: True) == ("none", "")
    with pytest.raises(ValueError, match="unknown tagger 'gpt'"):
        choose_demo_tagger("gpt", lambda: True)
