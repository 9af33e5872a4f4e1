"""The `temarec` command line: a thin layer over the Python API."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(help="temarec: cross-domain sequential recommendation with LLM tags.", no_args_is_help=True)

# the arguments every command over a finished run shares
RunDirArg = Annotated[Path, typer.Argument(help="run folder written by `temarec train`")]
RunDatasetOpt = Annotated[
    str | None, typer.Option(help="dataset name or folder, if not the one in the run's config.json")
]
data_app = typer.Typer(help="Inspect, export and import datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _interrupted(then: str) -> NoReturn:
    """End a command on Ctrl-C with a line saying what is kept (`then`), exit code 130."""
    typer.echo(f"\ninterrupted: {then}", err=True)
    raise typer.Exit(130)


def _interruptible(then: str):  # noqa: ANN202 - a decorator
    """`_interrupted(then)` around a whole command."""

    def wrap(fn):  # noqa: ANN001, ANN202
        @functools.wraps(fn)  # typer reads the options from the wrapped signature
        def command(*args, **kwargs):  # noqa: ANN202
            try:
                return fn(*args, **kwargs)
            except KeyboardInterrupt:
                _interrupted(then)

        return command

    return wrap


def _check_data_folder(out: Path, overwrite: bool) -> None:
    """OUT must be a folder (or not exist yet), and a dataset already there is replaced only when asked."""
    from temarec.data.canonical import INTERACTIONS, ITEMS

    out = Path(out)
    if out.exists() and not out.is_dir():
        _fail(f"{out} is a file; give the folder to write the dataset into")
    names = {f"{n}.{ext}" for n in (ITEMS, INTERACTIONS) for ext in ("csv", "parquet")} | {"dataset.json"}
    there = sorted(p.name for p in out.glob("*") if p.name in names) if out.is_dir() else []
    if there and not overwrite:
        _fail(f"{out} already holds a dataset ({', '.join(there)}); use --overwrite to replace it")


def _check_format(fmt: str) -> None:
    from temarec.data.canonical import FORMATS

    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _load(dataset: str):
    from temarec.data import DataFormatError, DatasetNotFoundError, load_dataset

    try:
        return load_dataset(dataset)
    except (DataFormatError, DatasetNotFoundError) as e:
        _fail(str(e))


@data_app.command("stats")
def data_stats(
    dataset: Annotated[str, typer.Argument(help="name under TEMAREC_DATA, a folder, or 'demo'")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Users, items and interactions per domain."""
    st = _load(dataset).stats()
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    typer.echo(f"dataset {st['dataset']}")
    typer.echo(f"{'domain':<10}{'users':>10}{'items':>10}{'with title':>12}{'interactions':>14}")
    for name, d in list(st["domains"].items()) + [("all", st["all"])]:
        typer.echo(
            f"{name:<10}{d['users']:>10,}{d['items']:>10,}{d['items_with_title']:>12,}{d['interactions']:>14,}"
        )
    typer.echo(f"users active in both domains: {st['all']['users_in_both_domains']:,}")
    for key in ("published_split", "users_per_file"):
        if key in st:
            typer.echo(f"{key.replace('_', ' ')}: " + ", ".join(f"{k} {v:,}" for k, v in st[key].items()))


@data_app.command("export")
def data_export(
    dataset: str,
    out: Path,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
    name: Annotated[
        str | None,
        typer.Option(
            help="the name dataset.json gives the copy (default: OUT's folder name); tags are kept by name"
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a dataset already in OUT")] = False,
) -> None:
    """Write a dataset (e.g. 'demo') as canonical items + interactions files."""
    from temarec.data.canonical import write_canonical

    _check_format(fmt)
    _check_data_folder(out, overwrite)
    ds = _load(dataset)
    try:
        write_canonical(ds, out, fmt=fmt, name=name or Path(out).resolve().name)
    except (ValueError, OSError) as e:
        _fail(str(e))
    typer.echo(f"wrote {out}")


@data_app.command("import-amazon")
def data_import_amazon(
    a_reviews: Annotated[Path, typer.Option(help="domain A reviews JSON lines (.json or .json.gz)")],
    b_reviews: Annotated[Path, typer.Option(help="domain B reviews JSON lines")],
    out: Annotated[Path, typer.Option(help="folder for the canonical files")],
    a_meta: Annotated[Path | None, typer.Option(help="domain A metadata JSON lines")] = None,
    b_meta: Annotated[Path | None, typer.Option(help="domain B metadata JSON lines")] = None,
    a_category: Annotated[
        str | None,
        typer.Option(help="keep only domain A items whose metadata lists this category (needs --a-meta)"),
    ] = None,
    b_category: Annotated[
        str | None,
        typer.Option(help="keep only domain B items whose metadata lists this category (needs --b-meta)"),
    ] = None,
    a_name: str = "A",
    b_name: str = "B",
    k_core: int = 5,
    min_per_domain: int = 1,
    max_len: Annotated[int | None, typer.Option(help="keep the latest N interactions per user")] = None,
    fmt: Annotated[str, typer.Option("--format")] = "parquet",
    overwrite: Annotated[bool, typer.Option(help="replace a dataset already in OUT")] = False,
) -> None:
    """Import raw Amazon reviews + metadata (2014 or 2018 schema) of two categories."""
    from temarec.data import DataFormatError
    from temarec.data.amazon_raw import AmazonSource, import_amazon
    from temarec.data.canonical import write_canonical

    _check_format(fmt)  # before hours of parsing, not after
    _check_data_folder(out, overwrite)
    try:
        ds = import_amazon(
            AmazonSource(name=a_name, reviews=a_reviews, meta=a_meta, category=a_category),
            AmazonSource(name=b_name, reviews=b_reviews, meta=b_meta, category=b_category),
            k_core=k_core,
            min_per_domain=min_per_domain,
            max_len=max_len,
            name=Path(out).resolve().name,
        )
        write_canonical(ds, out, fmt=fmt)
    except (DataFormatError, ValueError, OSError) as e:
        _fail(str(e))
    typer.echo(f"wrote {out}: {ds.n_users:,} users, {ds.n_items:,} items")


def _protocol_names(args: list[str]) -> list[str]:
    """`--protocol` values, each of which may be a comma-separated list."""
    return [p.strip() for arg in args for p in arg.split(",") if p.strip()]


def _print_metrics(doc: dict) -> None:
    cols = ["HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR"]
    draw = "" if doc["protocol"] == "full" else f", candidates drawn with seed {doc['candidate_seed']}"
    typer.echo(f"test ({doc['protocol']}, seed {doc['seed']}{draw}):")
    typer.echo(f"  {'domain':<10}" + "".join(f"{c:>9}" for c in cols))
    for dom, m in doc["test"].items():
        typer.echo(f"  {dom:<10}" + "".join(f"{m[c]:>9.4f}" for c in cols))


@app.command()
def train(
    dataset: Annotated[
        str | None, typer.Option(help="dataset name, folder or 'demo' (default: the config's, demo)")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="pop, gru4rec, sasrec, sasrec-single, c2dsr or tema (default: the config's, sasrec)"
        ),
    ] = None,
    output: Annotated[Path, typer.Option(help="run folder: metrics.json, checkpoints, logs")] = Path(
        "runs/last"
    ),
    seed: Annotated[int | None, typer.Option(help="training seed")] = None,
    protocol: Annotated[
        list[str] | None,
        typer.Option(help="full, uni999, uni100, uniN; repeat for several (the first selects)"),
    ] = None,
    split: Annotated[str | None, typer.Option(help="auto, loo or published")] = None,
    epochs: Annotated[int | None, typer.Option(help="maximum epochs")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML config file")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override, e.g. model.hidden=128 (the flags above win over it)"),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
    overwrite: Annotated[
        bool,
        typer.Option(help="replace a run already in OUTPUT (a run of other settings is refused without it)"),
    ] = False,
) -> None:
    """Train (nothing to train for pop), select on validation, evaluate test, write OUTPUT/metrics.json.

    Run again with the same settings, it resumes from OUTPUT's checkpoint (or re-evaluates a finished run).
    """
    from pydantic import ValidationError

    from temarec.config import brief, load_config
    from temarec.data import DataFormatError, DatasetNotFoundError
    from temarec.training.run import run
    from temarec.training.trainer import ResumeError

    overrides = list(set_ or [])
    for key, val in [
        ("data.dataset", dataset),
        ("model.name", model),
        ("train.seed", seed),
        ("data.split", split),
        ("train.epochs", epochs),
    ]:
        if val is not None:
            overrides.append(f"{key}={val}")
    if protocol:
        overrides.append("eval.protocols=[" + ",".join(_protocol_names(protocol)) + "]")
    try:
        cfg = load_config(config, overrides)
        if not quiet:  # say what runs: without --dataset/--model, the defaults do
            typer.echo(
                f"train {cfg.model.name} on {cfg.data.dataset} (seed {cfg.train.seed}, "
                f"{', '.join(cfg.eval.protocols)}) -> {output}"
            )
        doc = run(cfg, output, progress=not quiet, overwrite=overwrite)
    except (ValidationError, ValueError, DataFormatError, DatasetNotFoundError, ResumeError) as e:
        _fail(brief(e))
    except KeyboardInterrupt:
        _interrupted(f"the same command resumes from {output}'s last checkpoint")
    _print_metrics(doc)
    fit = doc.get("training") or {}
    if fit.get("stopped") == "epochs" and fit.get("best_epoch") == fit.get("epochs"):
        typer.echo(
            f"note: validation still improved in the last epoch ({fit['epochs']}): the epoch limit, not "
            "patience, ended training; more --epochs (a new run, or --overwrite) may do better"
        )
    typer.echo(f"wrote {output / 'metrics.json'}")


@app.command()
@_interruptible("run `temarec demo` again: tags, features and finished runs are reused, training resumes")
def demo(
    output: Annotated[Path, typer.Option(help="where the demo runs are written")] = Path("runs/demo"),
    epochs: Annotated[int, typer.Option(help="maximum epochs per model")] = 20,
    tagger: Annotated[
        str,
        typer.Option(
            help="auto (the local LLM where llama.cpp and its model are installed, else keyphrase), "
            "llamacpp (local SmolLM2), keyphrase (no LLM, fast) or none"
        ),
    ] = "auto",
    refine: Annotated[
        bool, typer.Option("--refine/--no-refine", help="the LLM's self-refinement pass (doubles its time)")
    ] = False,
    seed: int = 0,
) -> None:
    """The whole TEMA-LLM pipeline on the demo world: tags -> features -> train -> evaluate -> explain."""
    from temarec.config import RunConfig
    from temarec.data.demo import generate_demo
    from temarec.features.build import load_item_features
    from temarec.pipeline import choose_demo_tagger, llamacpp_available, tag_catalogue
    from temarec.serving.load import load_run
    from temarec.serving.recommend import explained_recommendations
    from temarec.training.run import check_run_folder, run

    t0 = time.perf_counter()
    ds = generate_demo(seed=0)
    st = ds.stats()
    typer.echo(
        f"demo world: {st['all']['users']:,} users, {st['all']['items']:,} items, "
        f"{st['all']['interactions']:,} interactions in {' + '.join(ds.domains)}"
    )
    tags_source = None
    try:
        tagger, note = choose_demo_tagger(tagger, llamacpp_available)
    except ValueError as e:
        _fail(str(e))
    if note:
        typer.echo(note)
    refine = refine and tagger == "llamacpp"
    if tagger != "none":
        what = (
            "the local LLM SmolLM2-135M (llama.cpp)" + (", with its self-refinement pass" if refine else "")
            if tagger == "llamacpp"
            else "keyphrase extraction (no LLM)"
        )
        typer.echo(f"\n== stage 1: tags from {what}; answers are cached, a rerun is free")
        tags_source, summary = tag_catalogue(ds, tagger, refine=refine, progress=True)
        typer.echo(
            f"tagged {summary['tagged']:,} items ({summary['tags_per_item']:.1f} tags/item), "
            f"{summary['no_text']:,} without text, vocabulary {summary['vocab_size']:,} tags"
        )
        if echo := _echo_note(summary):
            typer.echo(echo)
    base = {
        "data": {"dataset": "demo"},
        "features": {"tags": tags_source or "none"},
        "train": {"seed": seed, "epochs": epochs, "patience": 5},
        "eval": {"protocols": ["full", "uni100"]},
    }
    typer.echo("\n== stage 2: item features (frozen MiniLM text encoder, tag embeddings)")
    cfg_tema = RunConfig.model_validate(base | {"model": {"name": "tema"}})
    feats = load_item_features(ds, cfg_tema.features, progress=True)
    for k, v in feats.describe().items():
        typer.echo(f"  {k}: {v}")
    results = {}
    for name in ("pop", "sasrec", "tema"):
        cfg = RunConfig.model_validate(base | {"model": {"name": name}})
        typer.echo(f"\n== stage 3: train and evaluate {name}")
        # the demo's folders are its own scratch: a rerun with other options starts those runs again
        results[name] = run(
            cfg,
            output / name,
            progress=True,
            dataset=ds,
            overwrite=bool(check_run_folder(output / name, cfg)),
        )
        _print_metrics(results[name])
    typer.echo("\n== comparison (test, full ranking)")
    typer.echo(f"  {'model':<8}" + "".join(f"{d + ' NDCG@10':>16}{d + ' HR@10':>14}" for d in ds.domains))
    for name, doc in results.items():
        cells = "".join(
            f"{doc['test'][d]['NDCG@10']:>16.4f}{doc['test'][d]['HR@10']:>14.4f}" for d in ds.domains
        )
        typer.echo(f"  {name:<8}{cells}")
    typer.echo("\n== stage 4: recommendations from tema, with the tags that link them to the history")
    served = load_run(output / "tema", dataset=ds)
    _print_recommendations(served, explained_recommendations(served, list(ds.user_keys[:3]), k=3))
    typer.echo(f"\ndemo finished in {time.perf_counter() - t0:.0f}s; runs in {output}")


def _print_recommendations(
    run, records: list[dict], n_history: int = 4, histories: list[list[str]] | None = None
) -> None:
    """Per user (or sent history): the latest items, then each domain's recommendations with the tags
    that link them."""
    ds = run.ds
    id_of = run.item_index
    last_user = None
    for rec in records:
        who = ("user", rec["user"]) if "user" in rec else ("history", rec["history"])
        if who != last_user:
            last_user = who
            if "user" in rec:
                typer.echo(f"\nuser {rec['user']}: latest items")
                latest = ds.sequences.row(run.user_index[rec["user"]])[-n_history:]
            else:
                typer.echo(f"\nhistory {rec['history']}: latest items")
                latest = [id_of[x] for x in histories[rec["history"]][-n_history:]] if histories else []
                if rec.get("basis") == "popularity":
                    typer.echo("   (none: the most popular items of the training data follow)")
            for it in latest:
                typer.echo(f"   [{ds.domains[ds.item_domain[it]]}] {run.item_label(int(it))}")
        typer.echo(f"  next in {rec['domain']}:")
        for it in rec["items"]:
            why = "; ".join(
                f"{b['tag']} (like {run.item_label(id_of[b['history_items'][0]])})" for b in it["because"]
            )
            typer.echo(f"    {run.item_label(id_of[it['item']])}" + (f"  <- {why}" if why else ""))


def _load_served(run_dir: Path, dataset: str | None, progress: bool = False):
    """`load_run` for the CLI: a bad run folder or dataset is a clear error and exit code 2."""
    from temarec.data import DataFormatError, DatasetNotFoundError
    from temarec.serving.load import load_run

    try:
        return load_run(run_dir, dataset=_load(dataset) if dataset else None, progress=progress)
    except (ValueError, DataFormatError, DatasetNotFoundError) as e:
        _fail(str(e))


@app.command()
def evaluate(
    run_dir: RunDirArg,
    protocol: Annotated[list[str], typer.Option(help="full, uni999, uni100, uniN; repeat for several")],
    candidate_seed: Annotated[
        int | None,
        typer.Option(
            help="draw the sampled candidates with this seed instead of the run's (files get a suffix)"
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace metrics files that already exist")] = False,
    dataset: RunDatasetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="the metrics documents as JSON on stdout")] = False,
) -> None:
    """Evaluate a finished run's selected checkpoint under other protocols, without retraining."""
    from temarec.data import DataFormatError, DatasetNotFoundError
    from temarec.training.run import evaluate_run

    try:
        docs = evaluate_run(
            run_dir,
            _protocol_names(protocol),
            candidate_seed=candidate_seed,
            dataset=_load(dataset) if dataset else None,
            overwrite=overwrite,
        )
    except (ValueError, DataFormatError, DatasetNotFoundError) as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(docs, indent=2))
        return
    for doc in docs.values():
        _print_metrics(doc)
        if doc["written"]:
            typer.echo(f"wrote {doc['written']}")
        else:
            typer.echo("kept the existing metrics file of this protocol (--overwrite replaces it)")


def _run_group(specs: list[str], option: str) -> list[Path]:
    """Run folders from folder paths or quoted glob patterns (`'runs/x/seed*'`), in a stable order."""
    import glob

    out: list[Path] = []
    for spec in specs:
        hits = sorted(glob.glob(spec)) if glob.has_magic(spec) else [spec]
        if not hits:
            _fail(f"{option} {spec!r}: the pattern matches no folder")
        out += [Path(h) for h in hits]
    return out


@app.command()
def compare(
    a: Annotated[list[str], typer.Option("--a", help="run folder of group A, or a quoted glob; repeatable")],
    b: Annotated[list[str], typer.Option("--b", help="run folder of group B, or a quoted glob; repeatable")],
    protocol: Annotated[
        list[str] | None, typer.Option(help="protocols to compare (default full); repeat for several")
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="HR@k, NDCG@k or MRR (default HR@10, NDCG@10, MRR); repeatable")
    ] = None,
    name_a: Annotated[str, typer.Option(help="label of group A in the table")] = "A",
    name_b: Annotated[str, typer.Option(help="label of group B in the table")] = "B",
    output: Annotated[Path | None, typer.Option(help="also write the result as JSON here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the result as JSON on stdout")] = False,
) -> None:
    """Paired per-user tests between two groups of finished runs (e.g. the seeds of two settings)."""
    from temarec.evaluation.compare import METRICS, compare_runs, markdown
    from temarec.files import atomic_write

    try:
        result = compare_runs(
            _run_group(a, "--a"),
            _run_group(b, "--b"),
            _protocol_names(protocol or ["full"]),
            tuple(metric or METRICS),
        )
    except ValueError as e:
        _fail(str(e))
    result |= {"name_a": name_a, "name_b": name_b}
    if output is not None:
        text = json.dumps(result, indent=2)
        atomic_write(output, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        for w in result["warnings"]:  # the table shows them; JSON on stdout is read by programs
            typer.echo(f"warning: {w}", err=True)
    else:
        typer.echo(markdown(result, name_a, name_b))
    if output is not None:  # on stderr: stdout is the table (or JSON), often redirected to a file
        typer.echo(f"wrote {output}", err=True)


@app.command()
@_interruptible("nothing was written (an --output file is replaced only once it is complete)")
def recommend(
    run_dir: RunDirArg,
    user: Annotated[list[str] | None, typer.Option("--user", help="user key; repeat for several")] = None,
    history: Annotated[
        list[str] | None,
        typer.Option(
            "--history",
            help="comma-separated item keys, oldest first, for someone not in the dataset; repeatable",
        ),
    ] = None,
    k: Annotated[int, typer.Option(help="items per user and domain", min=1)] = 10,
    domain: Annotated[list[str] | None, typer.Option(help="only these domains (default: both)")] = None,
    tags: Annotated[
        int, typer.Option(help="linking tags shown per item (needs a model with tags)", min=0, max=20)
    ] = 3,
    dataset: RunDatasetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document on stdout")] = False,
    all_users: Annotated[
        bool, typer.Option("--all-users", help="every user of the dataset (needs --output)")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(help="write JSON lines here (one record per user and domain; .gz compresses)"),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="users ranked at once when writing --output")] = 1024,
) -> None:
    """Top-k next items per domain for given users (or histories) from a trained run, with the tags
    that explain them; `--all-users --output FILE` exports every user's."""
    from temarec.serving.recommend import (
        explained_recommendations,
        explained_recommendations_for_histories,
        export_recommendations,
    )

    if all_users and user:
        _fail("give either --all-users or --user, not both")
    if all_users and output is None:
        _fail("--all-users writes a file: add --output FILE.jsonl")
    if output is not None and history:
        _fail("--output exports dataset users (--user or --all-users); --history prints to the terminal")
    if not user and not history and not all_users:
        _fail("give at least one --user KEY or --history ITEM,ITEM,..., or --all-users --output FILE")
    if output is not None and as_json:
        _fail("--output writes JSON lines to a file; --json prints one document: give one of them")
    if output is not None and output.is_dir():  # found now, not after ranking every user
        _fail(f"--output {output} is a folder; give a file name, e.g. {output / 'recs.jsonl.gz'}")
    user = [u.strip() for u in user] if user else user
    served = _load_served(run_dir, dataset)
    if output is not None:
        try:
            n = export_recommendations(
                served, output, k=k, domains=domain, n_tags=tags, users=user, batch_size=batch_size
            )
        except (ValueError, OSError) as e:
            _fail(str(e))
        typer.echo(f"wrote {output}: {n:,} records")
        return
    histories = [[x.strip() for x in h.split(",") if x.strip()] for h in history or []]
    try:
        records = explained_recommendations(served, user, k=k, domains=domain, n_tags=tags) if user else []
        if histories:
            records += explained_recommendations_for_histories(
                served, histories, k=k, domains=domain, n_tags=tags
            )
    except ValueError as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    else:
        _print_recommendations(served, records, histories=histories)


@app.command()
def serve(
    run_dir: RunDirArg,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port", min=0, max=65535)] = 8000,
    dataset: RunDatasetOpt = None,
    api_key_env: Annotated[
        str,
        typer.Option(
            help="environment variable holding the API key; when it is set, /recommend needs "
            "'Authorization: Bearer <key>' (a key on the command line would show in the process list)"
        ),
    ] = "TEMAREC_API_KEY",
) -> None:
    """Serve explained recommendations over HTTP: GET /recommend/{user}, POST /recommend, GET /health."""
    try:
        import uvicorn

        from temarec.serving.api import create_app
    except ImportError as e:
        _fail(f"serving needs FastAPI and uvicorn ({e.name} is missing): pip install 'temarec[serve]'")
    raw_key = os.environ.get(api_key_env)
    if raw_key is not None and not raw_key.strip():  # not silently "no key": that would open the server
        _fail(f"${api_key_env} is set but blank; give it a key, or unset it to serve without one")
    key = raw_key.strip() if raw_key else None
    served = _load_served(run_dir, dataset, progress=True)
    typer.echo(
        f"serving {served.cfg.model.name} on {served.ds.name} from {run_dir}: http://{host}:{port}/docs "
        + (f"(API key from ${api_key_env})" if key else f"(no API key: ${api_key_env} is not set)")
    )
    if key is None and host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"warning: listening on {host} without an API key; anyone who can reach it can query it "
            f"(set ${api_key_env})",
            err=True,
        )
    uvicorn.run(create_app(served, api_key=key), host=host, port=port)


@app.command()
def bench(
    config: Annotated[str, typer.Argument(help="'quick', 'paper', or a bench YAML file")],
    output: Annotated[
        Path | None, typer.Option(help="root of run folders and reports (default: config's)")
    ] = None,
    jobs: Annotated[int | None, typer.Option(help="cells in parallel (default: config's)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list cells and their state, run nothing")
    ] = False,
    only_report: Annotated[
        bool, typer.Option("--only-report", help="rebuild the reports from finished cells, run nothing")
    ] = False,
    rerun_stale: Annotated[
        bool, typer.Option("--rerun-stale", help="delete and rerun cells whose config.json differs")
    ] = False,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            help="only cells whose dataset/variant/seedN contains this ('d/tema/': tema only); repeatable",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override for every cell, applied last, e.g. model.softmax_negatives=0"),
    ] = None,
) -> None:
    """Run a benchmark grid (finished cells are skipped) and write OUTPUT/<dataset>.json and .md."""
    from temarec.bench.config import BenchConfigError, flatten_overrides, load_bench_config
    from temarec.bench.runner import run_bench
    from temarec.config import parse_override

    if jobs is not None and jobs < 1:
        _fail("--jobs must be >= 1")
    try:
        cfg = load_bench_config(config)
    except BenchConfigError as e:
        _fail(str(e))
    if set_:
        try:
            pairs = dict(parse_override(item) for item in set_)
            cfg.overrides = {**cfg.overrides, **flatten_overrides(pairs, "--set")}
        except ValueError as e:
            _fail(str(e))
    try:
        code = run_bench(
            cfg,
            output=output,
            jobs=jobs,
            dry_run=dry_run,
            only_report=only_report,
            rerun_stale=rerun_stale,
            only=filter_,
        )
    except KeyboardInterrupt:
        _interrupted("run the same command again to resume (finished cells are kept)")
    if code:
        raise typer.Exit(code)


@app.command()
def tag(
    dataset: Annotated[str, typer.Option(help="dataset name, folder or 'demo'")],
    backend: Annotated[str, typer.Option(help="llamacpp, openai, file or keyphrase")],
    model: Annotated[
        str | None,
        typer.Option(
            help="llamacpp: GGUF path (default SmolLM2-135M); openai: model name; keyphrase: encoder"
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="openai: server URL, e.g. http://127.0.0.1:8000/v1")
    ] = None,
    tags_file: Annotated[Path | None, typer.Option(help="file: JSON of item id -> list of tags")] = None,
    id_space: Annotated[
        str, typer.Option(help="file: ids are the dataset's 'key' or temarec 'item_id'")
    ] = "key",
    refine: Annotated[
        bool, typer.Option("--refine/--no-refine", help="a self-refinement pass (LLMs)")
    ] = False,
    shard: Annotated[str, typer.Option(help="i/n: tag only this shard of the catalogue")] = "0/1",
    limit: Annotated[int | None, typer.Option(help="at most N items (a trial run)")] = None,
    sample: Annotated[int | None, typer.Option(help="a seeded random sample of N items")] = None,
    sample_seed: Annotated[int, typer.Option(help="seed of --sample")] = 0,
    concurrency: Annotated[int, typer.Option(help="openai: requests in flight")] = 4,
    max_rps: Annotated[
        float | None,
        typer.Option(help="openai: at most this many requests per second (a hosted API's rate limit)"),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="llamacpp/keyphrase: CPU threads")] = None,
    prompts: Annotated[Path | None, typer.Option(help="YAML prompt set (default: built-in v1)")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="LLM answer length limit")] = None,
    timeout: Annotated[float | None, typer.Option(help="openai: seconds per request")] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="items per backend call and cache commit")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option(help="ask again for items whose stored answer failed")
    ] = False,
    keep_example_tags: Annotated[
        bool,
        typer.Option(
            help="LLMs: keep tags copied from the prompt's worked examples (their tags or pieces of "
            "their items' text) that the item's text does not support (dropped by default; the cached "
            "answers keep them either way)"
        ),
    ] = False,
    cache: Annotated[
        Path | None, typer.Option(help="SQLite cache (default ARTIFACTS/tags/DATASET/cache.sqlite)")
    ] = None,
    merge_cache: Annotated[
        list[Path] | None, typer.Option(help="first merge these caches (shards tagged elsewhere)")
    ] = None,
    source_name: Annotated[str | None, typer.Option(help="name of this tag source (output folder)")] = None,
    output: Annotated[
        Path | None, typer.Option(help="folder (default ARTIFACTS/tags/DATASET/SOURCE)")
    ] = None,
    vocab: Annotated[
        bool,
        typer.Option(
            "--vocab/--no-vocab",
            help="build the tag vocabulary (--no-vocab removes one already in the output folder: it would "
            "not match the new tags)",
        ),
    ] = True,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="llamacpp/keyphrase: processes tagging shards at once, sharing the cache "
            "(--threads each, default 1)"
        ),
    ] = 1,
) -> None:
    """Tag every item (resumable: answers are cached), then build the tag vocabulary."""
    import sqlite3

    from temarec.pipeline import tag_folder
    from temarec.settings import slug, tags_root
    from temarec.tagging import BACKENDS, BackendFatalError, get_backend
    from temarec.tagging.cache import TagCache
    from temarec.tagging.runner import TagRunOptions, parse_shard, shard_output, tag_dataset, write_tag_source

    if backend not in BACKENDS:
        _fail(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    try:
        shard_t = parse_shard(shard)
    except ValueError as e:
        _fail(str(e))
    for name, val in (
        ("limit", limit),
        ("sample", sample),
        ("concurrency", concurrency),
        ("threads", threads),
        ("workers", workers),
    ):
        if val is not None and val < 1:
            _fail(f"--{name} must be >= 1")
    if max_rps is not None and not max_rps > 0:
        _fail("--max-rps must be > 0")
    if workers > 1:
        if backend not in ("llamacpp", "keyphrase"):
            _fail(
                f"--workers is for the local backends (llamacpp, keyphrase); {backend}: "
                + ("use --concurrency" if backend == "openai" else "nothing to run in parallel")
            )
        if shard_t[1] > 1 or limit is not None:
            _fail("--workers splits the catalogue itself: not with --shard or --limit")
        threads = threads or 1
    ds = _load(dataset)
    prompt_set = None
    if prompts is not None:
        from temarec.tagging.prompts import PromptSet

        try:
            prompt_set = PromptSet.from_yaml(prompts)
        except (OSError, ValueError) as e:
            _fail(str(e))
    if backend == "llamacpp":
        opts = dict(model_path=model, n_threads=threads or 2, prompts=prompt_set, max_tokens=max_tokens)
        default_source = "llamacpp-" + (slug(Path(model).stem) if model else "smollm2-135m")
    elif backend == "openai":
        opts = dict(
            base_url=base_url,
            model=model,
            concurrency=concurrency,
            max_rps=max_rps,
            timeout=timeout,
            prompts=prompt_set,
            max_tokens=max_tokens,
        )
        default_source = "openai-" + slug(model or "server")
    elif backend == "file":
        if tags_file is None:
            _fail("--backend file needs --tags-file PATH")
        opts = dict(path=tags_file, id_space=id_space)
        default_source = "file-" + slug(tags_file.stem)
    else:
        opts = {}
        if model:
            from temarec.features.text_encoder import TextEncoderError, load_text_encoder

            try:
                opts["encoder"] = load_text_encoder(model)
            except TextEncoderError as e:
                _fail(str(e))
        default_source = "keyphrase"
    if threads and backend != "llamacpp":
        import torch

        torch.set_num_threads(threads)
    if refine and backend in ("file", "keyphrase"):
        typer.echo(f"note: --refine has no effect with the {backend} backend")
        refine = False
    source = source_name or default_source + ("-refined" if refine else "")
    if sample is not None:
        source += f"-sample{sample}-seed{sample_seed}"
    if limit is not None:
        source += f"-limit{limit}"
    out_dir = output or tag_folder(ds, source)
    if shard_t[1] > 1:
        out_dir = shard_output(out_dir, shard_t)
    cache_path = cache or tags_root(ds.name) / "cache.sqlite"
    run_opts = TagRunOptions(
        refine=refine,
        shard=shard_t,
        sample=sample,
        sample_seed=sample_seed,
        limit=limit,
        batch_size=batch_size
        or (max(16, 4 * concurrency) if backend == "openai" else 64 if backend != "llamacpp" else 8),
        retry_failed=retry_failed,
        drop_example_echo=not keep_example_tags,
        progress=not quiet,
    )
    worker_args = [
        *("--dataset", dataset, "--backend", backend, "--cache", str(cache_path), "--output", str(out_dir)),
        *("--threads", str(threads or 1), "--batch-size", str(run_opts.batch_size)),
        *(("--model", model) if model else ()),
        *(("--refine",) if refine else ()),
        *(("--sample", str(sample), "--sample-seed", str(sample_seed)) if sample is not None else ()),
        *(("--prompts", str(prompts)) if prompts else ()),
        *(("--max-tokens", str(max_tokens)) if max_tokens else ()),
        *(("--retry-failed",) if retry_failed else ()),
        *(("--keep-example-tags",) if keep_example_tags else ()),
    ]
    t0 = time.perf_counter()
    try:
        be = get_backend(backend, **opts)
        if backend == "file":
            unknown = be.require_overlap(zip(ds.items.index, ds.items["key"], strict=True))
            if unknown:
                typer.echo(
                    f"note: {len(unknown):,} of the {len(be.data):,} ids in {be.path.name} name no item of "
                    f"{ds.name} (e.g. {unknown[0]!r}); they are ignored"
                )
    except (BackendFatalError, ImportError, ValueError) as e:
        _fail(str(e))
    by_workers: dict | None = None
    try:
        with TagCache(cache_path) as store:
            for other in merge_cache or []:
                try:
                    added = store.merge_from(other)
                except (OSError, sqlite3.Error) as e:  # absent, or not a tag cache
                    _fail(f"cannot merge {other}: {e}")
                typer.echo(f"merged {added:,} answers from {other}")
            if workers > 1:
                by_workers = _tag_with_workers(ds, be, store, run_opts, workers, out_dir, worker_args)
            res = tag_dataset(ds, be, store, run_opts)
    except BackendFatalError as e:
        _fail(f"{e} (any answers received before it are kept in {cache_path})")
    except KeyboardInterrupt:
        _interrupted(
            f"the answers so far are kept in {cache_path}; the same command goes on from there "
            f"({out_dir} is unchanged)"
        )
    finally:
        be.close()
    st = res.summary
    st["dataset"] = ds.name
    st["source"] = source
    st["cache"] = str(cache_path)
    if by_workers is not None:  # the pass above only read what the workers wrote
        st["workers"] = by_workers
    t_voc = time.perf_counter()
    had_vocab = (out_dir / "vocab.json").is_file()
    voc = write_tag_source(res, ds, out_dir, source, vocab=vocab and shard_t[1] == 1, progress=not quiet)
    n_vocab = None if voc is None else len(voc)
    if had_vocab and voc is None:
        typer.echo(f"removed the previous tag vocabulary of {out_dir}: it was built from other tags")
    if voc is not None:
        st["vocab_size"] = n_vocab
        st["vocab_seconds"] = round(time.perf_counter() - t_voc, 1)
    if shard_t[1] > 1:
        typer.echo(
            "shard run: no vocabulary; merge the shards' caches with --merge-cache and rerun without --shard"
        )
    (out_dir / "summary.json").write_text(json.dumps(st, indent=2))
    gen = st["generate"]
    asked = "look-ups in the file" if backend == "file" else "model calls"  # the file backend has no model
    typer.echo(
        f"{ds.name} / {source}: {st['selected']:,} items selected, {st['no_text']:,} without text, "
        f"{gen['cached']:,} cached, {st['model_calls']:,} {asked}"
    )
    typer.echo(
        f"tagged {st['tagged']:,} items ({st['tags_per_item']:.2f} tags/item), failed {st['failed']:,}"
    )
    for reason, n in st["failed_by_reason"].items():
        example = st["failed_example"].get(reason)
        typer.echo(f"  failed {reason}: {n:,}" + (f" (e.g. {example})" if example else ""))
    if echo := _echo_note(st):
        typer.echo(echo + "; --keep-example-tags keeps them")
    if st.get("refine_pass"):
        rp = st["refine_pass"]
        typer.echo(
            f"refine pass: {rp['cached']:,} cached, {rp['asked']:,} asked, {rp['ok']:,} revised, "
            f"{rp['failed']:,} kept their first tags"
        )
    ips = f"{st['items_per_s']:.2f} items/s" if st["items_per_s"] else "nothing asked"
    if backend == "file" and st["items_per_s"]:
        ips = "imported"  # a dictionary look-up rate says nothing
    if by_workers is not None and by_workers["items_per_s"]:
        ips = f"{by_workers['workers']} workers: {by_workers['items_per_s']:.2f} items/s"
    typer.echo(
        f"time {time.perf_counter() - t0:.1f}s ({ips})"
        + (f"; vocabulary {n_vocab:,} tags" if n_vocab else "")
    )
    if n_vocab == 0:
        from temarec.tagging.normalize import MAX_CHARS, MAX_WORDS

        typer.echo(
            f"warning: the vocabulary is empty: none of the {voc.meta['n_raw_tags']:,} tags survived (a tag "
            f"needs a letter, at most {MAX_WORDS} words and {MAX_CHARS} characters, is not a placeholder "
            f"such as 'n/a', and must be given to at least {voc.meta['min_count']} items); features will "
            "have no tags from this source",
            err=True,
        )
    typer.echo(f"wrote {out_dir}")
    if st["tagged"] == 0 and st["selected"] > st["no_text"] and shard_t[1] == 1:
        # every item with text failed: a broken server or model, not a result (the answers are cached,
        # and transient failures are asked again on the next run). Not for a shard: it has no vocabulary
        # anyway, and under --workers its exit code would stop the other shards.
        typer.secho(
            f"error: no item got tags ({st['failed']:,} failed; reasons above), so {out_dir} has no "
            "vocabulary",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)


def _echo_note(summary: dict) -> str:
    """What the example-echo guard dropped, or '' when it dropped nothing (or did not run)."""
    ec = summary.get("example_echo")
    if not ec or not ec["tags_dropped"]:
        return ""
    return (
        f"dropped {ec['tags_dropped']:,} tags copied from the prompt's examples on "
        f"{ec['items_with_echo']:,} items ({ec['items_left_without_tags']:,} left without tags)"
    )


def _tag_with_workers(ds, be, store, run_opts, workers: int, out_dir: Path, args: list[str]) -> dict | None:
    """Shards tagged by `workers` processes into the shared cache; the caller's pass then reads it.
    Returns what they did (`None` when nothing was left to ask)."""
    from temarec.tagging.runner import backend_prompt_identity, pending, shard_output
    from temarec.tagging.workers import WorkerError, run_workers

    todo = pending(ds, be, store, run_opts)
    if todo == 0:
        return None
    ident, prompt = be.identity, backend_prompt_identity(be)
    before = store.count(ident, prompt, "generate")
    typer.echo(f"{todo:,} items to tag with {workers} workers (logs in {out_dir / 'workers'})")
    t0 = time.perf_counter()
    try:
        run_workers(
            args,
            workers,
            out_dir / "workers",
            done=lambda: store.count(ident, prompt, "generate") - before,
            total=todo,
            progress=run_opts.progress,
        )
    except WorkerError as e:
        _fail(f"{e} (answers so far are cached in {store.path}; rerun the command to resume)")
    seconds = time.perf_counter() - t0
    for i in range(workers):  # each shard's tags.jsonl is in the cache, and in the whole set written next
        shutil.rmtree(shard_output(out_dir, (i, workers)), ignore_errors=True)
    asked = store.count(ident, prompt, "generate") - before
    return {
        "workers": workers,
        "items": asked,
        "seconds": round(seconds, 1),
        "items_per_s": round(asked / seconds, 3) if seconds > 0 else None,
    }


def _register_features() -> None:
    from temarec.features.cli import features_command

    app.command("features", help="Build (or load from cache) item text, tag and image features.")(
        features_command
    )


_register_features()


def _terminated(signum: int, _frame: object) -> None:
    """SIGTERM (`kill`, a job scheduler's time limit) as an exception, so that `finally` blocks run:
    half-written `*.tmp` files are removed and the last checkpoint stays whole, as on Ctrl-C."""
    raise SystemExit(128 + signum)


def main(prog_name: str | None = None) -> None:
    """The `temarec` command (console script and `python -m temarec`)."""
    signal.signal(signal.SIGTERM, _terminated)
    app(prog_name=prog_name)


if __name__ == "__main__":
    main()
