"""Tag vocabulary: normalisation, merging (exact, spacing, embedding), pruning, weights, artifact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from temarec.tagging.vocab import ARRAYS_FILE, JSON_FILE, TagVocab, TagVocabError, build_vocab

# items 1..3 domain A (0), 4..6 domain B (1)
DOM = np.array([-1, 0, 0, 0, 1, 1, 1], dtype=np.int8)
TAGS = {
    1: ["Coffee Mugs", "Gift", "Colored Pencils", "ceramic"],
    2: ["coffee mug", "ceramic", "gift", "red wine"],
    3: ["Coffeemaker", "color pencil", "espresso"],
    4: ["coffee maker", "Gift", "paintbrush", "white wine"],
    5: ["Paint Brush", "watercolor", "sewing needle"],
    6: ["sewing needle", "GIFT", "Watercolors"],
}


@pytest.fixture(scope="module")
def enc():
    pytest.importorskip("sentence_transformers", reason="needs the text extra: pip install temarec[text]")
    from temarec.features.text_encoder import load_text_encoder

    return load_text_encoder()


@pytest.fixture(scope="module")
def vocab(enc):
    return build_vocab(TAGS, None, DOM, encoder=enc, source="unit", domains=("Food", "Kitchen"))


def _ids(v: TagVocab, item: int) -> list[str]:
    return [t for t, _ in v.item_tags(item)]


def test_exact_and_space_insensitive_duplicates_merge_without_encoder():
    v = build_vocab(TAGS, None, DOM, encoder=None, min_count=1)
    assert v.lookup("Coffee Mugs") == v.lookup("coffee mug") is not None
    assert v.lookup("Coffee Maker") == v.lookup("coffeemaker") is not None
    assert v.lookup("paint brush") == v.lookup("paintbrush") is not None
    # only the encoder knows these are one tag
    assert v.lookup("colored pencil") != v.lookup("color pencil")


def test_embedding_merges_near_duplicates_only(vocab):
    assert vocab.lookup("Colored Pencils") == vocab.lookup("color pencil") is not None
    assert "colored pencil" in vocab.merge_map or "color pencil" in vocab.merge_map
    assert vocab.lookup("red wine") is None or vocab.lookup("red wine") != vocab.lookup("white wine")
    assert vocab.lookup("coffee mug") != vocab.lookup("sewing needle")
    assert vocab.lookup("coffee mug") != vocab.lookup("coffee maker")


def test_counts_shared_and_pruning(vocab):
    tags = set(vocab.tags)
    assert {"gift", "coffee mug", "sewing needle", "watercolor", "ceramic"} <= tags
    assert "espresso" not in tags and "red wine" not in tags  # one item each: pruned at min_count=2
    gift = vocab.tag_index["gift"]
    assert vocab.counts[gift].tolist() == [2, 2]
    assert vocab.shared[gift]
    assert not vocab.shared[vocab.tag_index["sewing needle"]]
    assert vocab.counts[vocab.tag_index["sewing needle"]].tolist() == [0, 2]
    assert vocab.tags[0] == "gift"  # ids ordered by frequency
    assert vocab.meta["n_pruned"] >= 2


def test_rank_weights_and_order(vocab):
    got = vocab.item_tags(2)
    assert [t for t, _ in got] == ["coffee mug", "ceramic", "gift"]  # "red wine" pruned, ranks close up
    np.testing.assert_allclose([w for _, w in got], [1.0, 0.5, 1 / 3], rtol=1e-6)
    assert vocab.item_tags(0) == []
    with pytest.raises(IndexError):
        vocab.item_tags(7)


def test_relevance_weights_sort_and_clip():
    w = {1: [0.2, 0.9, 0.0, 1.7], 2: None}
    v = build_vocab(TAGS, w, DOM, min_count=1)
    got = v.item_tags(1)
    assert [t for t, _ in got] == ["ceramic", "gift", "coffee mug", "colored pencil"]
    np.testing.assert_allclose([x for _, x in got], [1.0, 0.9, 0.2, 0.01], rtol=1e-6)  # clipped to [.01, 1]
    assert v.item_tags(2)[0][1] == 1.0  # no relevance: rank weights
    assert v.meta["weighting"] == "mixed"


def test_duplicates_within_an_item_keep_best_position():
    v = build_vocab({1: ["Mugs", "tea", "mug"], 2: ["tea", "mug"]}, None, DOM, min_count=1)
    assert _ids(v, 1) == ["mug", "tea"]


def test_padded_and_texts(vocab):
    ids, ws = vocab.padded(2)
    assert ids.shape == (7, 2) and ids.dtype == np.int64 and ws.dtype == np.float32
    assert (ids[0] == -1).all() and (ws[0] == 0).all()
    assert [vocab.tags[i] for i in ids[2]] == ["coffee mug", "ceramic"]
    ids, _ = vocab.padded(10, pad=len(vocab))
    assert (ids[ids != len(vocab)] < len(vocab)).all()
    assert vocab.tag_texts() == vocab.tags and len(vocab) == len(vocab.tags)


def test_stats(vocab):
    s = vocab.stats()
    assert s["vocab_size"] == len(vocab) and s["items"] == 6 and s["coverage"] == 1.0
    assert set(s["domains"]) == {"Food", "Kitchen"}
    assert s["shared_tags"] == int(vocab.shared.sum()) > 0
    assert s["domains"]["Food"]["tags"] + s["domains"]["Kitchen"]["tags"] - s["shared_tags"] == len(vocab)


def test_save_load_round_trip(vocab, tmp_path):
    vocab.save(tmp_path / "v")
    back = TagVocab.load(tmp_path / "v")
    assert back.tags == vocab.tags and back.merge_map == vocab.merge_map and back.meta == vocab.meta
    for name in ("counts", "indptr", "tag_ids", "weights", "item_domain"):
        np.testing.assert_array_equal(getattr(back, name), getattr(vocab, name))
    assert back.stats() == vocab.stats()
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == [ARRAYS_FILE, JSON_FILE]


def test_corrupted_arrays_file_is_named(vocab, tmp_path):
    folder = vocab.save(tmp_path / "v")
    data = (folder / ARRAYS_FILE).read_bytes()
    (folder / ARRAYS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(TagVocabError, match=ARRAYS_FILE):
        TagVocab.load(folder)


def test_corrupted_json_file_is_named(vocab, tmp_path):
    folder = vocab.save(tmp_path / "v")
    (folder / JSON_FILE).write_text('{"format": "temarec-tag-vocab", "tags": [', encoding="utf-8")
    with pytest.raises(TagVocabError, match=JSON_FILE):
        TagVocab.load(folder)


def test_consistent_but_invalid_arrays_are_rejected(vocab, tmp_path):
    """A file whose checksum matches but whose content is wrong (tag id out of range)."""
    import hashlib

    folder = vocab.save(tmp_path / "v")
    bad_ids = vocab.tag_ids.copy()
    bad_ids[0] = len(vocab) + 5
    with (folder / ARRAYS_FILE).open("wb") as fh:
        np.savez(
            fh,
            counts=vocab.counts,
            indptr=vocab.indptr,
            tag_ids=bad_ids,
            weights=vocab.weights,
            item_domain=vocab.item_domain,
        )
    doc = json.loads((folder / JSON_FILE).read_text())
    doc["arrays_sha256"] = hashlib.sha256((folder / ARRAYS_FILE).read_bytes()).hexdigest()
    (folder / JSON_FILE).write_text(json.dumps(doc))
    with pytest.raises(TagVocabError, match=rf"{ARRAYS_FILE}.*tag id outside"):
        TagVocab.load(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(TagVocabError, match=JSON_FILE):
        TagVocab.load(tmp_path / "nothing")


def test_input_validation():
    with pytest.raises(ValueError, match="outside"):
        build_vocab({9: ["a tag"]}, None, DOM)
    with pytest.raises(ValueError, match="weights"):
        build_vocab({1: ["a", "b"]}, {1: [1.0]}, DOM)
    with pytest.raises(TypeError):
        build_vocab({1: "just a string"}, None, DOM)
    with pytest.raises(ValueError):
        build_vocab({}, None, np.array([[0, 1]]))


def test_real_third_party_tags(need_real):
    """Art-Office LLM tags (idAfter -> tags): a usable vocabulary with tags shared across domains."""
    folder = need_real("amazon-art-office")
    raw = json.loads((folder / "third_party_llm_tags.json").read_text(encoding="utf-8"))
    n_art, n_all = 18_639, 38_396
    dom = np.concatenate(([-1], np.zeros(n_art), np.ones(n_all - n_art))).astype(np.int8)
    item_tags = {int(k) + 1: v for k, v in raw.items() if isinstance(v, list)}
    v = build_vocab(item_tags, None, dom, source="third_party_llm_tags.json", domains=("Art", "Office"))
    s = v.stats()
    assert s["vocab_size"] > 500
    assert s["domains"]["Art"]["coverage"] > 0.9 and s["domains"]["Office"]["coverage"] > 0.9
    assert 2.0 < s["tags_per_item_mean"] <= 10
    assert s["shared_tags"] > 50
    assert v.lookup("Scrapbooking") is not None and v.lookup("scrap-booking") == v.lookup("Scrapbooking")


def test_text_hashes_round_trip_and_name_changed_items(tmp_path):
    from temarec.tagging.vocab import TagVocab, TagVocabError, build_vocab, item_text_hashes

    titles, descs = ["red pen", None, "mug"], ["ink", "blue", float("nan")]
    th = item_text_hashes(titles, descs)
    assert th.dtype == np.uint64 and th[0] == 0 and len(set(th[1:].tolist())) == 3
    # missing values hash as empty strings, stably (the value is stored in files)
    assert item_text_hashes([None], [""])[1] == item_text_hashes([""], [float("nan")])[1]
    assert (item_text_hashes(titles, descs) == th).all()
    v = build_vocab({1: ["pen"], 2: ["pen"], 3: ["mug"]}, None, np.array([-1, 0, 0, 1]), text_hash=th)
    back = TagVocab.load(v.save(tmp_path / "v"))
    assert (back.text_hash == th).all()
    assert back.changed_texts(th).tolist() == []
    assert back.changed_texts(item_text_hashes(["red pen", "x", "mug"], descs)).tolist() == [2]
    # item 3's only tag ('mug', one item) was pruned: it has no tags to go stale
    assert back.n_items == 3 and len(back.item_tags(3)) == 0
    assert back.changed_texts(item_text_hashes(["red pen", None, "cup"], descs)).tolist() == []
    # older vocabularies (and imported tags) carry none: nothing to compare
    plain = TagVocab.load(
        build_vocab({1: ["pen"]}, None, np.array([-1, 0]), min_count=1).save(tmp_path / "p")
    )
    assert plain.text_hash is None and plain.changed_texts(np.zeros(2, dtype=np.uint64)) is None
    with pytest.raises(TagVocabError, match="text_hash has shape"):
        build_vocab({1: ["pen"]}, None, np.array([-1, 0]), min_count=1, text_hash=th)
