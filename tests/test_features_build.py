"""Feature stage: text and tag features with the real packaged MiniLM, the content-keyed cache, the CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from temarec.config import FeaturesConfig
from temarec.data.demo import generate_demo
from temarec.features import build as fb
from temarec.features.build import (
    VectorStore,
    build_item_features,
    content_keys,
    item_texts,
    load_item_features,
    resolve_tag_source,
    tag_sources,
)
from temarec.settings import artifacts_root

pytest.importorskip("sentence_transformers", reason="text features need the [text] extra")

NO_TAGS = FeaturesConfig(tags=None)


@pytest.fixture(scope="module")
def small_demo():
    return generate_demo(seed=0, n_users=200, n_items_a=60, n_items_b=50)


@pytest.fixture(scope="module")
def real_encoder():
    from temarec.features.text_encoder import load_text_encoder

    try:
        return load_text_encoder()
    except Exception as e:  # noqa: BLE001 - the packaged model is an optional extra
        pytest.skip(f"packaged MiniLM not available: {e}")


class Counting:
    """Wraps the real encoder and counts what it is asked to embed."""

    def __init__(self, enc) -> None:
        self.enc, self.calls, self.texts = enc, 0, []
        self.dim, self.identity = enc.dim, enc.identity

    def encode(self, texts, batch_size=128, progress=False):
        self.calls += 1
        self.texts += list(texts)
        return self.enc.encode(texts, batch_size=batch_size, progress=progress)


@pytest.fixture
def counting(monkeypatch, real_encoder):
    wrapper = Counting(real_encoder)
    loads = []

    def fake_load(name=None, device="cpu"):
        loads.append(name)
        return wrapper

    monkeypatch.setattr(fb, "load_text_encoder", fake_load)
    wrapper.loads = loads
    return wrapper


def test_item_texts_joining_rules():
    items = pd.DataFrame(
        {
            "title": ["Tea", "Mug!", None, "  ", "A  b\n c", "x" * 50],
            "description": ["Green.", "Big", "Only description", None, float("nan"), "y" * 50],
        }
    )
    texts, has = item_texts(items, max_chars=60)
    assert texts[:5] == ["Tea. Green.", "Mug! Big", "Only description", "", "A b c"]
    assert len(texts[5]) == 60
    assert has.tolist() == [True, True, True, False, True, True]


@pytest.fixture(scope="module")
def warm(small_demo, real_encoder, tmp_path_factory):
    """One cold build of the demo's text features into a module-wide artifacts folder (the slow part)."""
    folder = tmp_path_factory.mktemp("warm-artifacts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEMAREC_ARTIFACTS", str(folder))
        feats, rep = build_item_features(small_demo, NO_TAGS, progress=False, device="cpu")
    return folder, feats, rep


def test_text_features_mask_cache_and_no_reencode(small_demo, warm, counting, monkeypatch):
    ds = small_demo
    folder, feats, rep = warm
    n = ds.n_items
    texts, has = item_texts(ds.items)
    assert feats.text.shape == (n + 1, counting.dim) and feats.text.dtype == np.float32
    assert feats.text_mask.tolist() == [False] + has.tolist()
    assert (~has).sum() > 0, "the demo has items without text"
    assert np.all(feats.text[~feats.text_mask] == 0)
    np.testing.assert_allclose(np.linalg.norm(feats.text[feats.text_mask], axis=1), 1.0, atol=1e-5)
    assert rep.modalities["text"]["cached"] == 0
    assert rep.modalities["text"]["computed"] == len(set(np.asarray(texts)[has]))
    assert feats.image is None and feats.tag_ids is None
    assert feats.source.startswith("text=") and counting.identity in feats.source
    i = int(np.flatnonzero(has)[3]) + 1  # the vectors are the encoder's own
    np.testing.assert_allclose(feats.text[i], counting.enc.encode([texts[i - 1]])[0], atol=1e-5)

    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(folder))
    feats2 = load_item_features(ds, NO_TAGS, progress=False)
    feats3, rep3 = build_item_features(ds, NO_TAGS, progress=False, device="cpu")
    assert counting.calls == 0 and not counting.loads, "a rebuild must come from the cache"
    assert rep3.modalities["text"]["cached"] == int(has.sum()) and rep3.modalities["text"]["computed"] == 0
    np.testing.assert_array_equal(feats2.text, feats.text)
    np.testing.assert_array_equal(feats3.text_mask, feats.text_mask)


def test_changing_one_title_reembeds_only_that_item(small_demo, warm, counting, monkeypatch):
    ds = small_demo
    folder, before, _ = warm
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(folder))
    ds2 = copy.copy(ds)
    ds2.items = ds.items.copy()
    ds2.items.loc[5, "title"] = "Hand-Forged Carbon Steel Wok"
    after, rep = build_item_features(ds2, NO_TAGS, progress=False, device="cpu")
    assert rep.modalities["text"]["computed"] == 1 and counting.texts == [counting.texts[0]]
    assert counting.texts[0].startswith("Hand-Forged Carbon Steel Wok. ")
    changed = np.flatnonzero(np.abs(after.text - before.text).sum(1) > 0)
    assert changed.tolist() == [5]


def test_use_text_false_loads_no_encoder(small_demo, counting):
    feats, rep = build_item_features(small_demo, NO_TAGS, progress=False, use_text=False, device="cpu")
    assert feats.text is None and not counting.loads and "text" not in rep.modalities


# ---- the store --------------------------------------------------------------------------------------
def test_vector_store_roundtrip_dedup_compact_and_partial_chunks(tmp_path):
    store = VectorStore(tmp_path / "s")
    keys = content_keys([b"a", b"b", b"c"])
    found, vecs = store.get(keys)
    assert not found.any() and vecs is None
    store.put(keys[:2], np.eye(2, 4, dtype=np.float32))
    store.put(keys[1:], np.full((2, 4), 7, dtype=np.float32))  # "b" twice: either copy is the same content
    found, vecs = store.get(keys[::-1])
    assert found.all() and vecs.shape == (3, 4)
    np.testing.assert_array_equal(vecs[0], 7)
    np.testing.assert_array_equal(vecs[2], [1, 0, 0, 0])
    # a crash after the vectors but before the keys leaves an invisible half chunk
    np.save(tmp_path / "s" / "zz-half.vecs.npy", np.zeros((5, 4), np.float32))
    assert len(store) == 3
    store.compact(max_chunks=1)
    assert len(list((tmp_path / "s").glob("*.keys.npy"))) == 1 and len(store) == 3
    found, vecs2 = store.get(keys[::-1])
    np.testing.assert_array_equal(vecs2, vecs)
    assert store.nbytes() > 0
    # a chunk cut short on disk (full disk, copied half-way) names itself and the way out
    (keys_file,) = (tmp_path / "s").glob("*.keys.npy")
    name = keys_file.name[: -len(".keys.npy")]
    chunk = tmp_path / "s" / f"{name}.vecs.npy"
    chunk.write_bytes(chunk.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"{name}\.\*\.npy: unreadable.*delete"):
        VectorStore(tmp_path / "s").get(keys)


# ---- tags -------------------------------------------------------------------------------------------
def _demo_tags(ds) -> dict[int, list[str]]:
    """A few tags per item from its title words: enough for a vocabulary with shared tags."""
    out = {}
    for i, title in ds.items["title"].items():
        if isinstance(title, str):
            words = [w.strip(",").lower() for w in title.split() if w.isalpha() and len(w) > 3]
            out[int(i)] = words[:4]
    return out


def _save_vocab(ds, source: str, tags=None):
    from temarec.tagging.vocab import build_vocab

    vocab = build_vocab(tags or _demo_tags(ds), None, ds.item_domain, encoder=None, source=source)
    folder = artifacts_root() / "tags" / ds.name / source
    vocab.save(folder)
    return vocab


def test_tag_features_auto_named_off_and_errors(small_demo, counting):
    pytest.importorskip("temarec.tagging.vocab")
    ds = small_demo
    assert resolve_tag_source(ds.name, "auto") is None and tag_sources(ds.name) == []
    kp = _save_vocab(ds, "keyphrase")
    fv = _save_vocab(ds, "file-third_party", {k: v[::-1] for k, v in _demo_tags(ds).items()})
    _save_vocab(ds, "llamacpp-smollm2-135m-sample20-seed0")
    # a trial on a sample comes after every source that tagged the whole catalogue
    assert tag_sources(ds.name) == ["file-third_party", "keyphrase", "llamacpp-smollm2-135m-sample20-seed0"]

    cfg = FeaturesConfig(tags="auto", max_tags=3)
    feats, rep = build_item_features(ds, cfg, progress=False, use_text=False, device="cpu")
    assert rep.modalities["tags"]["source"] == "file-third_party"
    ids, weights = fv.padded(3)
    np.testing.assert_array_equal(feats.tag_ids, ids)
    np.testing.assert_array_equal(feats.tag_weights, weights)
    assert feats.tag_ids.shape == (ds.n_items + 1, 3) and (feats.tag_ids[0] == -1).all()
    assert feats.tag_names == fv.tag_texts() and feats.n_tags == len(fv)
    assert feats.tag_text.shape == (len(fv), counting.dim)
    np.testing.assert_array_equal(feats.tag_count, fv.counts.sum(1))
    np.testing.assert_allclose(feats.tag_text[0], counting.enc.encode([fv.tags[0]])[0], atol=1e-5)
    assert "tags=file-third_party" in feats.source

    calls = counting.calls  # tag strings are cached like item texts
    named, rep = build_item_features(ds, cfg.model_copy(update={"tags": "keyphrase"}), False, False)
    assert rep.modalities["tags"]["source"] == "keyphrase" and named.n_tags == len(kp)
    again, rep = build_item_features(ds, cfg, progress=False, use_text=False, device="cpu")
    assert rep.modalities["tags"]["computed"] == 0 and counting.calls == calls
    np.testing.assert_array_equal(again.tag_text, feats.tag_text)

    off, rep = build_item_features(ds, cfg.model_copy(update={"tags": "none"}), False, False)
    assert off.tag_ids is None and "off" in rep.modalities["tags"]["notes"][0]
    with pytest.raises(ValueError, match=r"'openai-gpt' not found.*file-third_party, .*keyphrase"):
        build_item_features(ds, cfg.model_copy(update={"tags": "openai-gpt"}), False, False)

    other = generate_demo(seed=0, n_users=200, n_items_a=61, n_items_b=50)
    with pytest.raises(ValueError, match="another catalogue"):
        build_item_features(other, cfg, progress=False, use_text=False, device="cpu")


def _swap_two_keys(ds):
    """The same catalogue with items 1 and 2 listed the other way round (ids are positions)."""
    moved = copy.copy(ds)
    keys = ds.items["key"].to_numpy().copy()
    keys[[0, 1]] = keys[[1, 0]]
    moved.items = ds.items.assign(key=keys)
    return moved


def test_tags_follow_item_keys_not_positions(small_demo, counting):
    """A re-sorted items.csv with the same items would give items others' tags; it is refused."""
    from temarec.tagging.runner import TagRunResult
    from temarec.tagging.vocab import build_vocab

    ds = small_demo
    cfg = FeaturesConfig(tags="keyphrase", max_tags=3)
    folder = artifacts_root() / "tags" / ds.name / "keyphrase"
    keys = ds.items["key"].to_numpy()
    build_vocab(_demo_tags(ds), None, ds.item_domain, source="keyphrase", item_keys=keys).save(folder)
    build_item_features(ds, cfg, progress=False, use_text=False, device="cpu")  # its own catalogue: fine
    with pytest.raises(ValueError, match=r"other keys or in another order.*rerun `temarec tag"):
        build_item_features(_swap_two_keys(ds), cfg, progress=False, use_text=False, device="cpu")

    # a vocabulary saved before the key digest: tags.jsonl of the same run says which key each id had
    build_vocab(_demo_tags(ds), None, ds.item_domain, source="keyphrase").save(folder)
    res = TagRunResult(tags=_demo_tags(ds), weights={}, errors={}, backend="b", prompt="p", summary={})
    res.to_jsonl(ds, folder / "tags.jsonl")
    build_item_features(ds, cfg, progress=False, use_text=False, device="cpu")
    with pytest.raises(ValueError, match=r"tags.jsonl: line 1: item 1 was '.+' when tagged, the dataset now"):
        build_item_features(_swap_two_keys(ds), cfg, progress=False, use_text=False, device="cpu")


def test_auto_ranks_a_source_by_what_made_it_not_by_its_name(small_demo, counting):
    """`--source-name` gives imported tags any name; its summary.json says they came from a file."""
    ds = small_demo
    root = artifacts_root() / "tags" / ds.name
    _save_vocab(ds, "keyphrase")
    _save_vocab(ds, "mytags")
    _save_vocab(ds, "quick-try")
    assert tag_sources(ds.name)[:2] == ["keyphrase", "mytags"]  # no summaries: by name, unknown last
    (root / "mytags" / "summary.json").write_text(json.dumps({"backend": "file:t.json:abc:key"}))
    (root / "quick-try" / "summary.json").write_text(
        json.dumps({"backend": "openai:m:x", "sample": None, "limit": 20})
    )
    (root / "keyphrase" / "summary.json").write_text("{not json")  # unreadable: falls back to the name
    assert tag_sources(ds.name) == ["mytags", "keyphrase", "quick-try"]  # a --limit trial comes last
    assert resolve_tag_source(ds.name, "auto").name == "mytags"
    # what the vocabulary records (saved with it) wins over a summary.json left by an earlier run
    doc = json.loads((root / "quick-try" / "vocab.json").read_text())
    doc["meta"]["tagged_with"] = {"backend": "openai:m:x", "sample": None, "limit": None, "refine": False}
    (root / "quick-try" / "vocab.json").write_text(json.dumps(doc))
    assert tag_sources(ds.name) == ["quick-try", "mytags", "keyphrase"]


def test_items_edited_since_tagging_are_named(small_demo, counting, caplog):
    """An edited title keeps the item's key, so the key check passes; the text hash names the item."""
    from temarec.tagging.vocab import build_vocab, item_text_hashes

    ds = small_demo
    cfg = FeaturesConfig(tags="keyphrase", max_tags=3)
    folder = artifacts_root() / "tags" / ds.name / "keyphrase"
    keys = ds.items["key"].to_numpy()
    th = item_text_hashes(ds.items["title"].to_numpy(), ds.items["description"].to_numpy())
    build_vocab(_demo_tags(ds), None, ds.item_domain, item_keys=keys, text_hash=th).save(folder)
    with caplog.at_level("WARNING", logger="temarec.features.build"):
        build_item_features(ds, cfg, progress=False, use_text=False, device="cpu")
    assert not caplog.records
    edited = copy.copy(ds)
    edited.items = ds.items.copy()
    edited.items.loc[[2, 5], "title"] = ["a new title", "another one"]
    with caplog.at_level("WARNING", logger="temarec.features.build"):
        build_item_features(edited, cfg, progress=False, use_text=False, device="cpu")
    msg = caplog.text
    assert (
        f"2 item(s) have another title or description than when they were tagged ({keys[1]}, {keys[4]})"
        in msg
    )
    assert "Rerun the `temarec tag --dataset" in msg and "same --backend and --source-name" in msg


# ---- CLI --------------------------------------------------------------------------------------------
def test_features_command_prints_summary_and_cache_hits(small_demo, warm, counting, tmp_path, monkeypatch):
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from temarec.data.canonical import write_canonical
    from temarec.features.cli import features_command

    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(warm[0]))  # texts are keyed by content, not by dataset
    folder = tmp_path / "small"
    write_canonical(small_demo, folder)
    app = typer.Typer()
    app.command()(features_command)
    app.command("other")(lambda: None)  # two commands: typer keeps the name "features-command"
    args = ["features-command", "--dataset", str(folder), "--set", "features.tags=none", "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert ": 110 items" in res.output.splitlines()[0] and "  text: dim=384, items=" in res.output
    assert "computed=0" in res.output and counting.calls == 0
    res = CliRunner().invoke(app, [*args, "--json"])
    doc = json.loads(res.output)
    assert doc["build"]["text"]["computed"] == 0 and doc["build"]["text"]["cached"] > 0
    res = CliRunner().invoke(app, [*args[:-3], "--set", "features.tags=nope", "--quiet"])
    assert res.exit_code == 2 and "not found" in res.output
    res = CliRunner().invoke(app, [*args, "--set", "model.hidden=3"])  # one line, not pydantic's dump
    assert (
        res.exit_code == 2
        and "field 'model.hidden': Input should be greater than or equal to 4" in res.output
    )
    assert "pydantic.dev" not in res.output


def test_vocabulary_merging_embeds_each_tag_string_once(small_demo, counting):
    """Re-tagging a catalogue rebuilds its vocabulary; the tag strings come from the feature store."""
    from temarec.tagging.vocab import build_vocab

    ds = small_demo
    enc = fb.CachedTextEncoder(progress=False)
    first = build_vocab(_demo_tags(ds), None, ds.item_domain, encoder=enc, merge_threshold=0.8)
    calls = counting.calls
    assert calls > 0 and first.meta["encoder"] == counting.identity
    again = build_vocab(_demo_tags(ds), None, ds.item_domain, encoder=enc, merge_threshold=0.8)
    assert counting.calls == calls and again.tags == first.tags and again.merge_map == first.merge_map
    # the same merges as the encoder called directly
    plain = build_vocab(_demo_tags(ds), None, ds.item_domain, encoder=counting, merge_threshold=0.8)
    assert plain.tags == first.tags and plain.merge_map == first.merge_map


def test_a_tag_reading_model_without_any_tag_source_is_warned_about(small_demo, counting, caplog):
    """tema with features.tags=auto and nothing tagged trains without its tags: said, not silent;
    features.tags=none says that this is meant."""
    from temarec.config import RunConfig
    from temarec.training.run import features_for

    cfg = RunConfig.model_validate({"model": {"name": "tema", "use_text": False}})
    with caplog.at_level("WARNING", logger="temarec.training.run"):
        assert features_for(small_demo, cfg, progress=False).tag_ids is None
    assert "no tag vocabulary for dataset 'demo': tema runs without tags" in caplog.text
    caplog.clear()
    cfg.features.tags = "none"
    with caplog.at_level("WARNING", logger="temarec.training.run"):
        features_for(small_demo, cfg, progress=False)
    assert not caplog.records


def test_rerun_hints_name_a_dataset_the_way_it_can_be_loaded(small_demo, tmp_path):
    from temarec.data.canonical import load_canonical, write_canonical

    assert fb.dataset_argument(small_demo) == "demo"  # its source is a module, not a folder
    write_canonical(small_demo, tmp_path / "shop")
    assert fb.dataset_argument(load_canonical(tmp_path / "shop")) == str(tmp_path / "shop")
