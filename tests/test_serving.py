"""Serving from a finished run: load it back, recommend with explanations, clear errors on bad folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from temarec.cli import app
from temarec.config import RunConfig
from temarec.pipeline import tag_catalogue
from temarec.serving.load import RunLoadError, load_run
from temarec.serving.recommend import explained_recommendations, recommend
from temarec.training.run import features_for, run
from temarec.training.trainer import BEST


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_ds, tiny_tema):
    """A tema run (keyphrase tags, MiniLM text) trained for two epochs, and the artifacts it reads."""
    art = tmp_path_factory.mktemp("serving-artifacts")
    out = tmp_path_factory.mktemp("serving-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEMAREC_ARTIFACTS", str(art))
        source, _ = tag_catalogue(demo_ds, "keyphrase", progress=False)
        run(tiny_tema(source), out, progress=False, dataset=demo_ds)
    return out, art


def test_loaded_run_scores_as_the_trained_model(served, demo_ds, monkeypatch):
    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    loaded = load_run(out, dataset=demo_ds)
    assert not loaded.model.training and loaded.features is not None
    # the same weights as on disk, and the training statistics refitted (tema: items seen in training)
    from safetensors.torch import load_file

    for name, value in load_file(str(out / BEST)).items():
        assert torch.equal(loaded.model.state_dict()[name], value)
    seen = np.zeros(demo_ds.info().n_items + 1, dtype=bool)
    from temarec.data.splits import get_split

    train = get_split(demo_ds, loaded.cfg.data.split).train
    seen[np.unique(train.values)] = True
    assert np.array_equal(loaded.model.items.seen.numpy(), seen)


def test_explained_recommendations(served, demo_ds, monkeypatch):
    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    loaded = load_run(out, dataset=demo_ds)
    assert all(loaded.item_keys[i] == k for k, i in loaded.item_index.items())
    assert len(loaded.item_index) == demo_ds.info().n_items
    users = [str(demo_ds.user_keys[i]) for i in (4, 0)]
    recs = explained_recommendations(loaded, users, k=5)
    assert [(r["user"], r["domain"]) for r in recs] == [(u, d) for u in users for d in demo_ds.domains]
    keys = demo_ds.items["key"].astype(str)
    by_key = dict(zip(keys, demo_ds.items.index, strict=True))
    n_explained = 0
    for r in recs:
        u = 4 if r["user"] == users[0] else 0
        d = demo_ds.domains.index(r["domain"])
        hist = demo_ds.sequences.row(u)
        ids = [by_key[x["item"]] for x in r["items"]]
        assert len(ids) == 5 and not set(ids) & set(hist.tolist())
        assert np.all(demo_ds.item_domain[ids] == d)
        scores = [x["score"] for x in r["items"]]
        assert scores == sorted(scores, reverse=True)
        # the same items as the model's own top-k
        top, _ = recommend(loaded.model, demo_ds, np.array([u]), d, k=5, max_len=20)
        assert ids == top[0].tolist()
        for x in r["items"]:
            for b in x["because"]:
                n_explained += 1
                assert b["history_items"] and {by_key[h] for h in b["history_items"]} <= set(hist.tolist())
    assert n_explained > 0  # keyphrase tags link some recommendations to the history
    only = explained_recommendations(loaded, users[:1], k=2, domains=[demo_ds.domains[1]], n_tags=0)
    assert len(only) == 1 and len(only[0]["items"]) == 2 and only[0]["items"][0]["because"] == []
    with pytest.raises(ValueError, match="unknown user key.*'nobody'"):
        explained_recommendations(loaded, ["nobody"])
    with pytest.raises(ValueError, match="unknown domain"):
        explained_recommendations(loaded, users, domains=["Garden"])


def test_recommend_cli(served, demo_ds, monkeypatch):
    """The run was trained on a smaller demo world than the CLI loads: a clear error, not a traceback
    (the data fingerprint in metrics.json tells before the weights would)."""
    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    runner = CliRunner()
    res = runner.invoke(app, ["recommend", str(out), "--user", str(demo_ds.user_keys[0])])
    assert res.exit_code == 2 and "was trained on other data than 'demo'" in res.output


def test_recommend_cli_with_a_pop_run(tmp_path):
    """Every model serves through the same command; pop has no weights to load."""
    cfg = RunConfig.model_validate(
        {"data": {"dataset": "demo"}, "model": {"name": "pop"}, "eval": {"protocols": ["full"]}}
    )
    run(cfg, tmp_path, progress=False)
    from temarec.data.demo import generate_demo

    ds = generate_demo(seed=0)
    user = str(ds.user_keys[1])
    runner = CliRunner()
    res = runner.invoke(app, ["recommend", str(tmp_path), "--user", user, "--k", "3", "--json"])
    assert res.exit_code == 0, res.output
    recs = json.loads(res.output)
    assert [r["domain"] for r in recs] == list(ds.domains)
    assert all(len(r["items"]) == 3 and r["user"] == user for r in recs)
    text = runner.invoke(app, ["recommend", str(tmp_path), "--user", user, "--k", "2"])
    assert text.exit_code == 0 and f"user {user}: latest items" in text.output
    bad = runner.invoke(app, ["recommend", str(tmp_path), "--user", "nobody"])
    assert bad.exit_code == 2 and "unknown user key" in bad.output
    # a history sent instead of a user: keys from the dataset, comma-separated
    keys = ds.items["key"].astype(str).tolist()
    res = runner.invoke(app, ["recommend", str(tmp_path), "--history", f"{keys[0]},{keys[5]}", "--json"])
    assert res.exit_code == 0, res.output
    recs = json.loads(res.output)
    assert [(r["history"], r["domain"]) for r in recs] == [(0, d) for d in ds.domains]
    assert all(keys[0] not in [it["item"] for it in r["items"]] for r in recs)
    text = runner.invoke(app, ["recommend", str(tmp_path), "--history", keys[0], "--k", "2"])
    assert text.exit_code == 0 and "history 0: latest items" in text.output, text.output
    bad = runner.invoke(app, ["recommend", str(tmp_path), "--history", f"{keys[0]},no-such-item"])
    assert bad.exit_code == 2 and "no-such-item" in bad.output
    assert runner.invoke(app, ["recommend", str(tmp_path)]).exit_code == 2


def test_bad_run_folders_are_clear_errors(served, demo_ds, tmp_path, monkeypatch):
    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    with pytest.raises(RunLoadError, match="config.json: not found"):
        load_run(tmp_path, dataset=demo_ds)
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    cfg_file = broken / "config.json"
    good = cfg_file.read_text()
    cfg_file.write_text(good.replace('"hidden": 16', '"hidden": 16,,'))
    with pytest.raises(RunLoadError, match=r"config.json:\d+: not valid JSON"):
        load_run(broken, dataset=demo_ds)
    cfg_file.write_text(good.replace('"hidden": 16', '"hidden": "wide"'))
    with pytest.raises(RunLoadError, match="field 'model.hidden'"):
        load_run(broken, dataset=demo_ds)
    cfg_file.write_text(good.replace('"hidden": 16', '"hidden": 32'))
    with pytest.raises(RunLoadError, match="best.safetensors: does not fit"):
        load_run(broken, dataset=demo_ds)
    cfg_file.write_text(good)
    (broken / BEST).unlink()
    with pytest.raises(RunLoadError, match="best.safetensors: not found; the run finished .* retrain it"):
        load_run(broken, dataset=demo_ds)  # a committed result folder: metrics, no weights
    (broken / "metrics.json").unlink()
    with pytest.raises(RunLoadError, match="best.safetensors: not found; the run has not finished"):
        load_run(broken, dataset=demo_ds)


def test_features_for_is_none_without_content(demo_ds):
    cfg = RunConfig.model_validate({"model": {"name": "sasrec"}})
    assert features_for(demo_ds, cfg, progress=False) is None


def test_http_api(served, demo_ds, monkeypatch):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    from fastapi.testclient import TestClient

    from temarec.serving.api import create_app

    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    loaded = load_run(out, dataset=demo_ds)
    client = TestClient(create_app(loaded))
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "tema"
    assert health["users"] == len(demo_ds.user_keys)
    assert health["run"] == str(loaded.path)  # an open server says which run it serves
    user = str(demo_ds.user_keys[2])
    one = client.get(f"/recommend/{user}", params={"k": 4, "domain": demo_ds.domains[0]})
    assert one.status_code == 200
    assert one.json() == explained_recommendations(loaded, [user], k=4, domains=[demo_ds.domains[0]])
    users = [user, str(demo_ds.user_keys[3])]
    many = client.post("/recommend", json={"users": users, "k": 3})
    assert many.status_code == 200
    assert [(r["user"], r["domain"]) for r in many.json()] == [(u, d) for u in users for d in demo_ds.domains]
    missing = client.get("/recommend/nobody")
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
    assert client.get(f"/recommend/{user}", params={"domain": "Garden"}).status_code == 422
    assert client.get(f"/recommend/{user}", params={"k": 0}).status_code == 422
    typo = client.get(f"/recommend/{user}", params={"domians": demo_ds.domains[0], "k": 1})
    assert typo.status_code == 422  # was ignored: every domain answered
    assert typo.json()["detail"][0]["loc"] == ["query", "domians"] and "reads domain, k, tags" in typo.text
    in_query = client.post("/recommend", params={"k": 50}, json={"users": [user]})
    assert in_query.status_code == 422 and "send settings in the body" in in_query.text
    assert client.post("/recommend", json={"users": []}).status_code == 422
    assert client.post("/recommend", json={"users": users, "k": 10**6}).status_code == 422


def test_http_api_key(served, demo_ds, monkeypatch):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    from fastapi.testclient import TestClient

    from temarec.serving.api import create_app

    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    loaded = load_run(out, dataset=demo_ds)
    client = TestClient(create_app(loaded, api_key="s3cret"))
    user = str(demo_ds.user_keys[2])
    health = client.get("/health")
    assert health.status_code == 200  # open for load balancers
    assert "run" not in health.json() and str(out) not in health.text  # but not the file system
    schema = client.get("/openapi.json").json()
    assert str(out) not in json.dumps(schema)
    # /docs says what a guarded server wants, and that /health wants nothing
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert schema["security"] == [{"bearer": []}, {"apiKey": []}]
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert "security" not in client.get("/openapi.json").json()["paths"]["/recommend"]["post"]
    assert "securitySchemes" not in TestClient(create_app(loaded)).get("/openapi.json").json().get(
        "components", {}
    )
    denied = client.get(f"/recommend/{user}")
    assert denied.status_code == 401 and "API key" in denied.json()["detail"]
    assert denied.headers["www-authenticate"] == "Bearer"
    assert client.get(f"/recommend/{user}", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/recommend", json={"users": [user]}).status_code == 401
    ok = client.get(f"/recommend/{user}", params={"k": 2}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and len(ok.json()) == len(demo_ds.domains)
    also = client.post("/recommend", json={"users": [user], "k": 2}, headers={"X-API-Key": "s3cret"})
    assert also.status_code == 200 and also.json() == ok.json()
    with pytest.raises(ValueError, match="empty"):
        create_app(loaded, api_key=" ")


def test_a_tag_reading_run_records_its_vocabulary_fingerprint(served):
    from temarec.features.build import tag_vocab_fingerprint

    out, art = served
    doc = json.loads((out / "metrics.json").read_text())
    folders = list((art / "tags").glob("*/*/vocab.json"))
    assert len(folders) == 1
    assert doc["features"]["tags"]["fingerprint"] == tag_vocab_fingerprint(folders[0].parent)


def test_recommendations_for_sent_histories(served, demo_ds, monkeypatch):
    """A history sent by the caller is ranked as the same history of a dataset user would be."""
    from temarec.serving.recommend import (
        UnknownItemError,
        explained_recommendations_for_histories,
    )

    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    loaded = load_run(out, dataset=demo_ds)
    users = [str(demo_ds.user_keys[i]) for i in (2, 7)]
    histories = [loaded.item_keys[demo_ds.sequences.row(loaded.user_index[u])].tolist() for u in users]
    by_user = explained_recommendations(loaded, users, k=5)
    sent = explained_recommendations_for_histories(loaded, histories + [[]], k=5)
    assert [r["history"] for r in sent] == [0, 0, 1, 1, 2, 2]
    for a, b in zip(by_user, sent[:4], strict=True):
        assert a["domain"] == b["domain"]
        assert [it["item"] for it in a["items"]] == [it["item"] for it in b["items"]]
        assert [it["because"] for it in a["items"]] == [it["because"] for it in b["items"]]
        assert np.allclose([it["score"] for it in a["items"]], [it["score"] for it in b["items"]], atol=1e-5)
    assert all(len(r["items"]) == 5 for r in sent[4:])  # an empty history still gets recommendations
    # ... the training data's most popular items of the domain, said to be so (not the model's
    # all-padding state, which ranks items arbitrarily)
    assert [r["basis"] for r in sent] == ["model"] * 4 + ["popularity"] * 2
    train = loaded.split.train.values
    for r in sent[4:]:
        d = demo_ds.domains.index(r["domain"])
        counts = np.bincount(train, minlength=demo_ds.info().n_items + 1)
        counts[demo_ds.item_domain != d] = -1
        top = set(np.argsort(-counts, kind="stable")[:5].tolist())
        ids = [loaded.item_index[it["item"]] for it in r["items"]]
        assert set(ids) == top or [counts[i] for i in ids] == sorted(counts[list(top)], reverse=True)
        assert [it["score"] for it in r["items"]] == sorted((it["score"] for it in r["items"]), reverse=True)
        assert all(it["because"] == [] for it in r["items"])  # nothing to link them to
    with pytest.raises(UnknownItemError, match="history 1: unknown item key.*'nope'"):
        explained_recommendations_for_histories(loaded, [histories[0], ["nope"]])
    with pytest.raises(ValueError, match="history 0: a list of item keys"):
        explained_recommendations_for_histories(loaded, ["abc"])
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    from fastapi.testclient import TestClient

    from temarec.serving.api import create_app

    client = TestClient(create_app(loaded))
    res = client.post("/recommend/history", json={"histories": histories, "k": 5})
    assert res.status_code == 200 and res.json()[:2] == sent[:2]
    bad = client.post("/recommend/history", json={"histories": [["nope"]]})
    assert bad.status_code == 422 and "nope" in bad.json()["detail"]
    assert client.post("/recommend/history", json={"histories": []}).status_code == 422


def test_export_every_user_matches_the_per_request_records(served, demo_ds, tmp_path, monkeypatch):
    """The export is the per-user records, batched, as JSON lines; a bad request writes nothing."""
    import gzip

    from temarec.serving.recommend import UnknownUserError, export_recommendations

    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    loaded = load_run(out, dataset=demo_ds)
    path = tmp_path / "recs.jsonl.gz"
    n = export_recommendations(loaded, path, k=4, batch_size=300, progress=False)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [json.loads(x) for x in f]
    assert n == len(lines) == demo_ds.n_users * len(demo_ds.domains)
    users = [str(u) for u in demo_ds.user_keys]
    assert [(r["user"], r["domain"]) for r in lines] == [(u, d) for u in users for d in demo_ds.domains]
    for i in (0, 299, 300, demo_ds.n_users - 1):  # both sides of a batch boundary
        want = explained_recommendations(loaded, [users[i]], k=4)
        got = lines[2 * i : 2 * i + 2]
        for f in ("item", "because"):
            assert [[x[f] for x in r["items"]] for r in got] == [[x[f] for x in r["items"]] for r in want]
    assert any(x["because"] for r in lines for x in r["items"])
    before = path.read_bytes()
    with pytest.raises(UnknownUserError, match="'nobody'"):
        export_recommendations(loaded, path, users=[users[0], "nobody"], progress=False)
    with pytest.raises(ValueError, match="k must be"):
        export_recommendations(loaded, path, k=0, progress=False)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["recs.jsonl.gz"]


def test_recommend_cli_exports_all_users(tmp_path):
    from temarec.data.demo import generate_demo

    cfg = RunConfig.model_validate(
        {"data": {"dataset": "demo"}, "model": {"name": "pop"}, "eval": {"protocols": ["full"]}}
    )
    run(cfg, tmp_path / "pop", progress=False)
    ds = generate_demo(seed=0)
    runner = CliRunner()
    dest = tmp_path / "all.jsonl"
    pop = str(tmp_path / "pop")
    res = runner.invoke(app, ["recommend", pop, "--all-users", "--output", str(dest), "--k", "2"])
    assert res.exit_code == 0, res.output
    assert f"{ds.n_users * 2:,} records" in res.output
    recs = [json.loads(x) for x in dest.read_text().splitlines()]
    assert len(recs) == ds.n_users * 2 and all(len(r["items"]) == 2 for r in recs)
    some = runner.invoke(app, ["recommend", pop, "--user", str(ds.user_keys[3]), "--output", str(dest)])
    assert some.exit_code == 0 and len(dest.read_text().splitlines()) == 2
    for args, msg in [
        (["--all-users"], "add --output"),
        (["--all-users", "--user", "x", "--output", str(dest)], "not both"),
        (["--history", "a,b", "--output", str(dest)], "--history prints"),
    ]:
        bad = runner.invoke(app, ["recommend", pop, *args])
        assert bad.exit_code == 2 and msg in bad.output, bad.output


def test_every_item_of_a_long_sent_history_is_excluded(served, demo_ds, monkeypatch):
    """A history longer than the model reads is still excluded whole (it was cut to its latest 1,000)."""
    from temarec.serving.recommend import explained_recommendations_for_histories

    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    loaded = load_run(out, dataset=demo_ds)
    food = demo_ds.domains[0]
    in_food = np.flatnonzero(demo_ds.item_domain == 0)
    in_food = in_food[in_food > 0]
    others = np.flatnonzero(demo_ds.item_domain == 1)
    # every Food item but the last three, sent first, then 1,200 items of the other domain
    history = loaded.item_keys[np.concatenate([in_food[:-3], others[:1200]])].tolist()
    recs = explained_recommendations_for_histories(loaded, [history], k=10, domains=[food], n_tags=0)
    assert sorted(x["item"] for x in recs[0]["items"]) == sorted(loaded.item_keys[in_food[-3:]].tolist())


def test_python_api_input_types(served, demo_ds, monkeypatch):
    from temarec.serving.recommend import explained_recommendations_for_histories, export_recommendations

    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    loaded = load_run(out, dataset=demo_ds)
    user = str(demo_ds.user_keys[0])
    assert explained_recommendations(loaded, []) == []
    assert explained_recommendations_for_histories(loaded, []) == []
    with pytest.raises(TypeError, match="list of user keys, got str"):
        explained_recommendations(loaded, user)
    with pytest.raises(TypeError, match="list of user keys"):
        export_recommendations(loaded, out / "x.jsonl", users=user)
    with pytest.raises(TypeError, match="the string 'Food'"):
        explained_recommendations(loaded, [user], domains="Food")
    with pytest.raises(TypeError, match="k must be an integer"):
        explained_recommendations(loaded, [user], k=2.5)
    with pytest.raises(TypeError, match="n_tags must be an integer"):
        explained_recommendations(loaded, [user], n_tags=None)
    twice = explained_recommendations(loaded, [user], k=2, domains=[demo_ds.domains[0]] * 2)
    assert len(twice) == 1  # a domain asked twice is answered once


def test_http_requests_are_strict_and_the_key_comes_first(served, demo_ds, monkeypatch):
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    from fastapi.testclient import TestClient

    from temarec.serving.api import create_app

    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    loaded = load_run(out, dataset=demo_ds)
    user = str(demo_ds.user_keys[0])
    client = TestClient(create_app(loaded))
    typo = client.post("/recommend", json={"users": [user], "domain": ["Food"]})  # 'domains'
    assert typo.status_code == 422 and "domain" in typo.text
    assert client.post("/recommend", json={"users": [user], "k": True}).status_code == 422
    assert client.post("/recommend/history", json={"histories": [[]], "extra": 1}).status_code == 422
    # with a key: a caller without it learns nothing about the request's shape
    key = "clé-ü"  # not ASCII: sent as UTF-8 bytes, read by the server as latin-1
    guarded = TestClient(create_app(loaded, api_key=key))
    assert guarded.post("/recommend", content=b"{not json").status_code == 401
    assert guarded.post("/recommend", json={"users": "x"}).status_code == 401
    assert guarded.get(f"//recommend/{user}").status_code == 401  # deny by default: no path slips past
    assert guarded.get("/docs").status_code == 200
    raw = key.encode("utf-8")
    ok = guarded.get(f"/recommend/{user}", params={"k": 1}, headers={"X-API-Key": raw})
    assert ok.status_code == 200, ok.text
    assert guarded.get(f"/recommend/{user}", headers={"Authorization": b"Bearer " + raw}).status_code == 200
    assert guarded.get(f"/recommend/{user}", headers={"X-API-Key": "cle-u"}).status_code == 401


def test_a_run_loaded_on_other_data_or_with_broken_weights_is_refused(served, demo_ds, tmp_path, monkeypatch):
    from temarec.data.demo import generate_demo

    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    other = generate_demo(seed=1)  # same size, other users: the weights would load
    with pytest.raises(RunLoadError, match="trained on other data"):
        load_run(out, dataset=other)
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / BEST).write_bytes((out / BEST).read_bytes()[:100])
    with pytest.raises(RunLoadError, match="corrupt or truncated"):
        load_run(broken, dataset=demo_ds)


def test_an_unfinished_run_is_checked_against_its_checkpoint(served, demo_ds, tmp_path, monkeypatch):
    """Without metrics.json (training interrupted), the checkpoint's fingerprint says what it was
    trained on: the same data loads, other data is refused (it used to be served silently)."""
    from temarec.data.demo import generate_demo

    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    unfinished = tmp_path / "unfinished"
    shutil.copytree(out, unfinished)
    (unfinished / "metrics.json").unlink()
    assert (unfinished / "checkpoint.pt").is_file()
    assert load_run(unfinished, dataset=demo_ds).model is not None
    with pytest.raises(RunLoadError, match=r"checkpoint.pt: this unfinished run was trained on other data"):
        load_run(unfinished, dataset=generate_demo(seed=1))


def test_a_run_whose_tags_were_rebuilt_is_refused(served, demo_ds, tmp_path, monkeypatch):
    """evaluate, recommend and serve read the tag source by name: re-tagged, it would give the model's
    items other tags (and evaluate would write numbers of other tags into the run folder)."""
    from temarec.tagging.vocab import TagVocab, build_vocab

    out, art = served
    art2 = tmp_path / "art"
    shutil.copytree(art, art2)
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art2))
    (folder,) = [p.parent for p in (art2 / "tags").glob("*/*/vocab.json")]
    old = TagVocab.load(folder)
    tags = {i: [t for t, _ in old.item_tags(i)][::-1] for i in range(1, old.n_items + 1) if old.item_tags(i)}
    build_vocab(tags, None, demo_ds.item_domain, source=folder.name).save(folder)  # same tags, other order
    with pytest.raises(
        RunLoadError, match=r"trained with another tag vocabulary \(fingerprint \w+ in metrics"
    ):
        load_run(out, dataset=demo_ds)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(out, unfinished)
    (unfinished / "metrics.json").unlink()
    with pytest.raises(RunLoadError, match=r"another tag vocabulary \(fingerprint \w+ in checkpoint.pt"):
        load_run(unfinished, dataset=demo_ds)


def test_recommend_and_serve_cli_refuse_bad_outputs_and_ports(served, tmp_path, monkeypatch):
    out, art = served
    monkeypatch.setenv("TEMAREC_ARTIFACTS", str(art))
    runner = CliRunner()
    base = ["recommend", str(out), "--all-users", "--dataset", "demo"]
    res = runner.invoke(app, [*base, "--output", str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in res.output
    res = runner.invoke(app, [*base, "--output", str(tmp_path / "r.jsonl"), "--json"])
    assert res.exit_code == 2 and "give one of them" in res.output
    res = runner.invoke(app, ["recommend", str(out), "--user", "U00001", "--tags", "-1"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["serve", str(out), "--port", "70000"])
    assert res.exit_code == 2 and "65535" in res.output
    monkeypatch.setenv("TEMAREC_API_KEY", "   ")
    res = runner.invoke(app, ["serve", str(out), "--dataset", "demo"])
    assert res.exit_code == 2 and "set but blank" in res.output
