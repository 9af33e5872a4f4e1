"""The keyphrase backend on the real MiniLM encoder: candidates, ranking, MMR, batches, phrase cache."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("sentence_transformers", reason="needs the text extra: pip install temarec[text]")

from temarec.features.text_encoder import load_text_encoder  # noqa: E402
from temarec.tagging.base import TagBackend, TagRequest  # noqa: E402
from temarec.tagging.keyphrase import KeyphraseBackend, candidate_phrases, mmr  # noqa: E402
from temarec.tagging.normalize import normalize_words  # noqa: E402


class CountingEncoder:
    """The real encoder, with a record of what it was asked to encode."""

    def __init__(self, enc) -> None:
        self.enc = enc
        self.identity = enc.identity
        self.dim = enc.dim
        self.calls: list[list[str]] = []

    def encode(self, texts, batch_size: int = 128, progress: bool = False):
        self.calls.append(list(texts))
        return self.enc.encode(texts, batch_size=batch_size)


@pytest.fixture(scope="module")
def enc():
    return load_text_encoder()


def req(i: int, title, desc=None, domain: str = "Kitchen") -> TagRequest:
    return TagRequest(item_id=i, key=str(i), domain=domain, title=title, description=desc)


def test_candidates_are_canonical_content_ngrams():
    got = candidate_phrases("Stainless Steel Coffee Mugs, Set of 4 (12 oz) &amp; Lids", ngram_max=3)
    assert "coffee mug" in got and "stainless steel coffee" in got and "stainless steel" in got
    assert not any(w in p.split() for p in got for w in ("of", "set", "oz", "12", "4"))
    assert "steel coffee mug" in got and "mug lid" not in got  # runs stop at punctuation
    assert all(1 <= len(p.split()) <= 3 for p in got)
    assert len(got) == len(set(got))
    assert candidate_phrases("12 oz, 4 pack") == []


def test_protocol_and_identity(enc):
    kb = KeyphraseBackend(encoder=enc, top_k=4, diversity=0.3)
    assert isinstance(kb, TagBackend)
    assert enc.identity in kb.identity and "top_k=4" in kb.identity and "diversity=0.3" in kb.identity
    assert KeyphraseBackend(encoder=enc, top_k=5).identity != kb.identity


def test_tags_come_from_the_item_text(enc):
    kb = KeyphraseBackend(encoder=enc, top_k=5)
    items = [
        req(1, "Stainless Steel Coffee Mugs, Set of 4", "Double-wall insulated mugs for coffee and tea."),
        req(2, "Wilton Cake Decorating Tips Kit", None, domain="Food"),
        req(3, None, "Organic dark chocolate bar with sea salt, 3.5 oz", domain="Food"),
    ]
    res = kb.tag(items)
    assert [r.item_id for r in res] == [1, 2, 3]
    for r, q in zip(res, items, strict=True):
        assert r.ok, r.error
        assert 1 <= len(r.tags) <= 5 and len(set(r.tags)) == len(r.tags)
        assert r.weights is not None and len(r.weights) == len(r.tags)
        assert all(0.0 <= w <= 1.0 for w in r.weights)
        words = set(normalize_words(f"{q.title or ''} {q.description or ''}"))
        assert all(set(t.split()) <= words for t in r.tags)  # extracted, not invented
        assert json.loads(r.raw)["tags"] == r.tags
    assert any("mug" in t for t in res[0].tags)
    assert any("chocolate" in t for t in res[2].tags)
    assert max(res[0].weights) > 0.5


def test_failures_do_not_raise(enc):
    kb = KeyphraseBackend(encoder=enc)
    res = kb.tag([req(1, None, "   "), req(2, "12 oz, 4 pack"), req(3, float("nan")), req(4, "Tea kettle")])
    assert [r.error for r in res] == ["no text", "no candidate phrases", "no text", None]
    assert not res[0].ok and res[3].ok


def test_one_encode_call_per_batch_and_phrase_cache(enc):
    spy = CountingEncoder(enc)
    kb = KeyphraseBackend(encoder=spy, batch_items=256)
    items = [req(1, "Ceramic Coffee Mug"), req(2, "Coffee Mug, Blue"), req(3, "Blue Ceramic Coffee Mug")]
    first = kb.tag(items)
    assert len(spy.calls) == 1
    sent = spy.calls[0]
    assert sent.count("coffee mug") == 1 and sent.count("ceramic") == 1  # deduplicated across the batch
    second = kb.tag(items)
    assert len(spy.calls) == 2
    assert len(spy.calls[1]) == 3  # only the three item texts: every phrase came from the cache
    assert [r.tags for r in first] == [r.tags for r in second]
    assert kb.stats["phrases_cached"] > 0


def test_batches_of_items(enc):
    spy = CountingEncoder(enc)
    kb = KeyphraseBackend(encoder=spy, batch_items=2)
    items = [
        req(i, t)
        for i, t in enumerate(["Tea Kettle", "Paint Brush Set", "Rotary Cutter", "Olive Oil", "Mug"])
    ]
    res = kb.tag(items)
    assert len(spy.calls) == 3 and [r.item_id for r in res] == [0, 1, 2, 3, 4]
    assert all(r.ok for r in res)


def test_diversity_changes_the_pick(enc):
    title = "Stainless Steel Chef Knife, Professional Kitchen Knife, Sharp Chef's Knife for Cooking"
    plain = KeyphraseBackend(encoder=enc, top_k=4, diversity=0.0).tag([req(1, title)])[0]
    diverse = KeyphraseBackend(encoder=enc, top_k=4, diversity=0.8).tag([req(1, title)])[0]
    assert plain.weights == sorted(plain.weights, reverse=True)  # no diversity: by similarity to the text
    assert plain.tags[0] == diverse.tags[0]
    e_plain, e_div = enc.encode(plain.tags), enc.encode(diverse.tags)

    def redundancy(e):
        s = e @ e.T
        return (s.sum() - np.trace(s)) / (len(e) * (len(e) - 1))

    assert redundancy(e_div) < redundancy(e_plain)


def test_mmr_prefers_a_new_aspect():
    emb = np.array([[1, 0], [0.999, 0.045], [0, 1]], dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    doc = np.array([0.9, 0.89, 0.6])
    assert mmr(emb, doc, 2, 0.0) == [0, 1]
    assert mmr(emb, doc, 2, 0.5) == [0, 2]
    assert mmr(emb, doc, 5, 0.5) == [0, 2, 1]


def test_refine_is_generate_and_bad_pass_is_an_error(enc):
    kb = KeyphraseBackend(encoder=enc)
    items = [req(1, "Bamboo Cutting Board with Juice Groove")]
    assert kb.tag(items, "refine")[0].tags == kb.tag(items, "generate")[0].tags
    with pytest.raises(ValueError, match="pass"):
        kb.tag(items, "rewrite")


def test_bad_parameters(enc):
    with pytest.raises(ValueError):
        KeyphraseBackend(encoder=enc, top_k=0)
    with pytest.raises(ValueError):
        KeyphraseBackend(encoder=enc, diversity=1.5)


def test_real_art_office_and_food_items(enc, need_real):
    """Real titles: every item gets tags, and they mention a word of its title."""
    ao = need_real("amazon-art-office")
    with (ao / "item_listA_F.csv").open(encoding="utf-8", newline="") as fh:
        rows = [r for _, r in zip(range(13), csv.reader(fh), strict=False)][1:]
    items = [req(int(r[2]) + 1, r[1], r[3], domain="Art") for r in rows]
    afk = need_real("amazon-food-kitchen")
    titles = json.loads((afk / "item_titles.json").read_text(encoding="utf-8"))
    items += [req(100 + i, t, domain="Food") for i, t in enumerate(list(titles.values())[:12])]
    res = KeyphraseBackend(encoder=enc).tag(items)
    for r, q in zip(res, items, strict=True):
        assert r.ok, (q.title, r.error)
        title_words = set(normalize_words(q.title))
        assert any(set(t.split()) & title_words for t in r.tags), (q.title, r.tags)
