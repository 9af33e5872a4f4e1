"""Typed configuration, loadable from YAML and overridable with `section.key=value` pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


def did_you_mean(word: str, choices) -> str:  # noqa: ANN001 - any iterable of names
    """` (did you mean 'x'?)` for the closest of `choices`, or '' when none is close."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def brief(e: Exception, prefix: str = "") -> str:
    """An error as one line for the command line; pydantic's as `field 'a.b': message`, without its
    echo of the whole input and its documentation link."""
    if not isinstance(e, ValidationError):
        return str(e)
    parts = []
    for err in e.errors():
        loc = (prefix + ".".join(str(x) for x in err["loc"])).rstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting" + _known_settings(e.title, [str(x) for x in err["loc"]])
        parts.append(f"field '{loc}': {msg}" if loc else msg)
    return "; ".join(parts)


def _known_settings(model_name: str, loc: list[str]) -> str:
    """For an unknown key at `loc` of the config model named `model_name`: the closest known key, else
    the known keys there (a `--set trian.epochs=1` typo said only 'Extra inputs are not permitted')."""

    import difflib

    def models(cls: type) -> list[type]:
        return [cls, *(m for sub in cls.__subclasses__() for m in models(sub))]

    cls = next((m for m in models(BaseModel) if m.__name__ == model_name), None)
    for part in loc[:-1]:
        field = cls.model_fields.get(part) if cls is not None else None
        ann = field.annotation if field is not None else None
        cls = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    if cls is None:
        return ""
    names = list(cls.model_fields)
    close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {'.'.join([*loc[:-1], close[0]])!r}?)"
    return f" (known here: {', '.join(names)})"


class _NoDuplicateKeys(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping: plain YAML keeps the last silently,
    so `lr: 0.01` a few lines above `lr: 0.001` would train with a value the reader did not see."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001 - PyYAML's signature
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: let PyYAML say so
                break
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"key {key!r} is given twice (first on line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str):  # noqa: ANN201 - any YAML value
    """`yaml.safe_load`, but a key given twice in one mapping is an error (`yaml.YAMLError`)."""
    return yaml.load(text, Loader=_NoDuplicateKeys)  # noqa: S506 - a SafeLoader subclass


def yaml_error(path: str | Path, e: yaml.YAMLError) -> str:
    """`path:line: not valid YAML: problem` (the line where the parser found it, when it says)."""
    mark = getattr(e, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    return f"{where}: not valid YAML: {getattr(e, 'problem', None) or e}"


#: numpy's and torch's seeds are unsigned 32-bit
SEED_MAX = 2**32 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    dataset: str = "demo"  # a name under TEMAREC_DATA, a folder, or "demo"
    split: Literal["auto", "loo", "published"] = "auto"
    max_len: int = Field(50, ge=2, description="most recent interactions a model reads")
    demo_seed: int = 0


#: temarec's own models (`temarec.models.BUILTIN_MODELS` is the same set, checked by a test); their
#: settings are ModelConfig's fields, `model.params` is for models of your own
BUILTIN_MODEL_NAMES = frozenset({"pop", "gru4rec", "sasrec", "sasrec-single", "tema", "c2dsr"})


class ModelConfig(_Strict):
    name: str = "sasrec"
    hidden: int = Field(64, ge=4)
    layers: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    softmax_negatives: int = Field(
        0,
        ge=0,
        description="0: full softmax over the target domain; k: sampled softmax with k shared negatives",
    )
    negatives: Literal["auto", "all", "seen"] = Field(
        "auto",
        description="training negatives from all items of the domain or only those seen in training; "
        "auto: seen for models that score unseen items from content (tema), all otherwise",
    )
    # tema only: each ablation of SPEC is one flag
    use_text: bool = True
    use_image: bool = True
    use_tags: bool = True
    id_only: bool = Field(False, description="ablation: ID embeddings only (no text, image or tags)")
    tag_fusion: Literal["attention", "rank", "idf", "mean"] = "attention"
    cross_attention: bool = True
    intra_attention: bool = True
    tag_attention: bool = True
    intra_layers: int | None = Field(
        None, ge=1, description="blocks of each intra-domain encoder (None: as many as `layers`)"
    )
    head_linear: bool = Field(
        True,
        description="tema's output head adds a learned linear map of the fused state (u + W u); "
        "False scores with the fused state itself, as SASRec does",
    )
    intra_positions: Literal["mixed", "compact"] = Field(
        "mixed",
        description="positions the intra-domain encoders see: an item's place in the mixed window "
        "(depends on the past only) or in its domain's right-aligned subsequence, as sasrec-single "
        "(the last item of the domain always in the last slot; training positions then count the "
        "later items of that domain, as in SASRec, though never which they are)",
    )
    stream_loss: float = Field(
        0.0,
        ge=0.0,
        description="tema: weight of an auxiliary loss in which every stream a domain's head reads "
        "(cross, that domain's intra encoder, tags) predicts the target on its own; 0: off",
    )
    item_dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="dropout on tema's fused item vectors (they are also the output embeddings)",
    )
    id_dropout: float = Field(
        0.3,
        ge=0.0,
        lt=1.0,
        description="tema: chance of hiding an item's ID vector in training (content only)",
    )
    modality_fusion: Literal["gate", "sum"] = Field(
        "sum", description="tema: fuse ID/text/image/tag vectors by a learned gate or by their sum"
    )
    history_tags: int = Field(
        4, ge=1, description="tags per history item (best first) that the tag-level history attention reads"
    )
    # c2dsr only
    c2dsr_lambda: float = Field(
        0.3,
        ge=0.0,
        description="c2dsr: weight of the contrastive infomax term added to the next-item loss (0: off)",
    )
    c2dsr_graph_layers: int = Field(
        2, ge=0, description="c2dsr: propagation layers over the item graphs (0: plain ID embeddings)"
    )

    # models of your own (`register_model`): their hyperparameters, saved in config.json with the rest
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="hyperparameters of a registered model of your own, read as cfg.params[...] (JSON "
        "values; `--set model.params.k=3`); a subclass's own fields would not reach config.json",
    )

    @field_validator("params")
    @classmethod
    def _json_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:  # what config.json can hold and give back unchanged
            return json.loads(json.dumps(v, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise ValueError(f"model.params must hold JSON values (numbers, strings, lists): {e}") from None

    @model_validator(mode="after")
    def _params_are_for_own_models(self) -> ModelConfig:
        # the names, not temarec.models: that package imports this module (and torch), so importing it
        # here would be circular whenever temarec.models is the first thing imported
        if self.params and self.name in BUILTIN_MODEL_NAMES:  # a typo'd setting would be ignored silently
            raise ValueError(
                f"model.params ({', '.join(self.params)}) is for models of your own; {self.name} reads "
                "none (its settings are model.hidden, model.layers...)"
            )
        return self

    @model_validator(mode="after")
    def _id_only_turns_content_off(self) -> ModelConfig:
        """Also after an assignment (`cfg.model.id_only = True`): validate_assignment reruns it."""
        if self.id_only:
            object.__setattr__(self, "use_text", False)
            object.__setattr__(self, "use_image", False)
            object.__setattr__(self, "use_tags", False)
        return self

    @field_validator("name")
    @classmethod
    def _known_model(cls, v: str) -> str:
        from temarec.models import known_model  # here: the models import torch

        return known_model(v)


class TrainConfig(_Strict):
    seed: int = Field(0, ge=0, le=SEED_MAX)
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)
    grad_clip: float | None = Field(
        5.0, gt=0, allow_inf_nan=False, description="gradient norm limit; None: off"
    )
    patience: int = Field(10, ge=1, description="epochs without validation gain before stopping")
    select_metric: str = "NDCG@10"
    threads: int | None = Field(None, ge=1)
    resume: bool = True
    release_memory_every: int = Field(
        100, ge=0, description="steps between handing freed heap memory back to the OS (0: never)"
    )

    @field_validator("select_metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        from temarec.evaluation.metrics import METRICS  # here: the metrics module imports torch

        if v not in METRICS:  # else the first epoch trains and the selection fails on a KeyError
            raise ValueError(f"unknown metric {v!r}; one of {', '.join(METRICS)}")
        return v


class EvalConfig(_Strict):
    protocols: list[str] = ["full"]  # the first one selects the checkpoint on validation
    candidate_seed: int = Field(2025, ge=0, le=SEED_MAX)
    exclude_history: bool = True
    ties: Literal["pessimistic", "half"] = "pessimistic"
    batch_size: int = Field(512, ge=1)

    @field_validator("protocols")
    @classmethod
    def _known_protocols(cls, v: list[str]) -> list[str]:
        from temarec.evaluation.protocol import parse_protocol

        names = list(dict.fromkeys(parse_protocol(p).name for p in v))  # canonical names, each once
        if not names:
            raise ValueError("at least one protocol (full, uni999, uniN); the first selects the checkpoint")
        return names


class FeaturesConfig(_Strict):
    """Item features for content-aware models (`tema`); built once per dataset and cached by content."""

    text_encoder: str | None = None  # None: the packaged MiniLM; else a local sentence-transformers folder
    tags: str | None = "auto"  # tag source under artifacts/tags/<dataset>/; "auto": best available; None: off
    image_model: str | None = None  # a local CLIP model folder
    image_features: str | None = None  # a file of precomputed per-item image vectors
    max_tags: int = Field(8, ge=1, description="tags per item the model reads, best first")
    batch_size: int = Field(128, ge=1)


class RunConfig(_Strict):
    data: DataConfig = DataConfig()
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()


#: settings that moved since runs were first written: old `section.key` -> new `section.key`
MOVED_KEYS = {"model.max_tags": "features.max_tags"}


def upgrade_stored_config(raw: dict) -> dict:
    """A stored run config (`config.json`) with keys that have since moved put where the schema now
    has them, so that runs written by earlier versions still load (evaluate, recommend, serve) and
    compare (the bench's staleness check) instead of failing on, or ignoring, a key the schema no longer
    knows."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for old, new in MOVED_KEYS.items():
        (old_section, old_key), (new_section, new_key) = old.split("."), new.split(".")
        section = out.get(old_section)
        if isinstance(section, dict) and old_key in section:
            value = section.pop(old_key)
            target = out.setdefault(new_section, {})
            if isinstance(target, dict) and new_key not in target:  # where both exist, the new one ran
                target[new_key] = value
    return out


def parse_override(item: str) -> tuple[str, object]:
    """`section.key=value` -> (`section.key`, value parsed as YAML: a scalar or a flow list/mapping)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {item!r} must look like section.key=value")
    try:
        return key.strip(), load_yaml(value)
    except yaml.YAMLError as e:
        raise ValueError(f"override {item!r}: the value is not valid YAML ({e})") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """YAML file (optional) then `a.b=value` overrides; values are parsed as YAML scalars/lists."""
    raw: dict = {}
    if path is not None:
        try:
            raw = load_yaml(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: cannot read the config file ({e.__class__.__name__}: {e})") from None
        except yaml.YAMLError as e:
            raise ValueError(yaml_error(path, e)) from None
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a config file must be a mapping of sections")
    for item in overrides or []:
        key, value = parse_override(item)
        node = raw
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return RunConfig.model_validate(raw)


#: settings that cannot change a run's numbers (where the bench compares a cell with its stored config)
IGNORED_KEYS = frozenset({"train.threads", "train.resume", "train.release_memory_every"})


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(
    expected: dict, stored: dict, ignore: frozenset[str] | None = IGNORED_KEYS
) -> list[str]:
    """`key: stored -> expected` for every setting where a stored `config.json` differs from `expected`.

    Both are `RunConfig` JSON. Rules, so that a change of the code's schema alone does not make every
    finished run differ: a key the stored file lacks (added to the schema after that run) is compared
    with the schema's default; a key that moved since (`MOVED_KEYS`) is compared where it is now, and
    one the current schema otherwise lacks (removed since) is ignored. With `ignore` (the default
    `IGNORED_KEYS`: threads, resume) those keys, and `features.*` for models that read no item features
    (they cannot change such a model's numbers), are ignored too; `ignore=None` compares every setting,
    as resuming a checkpoint needs.
    """
    from temarec.models import needs_features  # here: the models import torch

    exp, got = _flatten(expected), _flatten(upgrade_stored_config(stored))
    default = _flatten(RunConfig().model_dump(mode="json"))
    skip_features = ignore is not None and needs_features(str(exp.get("model.name"))) is False
    diffs = []
    for key, want in exp.items():
        if (ignore is not None and key in ignore) or (skip_features and key.startswith("features.")):
            continue
        have = got.get(key, default.get(key))
        if have != want:
            shown = repr(got[key]) if key in got else f"absent (default {default.get(key)!r})"
            diffs.append(f"{key}: {shown} -> {want!r}")
    # a model's own parameters are free-form: one the stored run had and `expected` lacks is a difference
    # (elsewhere a key only the stored file has is one the schema removed since, and is ignored)
    for key in sorted(k for k in got if k.startswith("model.params.") and k not in exp):
        diffs.append(f"{key}: {got[key]!r} -> absent")
    return diffs
