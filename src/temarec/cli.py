"""The `temarec` command line: a thin layer over the Python API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="temarec: cross-domain sequential recommendation with LLM tags.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect, export and import datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


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
) -> None:
    """Write a dataset (e.g. 'demo') as canonical items + interactions files."""
    from temarec.data.canonical import write_canonical

    write_canonical(_load(dataset), out, fmt=fmt)
    typer.echo(f"wrote {out}")


@data_app.command("import-amazon")
def data_import_amazon(
    a_reviews: Annotated[Path, typer.Option(help="domain A reviews JSON lines (.json or .json.gz)")],
    b_reviews: Annotated[Path, typer.Option(help="domain B reviews JSON lines")],
    out: Annotated[Path, typer.Option(help="folder for the canonical files")],
    a_meta: Annotated[Path | None, typer.Option(help="domain A metadata JSON lines")] = None,
    b_meta: Annotated[Path | None, typer.Option(help="domain B metadata JSON lines")] = None,
    a_name: str = "A",
    b_name: str = "B",
    k_core: int = 5,
    min_per_domain: int = 1,
    max_len: Annotated[int | None, typer.Option(help="keep the latest N interactions per user")] = None,
    fmt: Annotated[str, typer.Option("--format")] = "parquet",
) -> None:
    """Import raw Amazon reviews + metadata (2014 or 2018 schema) of two categories."""
    from temarec.data.amazon_raw import AmazonSource, import_amazon
    from temarec.data.canonical import write_canonical

    ds = import_amazon(
        AmazonSource(name=a_name, reviews=a_reviews, meta=a_meta),
        AmazonSource(name=b_name, reviews=b_reviews, meta=b_meta),
        k_core=k_core,
        min_per_domain=min_per_domain,
        max_len=max_len,
        name=out.name,
    )
    write_canonical(ds, out, fmt=fmt)
    typer.echo(f"wrote {out}: {ds.n_users:,} users, {ds.n_items:,} items")


def _print_metrics(doc: dict) -> None:
    cols = ["HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR"]
    typer.echo(f"test ({doc['protocol']}, seed {doc['seed']}):")
    typer.echo(f"  {'domain':<10}" + "".join(f"{c:>9}" for c in cols))
    for dom, m in doc["test"].items():
        typer.echo(f"  {dom:<10}" + "".join(f"{m[c]:>9.4f}" for c in cols))


@app.command()
def train(
    dataset: Annotated[str | None, typer.Option(help="dataset name, folder or 'demo'")] = None,
    model: Annotated[str | None, typer.Option(help="pop, gru4rec, sasrec, sasrec-single")] = None,
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
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. model.hidden=128")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
) -> None:
    """Train (nothing to train for pop), select on validation, evaluate test, write OUTPUT/metrics.json."""
    from pydantic import ValidationError

    from temarec.config import load_config
    from temarec.data import DataFormatError, DatasetNotFoundError
    from temarec.training.run import run

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
        overrides.append("eval.protocols=[" + ",".join(p for arg in protocol for p in arg.split(",")) + "]")
    try:
        cfg = load_config(config, overrides)
        doc = run(cfg, output, progress=not quiet)
    except (ValidationError, ValueError, DataFormatError, DatasetNotFoundError) as e:
        _fail(str(e))
    _print_metrics(doc)
    typer.echo(f"wrote {output / 'metrics.json'}")


@app.command()
def demo(
    output: Annotated[Path, typer.Option(help="where the demo runs are written")] = Path("runs/demo"),
    epochs: Annotated[int, typer.Option(help="maximum epochs per model")] = 30,
    seed: int = 0,
) -> None:
    """The main job on the built-in demo world: data -> train -> evaluate -> recommendations."""
    import numpy as np

    from temarec.config import RunConfig
    from temarec.data.demo import generate_demo
    from temarec.models import build_model
    from temarec.serving.recommend import recommend
    from temarec.training.run import run
    from temarec.training.trainer import BEST, load_weights

    t0 = time.perf_counter()
    ds = generate_demo(seed=0)
    st = ds.stats()
    typer.echo(
        f"demo world: {st['all']['users']:,} users, {st['all']['items']:,} items, "
        f"{st['all']['interactions']:,} interactions in {' + '.join(ds.domains)}"
    )
    results = {}
    for name in ("pop", "sasrec"):
        cfg = RunConfig.model_validate(
            {
                "data": {"dataset": "demo"},
                "model": {"name": name},
                "train": {"seed": seed, "epochs": epochs, "patience": 5},
                "eval": {"protocols": ["full", "uni100"]},
            }
        )
        typer.echo(f"\n== {name}")
        results[name] = run(cfg, output / name, progress=True, dataset=ds)
        _print_metrics(results[name])
    model = build_model(ds.info(), RunConfig().model.model_copy(update={"name": "sasrec"}), 50)
    load_weights(model, output / "sasrec" / BEST)
    users = np.arange(3)
    titles = ds.items["title"].fillna("(no title)")
    for u in users:
        typer.echo(f"\nuser {ds.user_keys[u]}: latest purchases")
        for it in ds.sequences.row(u)[-4:]:
            typer.echo(f"   [{ds.domains[ds.item_domain[it]]}] {titles[it]}")
        for d, dname in enumerate(ds.domains):
            ids, _ = recommend(model, ds, np.asarray([u]), d, k=3)
            typer.echo(f"  next in {dname}: " + " | ".join(str(titles[i]) for i in ids[0]))
    typer.echo(f"\ndemo finished in {time.perf_counter() - t0:.0f}s; runs in {output}")


if __name__ == "__main__":
    app()
