"""`temarec tag`: outputs, counts, resumability, shards and their merge, argument errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from temarec.cli import app
from temarec.data.demo import generate_demo
from temarec.tagging.runner import read_tags_jsonl

runner = CliRunner()


@pytest.fixture
def tags_file(tmp_path):
    ds = generate_demo(seed=0)
    keys = ds.items["key"].tolist()
    data = {k: [f"theme {i % 13}", f"kind {i % 5}"] for i, k in enumerate(keys) if i % 10}
    path = tmp_path / "tags.json"
    path.write_text(json.dumps(data))
    return path, ds


def test_tag_file_backend_resumes_and_reports(tags_file, tmp_path):
    path, ds = tags_file
    out = tmp_path / "out"
    args = ["tag", "--dataset", "demo", "--backend", "file", "--tags-file", str(path), "--output", str(out)]
    res = runner.invoke(app, [*args, "--no-vocab", "--quiet"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    # imported tags need no text: every item is looked up in the file (the demo has items without text)
    assert int(ds.items["title"].notna().sum()) < ds.n_items
    assert summary["selected"] == ds.n_items and summary["no_text"] == 0
    assert summary["failed_by_reason"].get("missing", 0) > 0 and summary["model_calls"] == ds.n_items
    assert "failed missing:" in res.output and "(imported)" in res.output and "items/s" not in res.output
    tags, _ = read_tags_jsonl(out / "tags.jsonl")
    assert tags and all(len(t) == 2 for t in tags.values())
    # rerun: everything is cached, nothing is asked
    res = runner.invoke(app, [*args, "--no-vocab", "--quiet"])
    assert (
        res.exit_code == 0
        and "0 look-ups in the file" in res.output
        and f"{ds.n_items:,} cached" in res.output
    )


def test_shards_merge_into_the_full_run(tags_file, tmp_path):
    path, ds = tags_file
    base = [
        "tag",
        "--dataset",
        "demo",
        "--backend",
        "file",
        "--tags-file",
        str(path),
        "--no-vocab",
        "--quiet",
    ]
    for i in range(2):
        res = runner.invoke(
            app,
            [
                *base,
                "--shard",
                f"{i}/2",
                "--cache",
                str(tmp_path / f"s{i}.sqlite"),
                "--output",
                str(tmp_path / "o"),
            ],
        )
        assert res.exit_code == 0, res.output
    parts = [read_tags_jsonl(tmp_path / "o" / f"shard-{i}-of-2" / "tags.jsonl")[0] for i in range(2)]
    assert not set(parts[0]) & set(parts[1])
    res = runner.invoke(
        app,
        [
            *base,
            "--cache",
            str(tmp_path / "s0.sqlite"),
            "--merge-cache",
            str(tmp_path / "s1.sqlite"),
            "--output",
            str(tmp_path / "full"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "0 look-ups in the file" in res.output
    full, _ = read_tags_jsonl(tmp_path / "full" / "tags.jsonl")
    assert full == {**parts[0], **parts[1]}


def test_tag_writes_the_vocabulary(tags_file, tmp_path):
    pytest.importorskip("temarec.tagging.vocab")
    pytest.importorskip("temarec.features.text_encoder")
    pytest.importorskip("sentence_transformers")
    path, ds = tags_file
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "tag",
            "--dataset",
            "demo",
            "--backend",
            "file",
            "--tags-file",
            str(path),
            "--output",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    from temarec.tagging.vocab import TagVocab, item_keys_digest

    voc = TagVocab.load(out)
    assert 0 < len(voc) <= 18 and "vocabulary" in res.output
    assert json.loads((out / "summary.json").read_text())["vocab_size"] == len(voc)
    # the vocabulary knows its catalogue's keys in id order (rows are positions)
    assert voc.meta["item_keys_sha256"] == item_keys_digest(ds.items["key"].to_numpy())
    # what made it (for features.tags=auto), saved with it; imported tags do not depend on the text
    made = voc.meta["tagged_with"]
    assert made["backend"].startswith("file:") and made["sample"] is None and made["limit"] is None
    assert voc.text_hash is None


def test_retagging_never_leaves_the_old_vocabulary_beside_new_tags(tags_file, tmp_path):
    pytest.importorskip("sentence_transformers")
    from temarec.tagging.vocab import TagVocab

    path, ds = tags_file
    out = tmp_path / "out"
    args = ["tag", "--dataset", "demo", "--backend", "file", "--output", str(out), "--quiet"]
    assert runner.invoke(app, [*args, "--tags-file", str(path)]).exit_code == 0
    assert len(TagVocab.load(out)) > 0
    # every tag unusable: the vocabulary is rebuilt (empty), and the run says so
    junk = tmp_path / "junk.json"
    junk.write_text(json.dumps({k: ["n/a", "???"] for k in ds.items["key"].tolist()}))
    res = runner.invoke(app, [*args, "--tags-file", str(junk), "--cache", str(tmp_path / "c2.sqlite")])
    assert res.exit_code == 0, res.output
    assert "vocabulary is empty" in res.output and len(TagVocab.load(out)) == 0
    # --no-vocab: the previous vocabulary (of other tags) is removed, not left for the feature stage
    res = runner.invoke(app, [*args, "--tags-file", str(path), "--no-vocab"])
    assert res.exit_code == 0, res.output
    assert not (out / "vocab.json").exists() and not (out / "arrays.npz").exists()
    assert (out / "tags.jsonl").is_file() and "removed the previous tag vocabulary" in res.output


def test_a_run_where_no_item_got_tags_fails_and_says_why(tags_file, tmp_path):
    """Exit 1, an example of each failure reason, and notes on file ids that name no item; a shard
    with nothing tagged is not a failure (under --workers it would stop the other shards)."""
    _, ds = tags_file
    keys = ds.items["key"].tolist()
    path = tmp_path / "t.json"
    # one refusal, one nested object, ids of no item; nothing usable (a key repeated inside an entry is
    # that entry's problem, not the file's)
    refusal, nested = (
        f'"{keys[0]}": "Sorry, I cannot provide tags."',
        f'"{keys[1]}": {{"tag": "a", "tag": "b"}}',
    )
    path.write_text(f'{{{refusal}, {nested}, "x1": ["a"], "x2": ["b"]}}')
    args = ["tag", "--dataset", "demo", "--backend", "file", "--tags-file", str(path), "--quiet"]
    res = runner.invoke(app, [*args, "--output", str(tmp_path / "o")])
    assert res.exit_code == 1, res.output
    assert "note: 2 of the 4 ids in t.json name no item of demo (e.g. 'x1')" in res.output
    assert f"failed refusal: 1 (e.g. item {keys[0]}: 'Sorry, I cannot provide tags.')" in res.output
    assert "error: no item got tags" in res.output and not (tmp_path / "o" / "vocab.json").exists()
    shard = [*args, "--shard", "0/2", "--output", str(tmp_path / "s"), "--cache", str(tmp_path / "s.sqlite")]
    res = runner.invoke(app, shard)
    assert res.exit_code == 0, res.output


def test_default_output_goes_under_artifacts(tags_file, tmp_path, monkeypatch):
    path, _ = tags_file
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(tmp_path / "art"))
    res = runner.invoke(
        app,
        [
            "tag",
            "--dataset",
            "demo",
            "--backend",
            "file",
            "--tags-file",
            str(path),
            "--limit",
            "5",
            "--no-vocab",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "art" / "tags" / "demo" / "file-tags-limit5" / "tags.jsonl").is_file()
    assert (tmp_path / "art" / "tags" / "demo" / "cache.sqlite").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backend", "nope"], "unknown backend"),
        (["--backend", "file"], "--tags-file"),
        (["--backend", "file", "--tags-file", "/nonexistent.json"], "not found"),
        (["--backend", "keyphrase", "--shard", "2/2"], "shard"),
        (["--backend", "keyphrase", "--limit", "0"], "--limit"),
    ],
)
def test_argument_errors(extra, message):
    res = runner.invoke(app, ["tag", "--dataset", "demo", *extra])
    assert res.exit_code == 2 and message in res.output


def test_workers_tag_the_same_as_one_process(tmp_path):
    """`--workers 2`: two shard processes fill one cache; the result is the single-process result."""
    base = ["tag", "--dataset", "demo", "--backend", "keyphrase", "--sample", "24", "--no-vocab", "--quiet"]
    one, two = tmp_path / "one", tmp_path / "two"
    res = runner.invoke(app, [*base, "--cache", str(one / "c.sqlite"), "--output", str(one)])
    assert res.exit_code == 0, res.output
    in_two = ["--cache", str(two / "c.sqlite"), "--output", str(two), "--workers", "2"]
    res = runner.invoke(app, [*base, *in_two])
    assert res.exit_code == 0, res.output
    assert "with 2 workers" in res.output and "0 model calls" in res.output  # the parent only read the cache
    assert "2 workers:" in res.output and "items/s" in res.output
    done = json.loads((two / "summary.json").read_text())["workers"]
    no_text = json.loads((one / "summary.json").read_text())["no_text"]
    assert done["workers"] == 2 and done["items"] == 24 - no_text
    assert read_tags_jsonl(two / "tags.jsonl") == read_tags_jsonl(one / "tags.jsonl")
    logs = sorted(p.name for p in (two / "workers").iterdir())
    assert logs == ["worker-0-of-2.log", "worker-1-of-2.log"]
    assert not list(two.glob("shard-*")), "the workers' per-shard outputs are removed once merged"
    # everything cached now: no workers are started
    res = runner.invoke(app, [*base, *in_two])
    assert res.exit_code == 0 and "with 2 workers" not in res.output


def test_workers_argument_errors_and_a_failing_worker(tmp_path):
    from temarec.tagging.workers import WorkerError, run_workers

    for extra, msg in [
        (["--backend", "openai"], "use --concurrency"),
        (["--backend", "keyphrase", "--shard", "0/2"], "not with --shard"),
        (["--backend", "keyphrase", "--limit", "5"], "not with --shard or --limit"),
        (["--backend", "keyphrase", "--workers", "0"], "--workers must be >= 1"),
        (["--backend", "openai", "--max-rps", "0"], "--max-rps must be > 0"),
    ]:
        args = ["tag", "--dataset", "demo", "--workers", "2", *extra]
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and msg in res.output, (extra, res.output)
    bad = ["--dataset", "no-such-dataset", "--backend", "keyphrase"]
    with pytest.raises(WorkerError, match=r"of 2 tagging workers failed .*worker-\d-of-2.log.*no-such"):
        run_workers(bad, 2, tmp_path / "w", progress=False)


def test_echo_note_says_what_the_guard_dropped():
    from temarec.cli import _echo_note

    assert _echo_note({"example_echo": None}) == "" and _echo_note({}) == ""
    none = {"tags_dropped": 0, "items_with_echo": 0, "items_left_without_tags": 0}
    assert _echo_note({"example_echo": none}) == ""
    some = {"tags_dropped": 1234, "items_with_echo": 1000, "items_left_without_tags": 3}
    note = _echo_note({"example_echo": some})
    assert "1,234 tags" in note and "1,000 items" in note and "3 left without tags" in note


def test_a_tags_file_that_names_no_item_fails_before_work(tags_file, tmp_path):
    """Numeric ids read as keys (or keys read as item ids) match nothing: an error with the fix,
    not an empty tag source with every item 'missing'."""
    path, ds = tags_file
    by_id = tmp_path / "by_id.json"
    by_id.write_text(json.dumps({str(i): ["a tag"] for i in range(1, 50)}))
    out = tmp_path / "out"
    base = ["tag", "--dataset", "demo", "--backend", "file", "--output", str(out), "--quiet"]
    res = runner.invoke(app, [*base, "--tags-file", str(by_id)])
    assert res.exit_code == 2 and "--id-space item_id" in res.output and not out.exists()
    res = runner.invoke(app, [*base, "--tags-file", str(by_id), "--id-space", "item_id", "--no-vocab"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*base, "--tags-file", str(path), "--id-space", "item_id"])
    assert res.exit_code == 2 and "--id-space key" in res.output


@pytest.mark.parametrize(
    ("text", "message"),
    [('{"a": [NaN]}', "NaN is not a JSON value"), ("[" * 100_000 + "]" * 100_000, "nested too deeply")],
)
def test_tags_file_that_is_not_plain_json(tmp_path, text, message):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    res = runner.invoke(app, ["tag", "--dataset", "demo", "--backend", "file", "--tags-file", str(bad)])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_prompt_file_errors_are_one_line(tmp_path):
    """A YAML or template mistake in --prompts is named on load, before any model is started."""
    cases = {
        "syntax.yaml": ("version: x\n  bad: [\n", "syntax.yaml:2: not valid YAML"),
        "unsafe.yaml": ("version: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
        "domains.yaml": ("version: x\ndomains: [a]\n", "field 'domains': expected a mapping"),
        "field.yaml": ("version: x\ngenerate: '{product} {item}'\n", "unknown placeholder(s) {product}"),
        "noitem.yaml": ("version: x\ngenerate: 'Tags:'\n", "generate: must contain {item}"),
        "minmax.yaml": ("version: x\nmin_tags: 10\nmax_tags: 3\n", "min_tags (10) is above max_tags (3)"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        res = runner.invoke(
            app, ["tag", "--dataset", "demo", "--backend", "llamacpp", "--prompts", str(path), "--limit", "1"]
        )
        assert res.exit_code == 2, (name, res.output)
        assert message in res.output and "Traceback" not in res.output, (name, res.output)
        assert res.output.count(name) == 1, res.output  # the path once, not "x.yaml: x.yaml: ..."


def test_tag_options_are_checked_before_any_work(tmp_path, monkeypatch):
    """A missing keyphrase encoder is an error line, not a traceback; a batch size below 1 is refused
    (range(0, n, -1) tagged nothing and said so with exit code 0)."""
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(tmp_path / "art"))
    res = runner.invoke(
        app, ["tag", "--dataset", "demo", "--backend", "keyphrase", "--model", str(tmp_path / "no")]
    )
    assert res.exit_code == 2 and "error: text encoder" in res.output and "Traceback" not in res.output
    for opt in ("--batch-size", "--max-tokens"):
        res = runner.invoke(app, ["tag", "--dataset", "demo", "--backend", "keyphrase", opt, "0"])
        assert res.exit_code == 2 and "greater than or equal to 1" in res.output
    assert not (tmp_path / "art" / "tags").exists()


def test_an_interrupted_run_says_where_its_answers_are(tags_file, tmp_path, monkeypatch):
    from temarec.tagging import runner as tag_runner

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(tag_runner, "tag_dataset", interrupted)
    path, _ = tags_file
    args = ["tag", "--dataset", "demo", "--backend", "file", "--tags-file", str(path), "--quiet"]
    res = runner.invoke(app, [*args, "--output", str(tmp_path / "o"), "--cache", str(tmp_path / "c.sqlite")])
    assert res.exit_code == 130
    assert "interrupted: the answers so far are kept in" in res.output and "c.sqlite" in res.output
    assert not (tmp_path / "o" / "tags.jsonl").exists()
