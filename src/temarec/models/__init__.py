"""Models stage: every model implements `loss`, `score_candidates` and `score_all` (see `base.RecModel`)."""

from __future__ import annotations

import inspect

from temarec.config import ModelConfig, did_you_mean
from temarec.data.dataset import DatasetInfo
from temarec.models.base import RecModel
from temarec.models.c2dsr import C2DSR
from temarec.models.gru4rec import GRU4Rec
from temarec.models.pop import Pop
from temarec.models.sasrec import SASRec
from temarec.models.sasrec_single import SASRecSingle
from temarec.models.tema import TEMA

MODELS: dict[str, type[RecModel]] = {m.name: m for m in (Pop, GRU4Rec, SASRec, SASRecSingle, TEMA, C2DSR)}
#: temarec's own models: their settings are ModelConfig's fields; `model.params` is for the others
BUILTIN_MODELS = frozenset(MODELS)
#: installed packages add models under this entry-point group (`name = "package.module:Class"`), so that
#: the command line and the bench's subprocesses find them too
ENTRY_POINT_GROUP = "temarec.models"
_plugins_loaded = False


def register_model(cls: type[RecModel]) -> type[RecModel]:
    """Add a model class under its `name` (usable as a decorator). In-process only: for `temarec ...`
    and the bench's cells, which run in subprocesses, publish it as a `temarec.models` entry point."""
    if not (isinstance(cls, type) and issubclass(cls, RecModel)):
        raise TypeError(f"register_model expects a RecModel subclass, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or name == RecModel.name:
        raise ValueError(f"{cls.__name__} needs a class attribute `name` of its own (the --model value)")
    if name in MODELS and MODELS[name] is not cls:
        raise ValueError(f"a model named {name!r} is already registered ({MODELS[name].__qualname__})")
    MODELS[name] = cls
    return cls


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register_model(ep.load())
        except Exception as e:  # a broken plugin names itself instead of breaking every command
            raise ValueError(f"entry point {ep.name!r} = {ep.value!r} ({ENTRY_POINT_GROUP}): {e}") from e


def known_model(name: str) -> str:
    """`name` if a model of that name exists (built in, registered, or an entry point), else ValueError."""
    _load_plugins()
    if name not in MODELS:
        raise ValueError(
            f"unknown model {name!r}{did_you_mean(name, MODELS)}; choose one of {', '.join(sorted(MODELS))}"
        )
    return name


def build_model_class(name: str) -> type[RecModel]:
    return MODELS[known_model(name)]


def needs_features(name: str) -> bool | None:
    """Whether the model `name` reads item features (text, tags, images); None for an unknown name."""
    _load_plugins()
    cls = MODELS.get(name)
    return None if cls is None else bool(getattr(cls, "needs_features", False))


def build_model(info: DatasetInfo, cfg: ModelConfig, max_len: int = 50, features=None) -> RecModel:
    """A model by `cfg.name`. Its constructor gets `(info, cfg)`, plus `max_len` and `features` (the
    ItemFeatures of content-aware models, `needs_features`) where it takes them."""
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"build_model expects a ModelConfig (RunConfig().model), got {type(cfg).__name__}")
    cls = build_model_class(cfg.name)
    params = inspect.signature(cls).parameters
    kwargs: dict = {}
    if "max_len" in params:
        kwargs["max_len"] = max_len
    if needs_features(cfg.name):
        kwargs["features"] = features
    return cls(info, cfg, **kwargs)


__all__ = [
    "ENTRY_POINT_GROUP",
    "MODELS",
    "RecModel",
    "build_model",
    "build_model_class",
    "known_model",
    "needs_features",
    "register_model",
]
