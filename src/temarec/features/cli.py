"""`temarec features --dataset DATASET`: build (or find in the cache) the item features a `tema` run reads.

Registered by the main CLI with `app.command("features")(features_command)`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer


def features_command(
    dataset: Annotated[str | None, typer.Option(help="dataset name, folder or 'demo'")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML config file (its features section)")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override, e.g. features.tags=keyphrase")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Text, tag and image features of every item, cached by content so a rerun is free."""
    from pydantic import ValidationError

    from temarec.config import brief, load_config
    from temarec.data import DataFormatError, DatasetNotFoundError, load_dataset
    from temarec.features.build import build_item_features
    from temarec.features.image import ImageFeatureError
    from temarec.features.text_encoder import TextEncoderError
    from temarec.tagging.vocab import TagVocabError

    overrides = list(set_ or [])
    if dataset is not None:
        overrides.append(f"data.dataset={dataset}")
    t0 = time.perf_counter()
    try:
        cfg = load_config(config, overrides)
        ds = load_dataset(cfg.data.dataset, demo_seed=cfg.data.demo_seed)
        feats, report = build_item_features(ds, cfg.features, progress=not quiet)
    except (
        ValidationError,
        ValueError,  # includes ImageFeatureError and TagVocabError
        DataFormatError,
        DatasetNotFoundError,
        TextEncoderError,
        ImageFeatureError,
        TagVocabError,
    ) as e:
        typer.secho(f"error: {brief(e)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    seconds = round(time.perf_counter() - t0, 2)
    if as_json:
        doc = {"dataset": ds.name, "features": feats.describe(), "build": report.modalities}
        typer.echo(json.dumps({**doc, "seconds": seconds}, indent=2, default=str))
        return
    typer.echo(f"{ds.name}: {ds.n_items:,} items")
    for name, value in feats.describe().items():  # the features, then how this build got them
        shown = ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value
        typer.echo(f"  {name}: {shown}")
    for line in report.lines():
        typer.echo(line)
    typer.echo(f"done in {seconds:.1f}s")
