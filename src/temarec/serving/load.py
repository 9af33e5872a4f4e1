"""Load a finished training run (config, data, features, best weights) to recommend from it.

A run folder written by `temarec train` holds `config.json` and, for trained models, `best.safetensors`.
The model is rebuilt from the config, refitted on the same training split for the statistics that are
not weights (popularity, which items were seen in training) and given the selected weights; nothing is
unpickled.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError
from safetensors import SafetensorError

from temarec.config import RunConfig, upgrade_stored_config
from temarec.data.dataset import CDDataset
from temarec.data.registry import load_dataset
from temarec.data.splits import Split, get_split
from temarec.features.item_features import ItemFeatures
from temarec.models import build_model
from temarec.models.base import RecModel
from temarec.training.run import features_for, run_fingerprint
from temarec.training.trainer import BEST, CHECKPOINT, load_weights

log = logging.getLogger(__name__)


class RunLoadError(ValueError):
    """A run folder that cannot be served from; the message names the file and what is wrong."""


@dataclass
class LoadedRun:
    path: Path
    cfg: RunConfig
    ds: CDDataset
    split: Split  # the run's split: its training part fitted the model's statistics
    model: RecModel
    features: ItemFeatures | None

    # lookups a served request needs, built once per loaded run rather than per request
    @cached_property
    def user_index(self) -> dict[str, int]:
        """User key -> row of `ds.sequences`."""
        return {str(k): i for i, k in enumerate(self.ds.user_keys)}

    @cached_property
    def item_keys(self) -> np.ndarray:
        """Item key (str) by global item id (index 0: padding, empty)."""
        return np.concatenate([[""], self.ds.items["key"].astype(str).to_numpy()]).astype(object)

    @cached_property
    def item_index(self) -> dict[str, int]:
        """Item key -> global item id (the inverse of `item_keys`)."""
        return {k: i for i, k in enumerate(self.item_keys) if i > 0}

    @cached_property
    def item_titles(self) -> np.ndarray:
        """Item title by global item id; None where an item has no (or a blank) title."""
        t = self.ds.items["title"].astype("string").str.strip()
        t = t.where(t.str.len() > 0)
        return np.concatenate([[None], t.astype(object).where(t.notna(), None).to_numpy()])

    @cached_property
    def popularity(self) -> np.ndarray:
        """Interactions per global item id in the run's training data (the `pop` baseline's scores): the
        ranking for an empty history, on which a sequential model has nothing to condition."""
        from temarec.models.pop import item_popularity

        return item_popularity(self.split.train, self.ds.info().n_items)

    def item_label(self, item: int) -> str:
        """The item's title, or its key where it has none (for printing)."""
        return self.item_titles[item] or f"(no title: item {self.item_keys[item]})"


def read_run_config(path: Path) -> RunConfig:
    """The validated `config.json` of a run folder."""
    f = Path(path) / "config.json"
    if not f.is_file():
        raise RunLoadError(f"{f}: not found; is {path} a run folder written by `temarec train`?")
    try:
        raw = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RunLoadError(f"{f}:{e.lineno}: not valid JSON ({e.msg})") from None
    if isinstance(raw, dict):
        raw = upgrade_stored_config(raw)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise RunLoadError(f"{f}: field '{field}': {err['msg']}") from None


def _check_same_data(path: Path, ds: CDDataset, cfg: RunConfig) -> dict:
    """The data must be what the run was trained on: an edited catalogue or config can keep the item
    count (so the weights load) and still serve other users' histories. A finished run's `metrics.json`
    records it; an unfinished run's checkpoint carries a fingerprint of its settings and data. Returns
    what the run was trained on (for `_check_same_tags`)."""
    f = path / "metrics.json"
    if f.is_file():
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            trained_on, trained_name = doc.get("data_fingerprint"), doc.get("dataset")
            tags = ((doc.get("features") or {}).get("tags") or {}).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            return {}  # an unreadable metrics file says nothing about the data; the weights are checked below
        if trained_on and trained_on != ds.fingerprint():
            # run(cfg, dataset=obj) trains on an object that config.json cannot name
            given = "a run trained from a dataset object given to run(..., dataset=...) loads with the same "
            given += "object: load_run(path, dataset=...)"
            hint = f"the dataset, or the run's config.json, changed since; or {given}"
            if trained_name and trained_name != ds.name:
                hint = f"it was trained on {trained_name!r}; {given}"
            raise RunLoadError(
                f"{path} was trained on other data than {ds.name!r} is now (data fingerprint {trained_on} "
                f"in metrics.json, {ds.fingerprint()} now; it covers the name, item domains and sequences): "
                f"{hint}"
            )
        return {"tags": tags, "where": f}
    ckpt = path / CHECKPOINT
    if not ckpt.is_file():
        return {}
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged checkpoint: the weights file is checked below
        log.warning("%s: unreadable (%s); the run's data cannot be checked", ckpt, type(e).__name__)
        return {}
    if state.get("fingerprint") != run_fingerprint(cfg, ds):
        raise RunLoadError(
            f"{ckpt}: this unfinished run was trained on other data than {ds.name!r} is now, or with other "
            "settings than its config.json says (the checkpoint's fingerprint differs); its weights would "
            "score the wrong items"
        )
    return {"tags": state.get("tags_fingerprint") or None, "where": ckpt}


def _check_same_tags(path: Path, trained: dict, features: ItemFeatures | None) -> None:
    """The tag vocabulary must be the one the run was trained with: re-tagging into the same source
    keeps the model's shapes only when the vocabulary size does, and then gives items other tags."""
    want = trained.get("tags")
    have = features.tag_fingerprint if features is not None else None
    if want and want != have:
        raise RunLoadError(
            f"{path} was trained with another tag vocabulary (fingerprint {want} in {trained['where'].name}, "
            f"{have or 'no tags'} now): the source was re-tagged since, or features.tags=auto now picks "
            "another source (then name the trained one in its config.json); else retrain the run, or "
            "restore its tags"
        )


def load_run(path: str | Path, dataset: CDDataset | None = None, progress: bool = False) -> LoadedRun:
    """The run's model with its selected weights, in eval mode, with the data and features it reads.

    `dataset` replaces the one named in the config (e.g. when the run was trained from a relative path);
    it must be the same catalogue, or the weights will not fit.
    """
    path = Path(path)
    cfg = read_run_config(path)
    ds = dataset if dataset is not None else load_dataset(cfg.data.dataset, demo_seed=cfg.data.demo_seed)
    trained = _check_same_data(path, ds, cfg)
    split = get_split(ds, cfg.data.split)
    features = features_for(ds, cfg, progress)
    _check_same_tags(path, trained, features)
    model = build_model(ds.info(), cfg.model, cfg.data.max_len, features=features)
    model.fit_static(split.train)
    if model.trainable:
        best = path / BEST
        if not best.is_file():
            why = (
                "the run finished (its metrics.json is there) but its weights are not in this copy "
                "(checkpoints are not committed with results); retrain it to serve it"
                if (path / "metrics.json").is_file()
                else "the run has not finished a validated epoch yet"
            )
            raise RunLoadError(f"{best}: not found; {why}")
        try:
            load_weights(model, best)
        except SafetensorError as e:  # the file itself: not a safetensors file, or cut short
            raise RunLoadError(
                f"{best}: corrupt or truncated ({str(e).strip()[:200]}); retrain the run"
            ) from None
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise RunLoadError(
                f"{best}: does not fit the model that {path / 'config.json'} describes on dataset "
                f"{ds.name!r} (another catalogue or temarec version?): {first}"
            ) from None
    model.eval()
    return LoadedRun(path, cfg, ds, split, model, features)
