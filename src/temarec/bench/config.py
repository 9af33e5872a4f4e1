"""The benchmark grid as a typed config: datasets x variants x seeds x protocols, plus shared overrides.

A bench config is YAML (see `configs/quick.yaml` and `configs/paper.yaml`). Every cell's `RunConfig` is
built from the same `section.key=value` overrides `temarec train --set` takes, in this order: `common`,
`dataset_overrides[dataset]`, the variant's `set` and its `set_for[dataset]` (after those of the variant
it `extends`), then the cell's dataset,
model, seed, protocols and `threads`. The whole grid is validated when the file is loaded, so a typo fails
before any run starts, with the file, the place and a suggestion.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from temarec.config import RunConfig, did_you_mean, load_config, load_yaml, yaml_error
from temarec.evaluation.protocol import parse_protocol

#: keys a bench sets itself per cell; a `set:` block must not set them (it would be silently overridden)
RESERVED = {
    "data.dataset": "`datasets`",
    "model.name": "the variant's `model`",
    "train.seed": "`seeds` (or the variant's `seeds`)",
    "eval.protocols": "`protocols`",
    "train.threads": "`threads`",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class BenchConfigError(ValueError):
    """A bench config that cannot be used; the message names the file and the offending entry."""


def _section_fields() -> dict[str, set[str]]:
    return {
        name: set(field.annotation.model_fields)  # type: ignore[union-attr]
        for name, field in RunConfig.model_fields.items()
    }


def flatten_overrides(raw: Any, where: str) -> dict[str, Any]:
    """`{section.key: value}` or nested `{section: {key: value}}` -> flat dotted keys, checked against
    `RunConfig` so a misspelt key fails here rather than in the 20th run."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping of section.key: value, got {type(raw).__name__}")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key).strip()
        if "." not in key and isinstance(value, dict):
            for sub, v in value.items():
                flat[f"{key}.{sub}"] = v
        else:
            flat[key] = value
    sections = _section_fields()
    for key in flat:
        section, _, field = key.partition(".")
        if section not in sections or not field:
            raise ValueError(
                f"{where}: {key!r} is not section.key with a section of {sorted(sections)}"
                + did_you_mean(section, sections)
            )
        if field not in sections[section]:
            dotted = [f"{section}.{f}" for f in sections[section]]
            raise ValueError(f"{where}: unknown key {key!r}" + did_you_mean(key, dotted))
        if key in RESERVED:
            raise ValueError(f"{where}: {key!r} is set by the bench per cell; use {RESERVED[key]} instead")
    return flat


def override_value(value: Any) -> str:
    """A value as the text `--set key=TEXT` parses back to the same value (YAML flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip()
    return text.removesuffix("...").strip()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TagSpec(_Strict):
    """How to create a dataset's tags when they are missing (`temarec.pipeline.tag_catalogue`)."""

    backend: str = Field(description="keyphrase, file, llamacpp or openai")
    source: str | None = Field(None, description="source name (default: the backend's name)")
    refine: bool = False
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="backend keyword arguments; ${TEMAREC_DATA} expands to the data root",
    )

    @property
    def source_name(self) -> str:
        name = self.source or (self.backend + ("-refined" if self.refine else ""))
        return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.") or "x"


class Variant(_Strict):
    """One row of the tables: a model with its overrides."""

    model: str | None = Field(None, description="model name (default: the variant's name, or its base's)")
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set")
    set_for: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="dataset -> overrides of this variant on that dataset only"
    )
    extends: str | None = Field(None, description="start from this variant's model and `set`")
    baseline: bool = False
    seeds: list[int] | None = None


class BenchConfig(_Strict):
    """A benchmark grid; see the module docstring for how a cell's run config is assembled."""

    description: str = ""
    datasets: list[str] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    protocols: list[str] = Field(default_factory=lambda: ["full"], min_length=1)
    jobs: int = Field(1, ge=1, description="cells run in parallel")
    threads: int = Field(1, ge=1, description="torch threads per cell (train.threads)")
    output: Path = Path("results")
    common: dict[str, Any] = Field(default_factory=dict)
    dataset_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    variants: dict[str, Variant] = Field(min_length=1)
    ablation_of: dict[str, list[str]] = Field(
        default_factory=dict, description="full variant -> its ablations (a list: ablations of `tema`)"
    )
    tags: dict[str, TagSpec] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="applied last, to every cell (`temarec bench --set`)"
    )
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The YAML file this config came from (None when built in code)."""
        return self._source

    @field_validator("ablation_of", mode="before")
    @classmethod
    def _ablation_list(cls, v):
        return {"tema": v} if isinstance(v, list) else v

    @field_validator("protocols")
    @classmethod
    def _protocols(cls, v: list[str]) -> list[str]:
        names = [parse_protocol(p).name for p in v]
        if len(set(names)) != len(names):
            raise ValueError(f"protocols repeat: {names}")
        return names

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError(f"seeds must be distinct and >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _check(self) -> BenchConfig:
        for d in self.datasets:
            if not d or d in ("/", ".") or self.dataset_key(d) in ("", "."):
                raise ValueError(f"dataset {d!r} is not a usable name")
        if len({self.dataset_key(d) for d in self.datasets}) != len(self.datasets):
            raise ValueError(f"datasets repeat: {self.datasets}")
        self.common = flatten_overrides(self.common, "common")
        self.overrides = flatten_overrides(self.overrides, "overrides")
        for d, ov in list(self.dataset_overrides.items()):
            if d not in self.datasets:
                raise ValueError(f"dataset_overrides: {d!r} is not in datasets {self.datasets}")
            self.dataset_overrides[d] = flatten_overrides(ov, f"dataset_overrides.{d}")
        for d in self.tags:
            if d not in self.datasets:
                raise ValueError(f"tags: {d!r} is not in datasets {self.datasets}")
        for name, var in self.variants.items():
            if not _NAME.match(name):
                raise ValueError(f"variants: {name!r} is not a folder-safe name (letters, digits, . _ -)")
            var.overrides = flatten_overrides(var.overrides, f"variants.{name}.set")
            for d, ov in list(var.set_for.items()):
                if d not in self.datasets:
                    raise ValueError(f"variants.{name}.set_for: {d!r} is not in datasets {self.datasets}")
                var.set_for[d] = flatten_overrides(ov, f"variants.{name}.set_for.{d}")
            if var.extends is not None and var.extends not in self.variants:
                raise ValueError(
                    f"variants.{name}.extends: no variant {var.extends!r}"
                    + did_you_mean(var.extends, self.variants)
                )
            if var.seeds is not None:
                self._seeds(var.seeds)
            self._chain(name)  # cycles
        from temarec.models import known_model

        for name in self.variants:
            try:  # a typo would otherwise leave a hole in the grid
                known_model(self.variant_model(name))  # built in, registered or an installed entry point
            except ValueError as e:
                raise ValueError(f"variants.{name}: {e}") from None
        for full, abl in self.ablation_of.items():
            for v in [full, *abl]:
                if v not in self.variants:
                    raise ValueError(f"ablation_of: {v!r} is not a variant" + did_you_mean(v, self.variants))
        for d in self.datasets:
            spec = self.tags.get(d)
            tags = self.dataset_set(d).get("features.tags", "auto")
            if spec is not None and isinstance(tags, str) and tags not in ("auto", spec.source_name):
                raise ValueError(
                    f"tags.{d}: creates source {spec.source_name!r} but features.tags for {d} is {tags!r}; "
                    "give the tag spec `source: " + tags + "` or set features.tags to the same name"
                )
            for name in self.variants:
                try:
                    self.run_config(d, name, self.variant_seeds(name)[0])
                except (ValidationError, ValueError) as e:
                    raise ValueError(
                        f"variant {name!r} on dataset {d!r} is not a valid run config: {e}"
                    ) from e
        return self

    # ---- derived values ---------------------------------------------------------------------------------
    @staticmethod
    def dataset_key(dataset: str) -> str:
        """Folder and report name of a dataset (a path's last part)."""
        return Path(dataset).name

    def _chain(self, name: str) -> list[str]:
        chain = [name]
        while (base := self.variants[chain[-1]].extends) is not None:
            if base in chain:
                raise ValueError(f"variants: {' -> '.join([*chain, base])} extends in a cycle")
            chain.append(base)
        return chain[::-1]

    def variant_model(self, name: str) -> str:
        chain = self._chain(name)
        for v in reversed(chain):
            if self.variants[v].model:
                return self.variants[v].model  # type: ignore[return-value]
        return chain[0]  # the name of the variant the chain starts from

    def variant_seeds(self, name: str) -> list[int]:
        return self.variants[name].seeds or self.seeds

    def dataset_set(self, dataset: str) -> dict[str, Any]:
        return {**self.common, **self.dataset_overrides.get(dataset, {})}

    def variant_set(self, name: str, dataset: str | None = None) -> dict[str, Any]:
        """The variant's overrides, its base's first; with `dataset`, its `set_for[dataset]` too."""
        out: dict[str, Any] = {}
        for v in self._chain(name):
            out.update(self.variants[v].overrides)
            if dataset is not None:
                out.update(self.variants[v].set_for.get(dataset, {}))
        return out

    def cell_overrides(self, dataset: str, variant: str) -> list[str]:
        """`--set` values of a cell (without dataset, model, seed and protocols, given as options)."""
        merged = {**self.dataset_set(dataset), **self.variant_set(variant, dataset), **self.overrides}
        merged["train.threads"] = self.threads
        return [f"{k}={override_value(v)}" for k, v in merged.items()]

    def cell_args(self, dataset: str, variant: str, seed: int) -> list[str]:
        """Arguments of `temarec train` for one cell (without --output)."""
        args = ["--dataset", dataset, "--model", self.variant_model(variant), "--seed", str(seed)]
        for p in self.protocols:
            args += ["--protocol", p]
        for s in self.cell_overrides(dataset, variant):
            args += ["--set", s]
        return args

    def run_config(self, dataset: str, variant: str, seed: int) -> RunConfig:
        """The `RunConfig` that `temarec train` builds from `cell_args` (same overrides, same order)."""
        overrides = self.cell_overrides(dataset, variant) + [
            f"data.dataset={override_value(dataset)}",
            f"model.name={override_value(self.variant_model(variant))}",
            f"train.seed={seed}",
            "eval.protocols=[" + ",".join(self.protocols) + "]",
        ]
        return load_config(None, overrides)


def packaged_configs() -> dict[str, Path]:
    folder = resources.files("temarec.bench") / "configs"
    return {p.name[: -len(".yaml")]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def resolve_config_path(spec: str | Path) -> Path:
    """A YAML path, or the name of a packaged config (`quick`, `paper`)."""
    p = Path(spec).expanduser()
    if p.is_file():
        return p
    known = packaged_configs()
    if str(spec) in known:
        return known[str(spec)]
    raise BenchConfigError(
        f"bench config {str(spec)!r} is neither a file nor a packaged config ({', '.join(sorted(known))})"
        + did_you_mean(str(spec), known)
    )


def _format_error(e: ValidationError, fields: dict) -> list[str]:
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            allowed = fields if len(err["loc"]) == 1 else {}
            if len(err["loc"]) == 3 and err["loc"][0] == "variants":
                allowed = {"model", "set", "extends", "baseline", "seeds"}
            elif len(err["loc"]) == 3 and err["loc"][0] == "tags":
                allowed = {"backend", "source", "refine", "options"}
            msg = f"unknown key {key!r}" + did_you_mean(key, allowed)
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        lines.append(f"{loc}: {msg}" if loc else msg)
    return lines


def load_bench_config(spec: str | Path) -> BenchConfig:
    """Load and validate a bench config; every problem is a `BenchConfigError` naming the file."""
    path = resolve_config_path(spec)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise BenchConfigError(yaml_error(path, e)) from e
    if not isinstance(raw, dict):
        raise BenchConfigError(f"{path}: a bench config must be a mapping (datasets, variants, ...)")
    try:
        cfg = BenchConfig.model_validate(raw)
    except ValidationError as e:
        lines = _format_error(e, BenchConfig.model_fields)
        sep = " " if len(lines) == 1 else "\n  "
        raise BenchConfigError(f"{path}:{sep}" + sep.join(lines)) from e
    cfg._source = path
    return cfg
