"""The runner: selection (shard, sample, limit), cache use, refinement, failures; the file backend."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from temarec.tagging import BackendFatalError, get_backend
from temarec.tagging.base import TagBackend, TagRequest, TagResult
from temarec.tagging.cache import TagCache
from temarec.tagging.prompts import DEFAULT_PROMPTS
from temarec.tagging.runner import (
    TagRunOptions,
    parse_shard,
    read_tags_jsonl,
    select_items,
    shard_ids,
    tag_dataset,
)


class FakeBackend:
    """Deterministic tags from the title; a chosen set of items fails, optionally transiently."""

    supports_refine = True
    prompt_identity = "fake-prompt-v1"

    def __init__(self, fail: dict[int, str] | None = None, identity: str = "fake:v1") -> None:
        self.identity = identity
        self.fail = fail or {}
        self.calls = 0
        self.passes: list[str] = []

    def tag(self, requests: list[TagRequest], pass_="generate") -> list[TagResult]:
        self.calls += len(requests)
        self.passes.append(pass_)
        out = []
        for r in requests:
            if r.item_id in self.fail and pass_ == "generate":
                out.append(TagResult(r.item_id, error=self.fail[r.item_id]))
            elif pass_ == "refine":
                out.append(TagResult(r.item_id, tags=list(reversed(r.previous))[:2]))
            else:
                words = (r.title or "").lower().replace(",", "").split()
                h = int(hashlib.md5(r.key.encode()).hexdigest(), 16)
                out.append(
                    TagResult(r.item_id, tags=[words[0], words[-1], f"t{h % 7}"], weights=[1.0, 0.5, 0.2])
                )
        return out

    def close(self) -> None:
        pass


@pytest.fixture
def ds(demo_ds):
    """The demo catalogue with a title for every item (the demo leaves some without text on purpose)."""
    items = demo_ds.items.copy()
    missing = items["title"].isna()
    items.loc[missing, "title"] = [f"Plain item {i}" for i in items.index[missing]]
    return type(demo_ds)(demo_ds.name, demo_ds.domains, items, demo_ds.user_keys, demo_ds.sequences)


def test_fake_is_a_backend():
    assert isinstance(FakeBackend(), TagBackend)


def test_shards_partition_the_catalogue(demo_ds):
    parts = [select_items(demo_ds, TagRunOptions(shard=(i, 3))) for i in range(3)]
    allids = np.concatenate(parts)
    assert len(allids) == demo_ds.n_items and len(np.unique(allids)) == demo_ds.n_items
    assert all(len(p) > 30 for p in parts)
    # stable: a function of the key only (sha1), the same on every run and machine
    assert (
        shard_ids(["F000001", "K000010"], 1000).tolist() == shard_ids(["F000001", "K000010"], 1000).tolist()
    )
    assert shard_ids(["abc"], 2**20)[0] == int.from_bytes(hashlib.sha1(b"abc").digest()[:8], "big") % 2**20
    with pytest.raises(ValueError):
        parse_shard("3/3")
    with pytest.raises(ValueError):
        parse_shard("x")
    assert parse_shard("1/4") == (1, 4)


def test_sample_is_seeded_and_limit_applies(demo_ds):
    a = select_items(demo_ds, TagRunOptions(sample=50, sample_seed=3))
    b = select_items(demo_ds, TagRunOptions(sample=50, sample_seed=3))
    c = select_items(demo_ds, TagRunOptions(sample=50, sample_seed=4))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and len(a) == 50 and np.all(np.diff(a) > 0)
    assert len(select_items(demo_ds, TagRunOptions(limit=7))) == 7


def test_run_cache_refine_and_failures(ds, tmp_path):
    ids = ds.items.index.to_numpy()
    fail = {int(ids[0]): "not_json", int(ids[1]): "timeout"}
    be = FakeBackend(fail)
    opts = TagRunOptions(refine=True, batch_size=7, progress=False)
    with TagCache(tmp_path / "c.sqlite") as cache:
        res = tag_dataset(ds, be, cache, opts)
        st = res.summary
        n = ds.n_items
        assert st["selected"] == n and st["tagged"] == n - 2 and st["failed"] == 2
        assert st["failed_by_reason"] == {"not_json": 1, "timeout": 1}
        assert st["generate"]["asked"] == n and st["refine_pass"]["asked"] == n - 2
        assert be.calls == n + n - 2
        # refined tags replace the first pass's (the fake keeps the last two, reversed)
        some = int(ids[5])
        assert len(res.tags[some]) == 2
        assert res.errors == {int(ids[0]): "not_json", int(ids[1]): "timeout"}

        # rerun: only the transient failure is asked again (and now succeeds, then is refined)
        be2 = FakeBackend({int(ids[0]): "not_json"})
        res2 = tag_dataset(ds, be2, cache, opts)
        assert be2.calls == 2 and res2.summary["generate"]["cached"] == n - 1
        assert res2.summary["tagged"] == n - 1 and res2.errors == {int(ids[0]): "not_json"}
        # third run: nothing to ask
        be3 = FakeBackend({int(ids[0]): "not_json"})
        res3 = tag_dataset(ds, be3, cache, opts)
        assert be3.calls == 0 and res3.summary["model_calls"] == 0 and res3.tags == res2.tags
        # --retry-failed asks the recorded failure again
        be4 = FakeBackend()
        res4 = tag_dataset(ds, be4, cache, TagRunOptions(refine=True, retry_failed=True, progress=False))
        assert be4.calls == 2 and res4.summary["tagged"] == n
        # another model identity shares nothing
        be5 = FakeBackend(identity="fake:v2")
        tag_dataset(ds, be5, cache, TagRunOptions(limit=5, progress=False))
        assert be5.calls == 5


def test_changed_text_is_a_cache_miss(ds, tmp_path):
    with TagCache(tmp_path / "c.sqlite") as cache:
        tag_dataset(ds, FakeBackend(), cache, TagRunOptions(limit=10, progress=False))
        items = ds.items.copy()
        first = items.index[0]
        items.loc[first, "title"] = "A brand new title"
        ds2 = type(ds)(ds.name, ds.domains, items, ds.user_keys, ds.sequences)
        be = FakeBackend()
        res = tag_dataset(ds2, be, cache, TagRunOptions(limit=10, progress=False))
        assert be.calls == 1 and res.tags[int(first)][0] == "a"


def test_items_without_text_are_not_asked(ds, tmp_path):
    items = ds.items.copy()
    items.loc[items.index[:3], ["title", "description"]] = None
    ds = type(ds)(ds.name, ds.domains, items, ds.user_keys, ds.sequences)
    be = FakeBackend()
    with TagCache(tmp_path / "c.sqlite") as cache:
        res = tag_dataset(ds, be, cache, TagRunOptions(limit=10, progress=False))
    assert res.summary["no_text"] == 3 and be.calls == 7
    assert all(res.errors[int(i)] == "no_text" for i in items.index[:3])


def test_a_crashing_batch_is_recorded_and_the_run_goes_on(ds, tmp_path):
    class Flaky(FakeBackend):
        def tag(self, requests, pass_="generate"):
            if any(r.item_id == 3 for r in requests):
                raise RuntimeError("boom")
            return super().tag(requests, pass_)

    with TagCache(tmp_path / "c.sqlite") as cache:
        res = tag_dataset(ds, Flaky(), cache, TagRunOptions(limit=20, batch_size=5, progress=False))
        assert res.summary["failed_by_reason"] == {"backend_error": 5} and res.summary["tagged"] == 15
        # transient: the next run asks those five again
        be = FakeBackend()
        tag_dataset(ds, be, cache, TagRunOptions(limit=20, batch_size=5, progress=False))
        assert be.calls == 5


def test_fatal_error_stops_the_run(ds, tmp_path):
    class Fatal(FakeBackend):
        def tag(self, requests, pass_="generate"):
            raise BackendFatalError("bad key")

    with TagCache(tmp_path / "c.sqlite") as cache, pytest.raises(BackendFatalError):
        tag_dataset(ds, Fatal(), cache, TagRunOptions(limit=20, progress=False))


def test_jsonl_export_roundtrip(ds, tmp_path):
    with TagCache(tmp_path / "c.sqlite") as cache:
        res = tag_dataset(ds, FakeBackend({2: "echo"}), cache, TagRunOptions(limit=10, progress=False))
    path = res.to_jsonl(ds, tmp_path / "out" / "tags.jsonl")
    tags, weights = read_tags_jsonl(path)
    assert tags == res.tags and 2 not in tags and len(path.read_text().splitlines()) == 10
    assert weights[1] == [1.0, 0.5, 0.2]


# ---- the file backend ------------------------------------------------------------------------------
def test_file_backend_maps_keys_and_repairs(tmp_path, ds):
    import json

    keys = ds.items["key"].tolist()
    data = {
        keys[0]: ["Green Tea", "Matcha"],
        keys[1]: '["Arts", "Crafts", "Glitter"',  # a raw string that never parsed
        keys[2]: "Sorry, I cannot provide tags for this product.",
        keys[3]: [],
        keys[4]: {"nested": 1},
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    be = get_backend("file", path=path)
    assert be.identity.startswith("file:t.json:") and not be.supports_refine
    with TagCache(tmp_path / "c.sqlite") as cache:
        res = tag_dataset(ds, be, cache, TagRunOptions(limit=6, progress=False))
    assert res.tags == {1: ["green tea", "matcha"], 2: ["arts", "crafts", "glitter"]}
    assert res.errors == {3: "refusal", 4: "empty", 5: "not_json", 6: "missing"}
    with pytest.raises(BackendFatalError):
        get_backend("file", path=tmp_path / "absent.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(BackendFatalError):
        get_backend("file", path=tmp_path / "list.json")
    with pytest.raises(ValueError, match="unknown tagging backend"):
        get_backend("nope")


def test_file_backend_tags_items_without_text_and_refuses_ids_given_twice(tmp_path, ds):
    items = ds.items.copy()
    items.loc[items.index[:2], ["title", "description"]] = None
    ds = type(ds)(ds.name, ds.domains, items, ds.user_keys, ds.sequences)
    keys = ds.items["key"].tolist()
    path = tmp_path / "t.json"
    path.write_text(json.dumps({keys[0]: ["green tea"], keys[2]: ["mug"], "not-an-item": ["x"]}))
    be = get_backend("file", path=path)
    assert be.require_overlap(zip(ds.items.index, keys, strict=True)) == ["not-an-item"]
    with TagCache(tmp_path / "c.sqlite") as cache:
        res = tag_dataset(ds, be, cache, TagRunOptions(limit=3, progress=False))
    # imported tags need no text: item 1 has none and keeps its tags; item 2 is simply not in the file
    assert res.tags == {1: ["green tea"], 3: ["mug"]} and res.errors == {2: "missing"}
    assert res.summary["no_text"] == 0

    path.write_text(f'{{"{keys[0]}": ["a"], "{keys[1]}": ["b"], "{keys[0]}": ["c"]}}')
    with pytest.raises(BackendFatalError, match=f"id '{keys[0]}' is given twice"):
        get_backend("file", path=path)


def test_file_backend_imports_third_party_art_office_tags(need_real, tmp_path):
    folder = need_real("amazon-art-office")
    from temarec.data.loaders import load_urllm

    ds = load_urllm(folder)
    be = get_backend("file", path=folder / "third_party_llm_tags.json")
    with TagCache(tmp_path / "c.sqlite") as cache:
        res = tag_dataset(ds, be, cache, TagRunOptions(batch_size=5000, progress=False))
    st = res.summary
    assert st["selected"] == 38_396 and st["tagged"] >= 38_380
    # the JSON's ids are URLLM's idAfter (0-based) = items["key"]; temarec id = idAfter + 1
    assert ds.items.at[1, "key"] == "0"
    assert "picture framing" in res.tags[1]
    assert 4.0 < st["tags_per_item"] < 6.0
    # the raw strings of the file: one truncated list repaired, refusals recorded
    assert res.tags[4016][:3] == ["arts", "crafts", "sewing"]
    assert res.errors[18951] == "refusal"


class PromptedBackend(FakeBackend):
    """A chat backend (it has prompts, so the example-echo guard runs) whose answers `edit(request,
    result, pass_)` changes in place."""

    prompts = DEFAULT_PROMPTS

    def __init__(self, edit) -> None:
        super().__init__()
        self.edit = edit

    def tag(self, requests, pass_="generate"):
        out = super().tag(requests, pass_)
        for r, res in zip(requests, out, strict=True):
            self.edit(r, res, pass_)
        return out


def test_example_echo_is_dropped_after_the_cache(ds, tmp_path):
    kitchen = ds.items.index[ds.items["domain"] == ds.domains.index("Kitchen")].to_numpy()
    only, mat = int(kitchen[0]), int(kitchen[1])
    ds.items.loc[mat, "title"] = "Silicone Baking Mats, set of 2"  # its own text supports the tag

    def echo(r, res, pass_):  # a Kitchen worked example on every item, and nothing else on `only`
        if res.ok:
            res.tags = ["baking mat"] if r.item_id == only else [*res.tags, "baking mat"]
            res.weights = [1.0] if r.item_id == only else [*res.weights, 0.1]

    be = PromptedBackend(echo)
    with TagCache(tmp_path / "c.sqlite") as cache:
        res = tag_dataset(ds, be, cache, TagRunOptions(progress=False))
        ec = res.summary["example_echo"]
        # a Kitchen example: dropped from Kitchen items but the supported one, kept on Food items
        assert ec["items_with_echo"] == len(kitchen) - 1 and ec["tags_dropped"] == len(kitchen) - 1
        assert ec["items_left_without_tags"] == 1 and res.errors == {only: "example_echo"}
        assert res.summary["failed_by_reason"] == {"example_echo": 1}
        has_mat = {i for i, t in res.tags.items() if "baking mat" in t}
        assert has_mat == (set(ds.items.index.tolist()) - set(kitchen.tolist())) | {mat}
        assert all(len(res.weights[i]) == len(t) for i, t in res.tags.items())
        # the cache keeps the model's own answer: keeping the examples asks nothing again
        calls = be.calls
        kept = tag_dataset(ds, be, cache, TagRunOptions(progress=False, drop_example_echo=False))
        assert be.calls == calls and kept.summary["example_echo"] is None
        assert kept.tags[only] == ["baking mat"] and not kept.errors
        # backends without prompts (keyphrase, file) are left alone
        plain = tag_dataset(ds, FakeBackend(), cache, TagRunOptions(limit=5, progress=False))
        assert plain.summary["example_echo"] is None


def test_a_piece_of_an_examples_title_is_dropped_too(ds, tmp_path):
    kitchen = ds.items.index[ds.items["domain"] == ds.domains.index("Kitchen")].to_numpy()
    item = int(kitchen[0])

    def copy_title(r, res, pass_):
        if r.item_id == item:  # a fragment of the Kitchen example's title
            res.tags, res.weights = [*res.tags, "baking mat set of 3"], None

    with TagCache(tmp_path / "c.sqlite") as cache:
        res = tag_dataset(ds, PromptedBackend(copy_title), cache, TagRunOptions(progress=False))
    assert "baking mat set of 3" not in res.tags[item] and res.tags[item]
    assert res.summary["example_echo"]["tags_dropped"] == 1


def test_a_refined_list_of_echoes_falls_back_to_the_first_pass(ds, tmp_path):
    kitchen = ds.items.index[ds.items["domain"] == ds.domains.index("Kitchen")].to_numpy()
    only = int(kitchen[0])

    def echo_in_refinement(r, res, pass_):
        if pass_ == "refine" and r.item_id == only:
            res.tags, res.weights = ["baking mat", "non-stick"], None

    with TagCache(tmp_path / "c.sqlite") as cache:
        res = tag_dataset(
            ds, PromptedBackend(echo_in_refinement), cache, TagRunOptions(refine=True, progress=False)
        )
    assert only not in res.errors and len(res.tags[only]) == 3  # the first pass's three tags
    assert "baking mat" not in res.tags[only] and res.summary["example_echo"]["tags_dropped"] == 2
