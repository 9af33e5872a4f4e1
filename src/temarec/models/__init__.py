"""Models stage: every model implements `loss`, `score_candidates` and `score_all` (see `base.RecModel`)."""

from __future__ import annotations

from temarec.config import ModelConfig
from temarec.data.dataset import DatasetInfo
from temarec.models.base import RecModel
from temarec.models.c2dsr import C2DSR
from temarec.models.gru4rec import GRU4Rec
from temarec.models.pop import Pop
from temarec.models.sasrec import SASRec
from temarec.models.sasrec_single import SASRecSingle
from temarec.models.tema import TEMA

MODELS: dict[str, type[RecModel]] = {m.name: m for m in (Pop, GRU4Rec, SASRec, SASRecSingle, TEMA, C2DSR)}


def build_model_class(name: str) -> type[RecModel]:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name]


def needs_features(name: str) -> bool | None:
    """Whether the model `name` reads item features (text, tags, images); None for an unknown name."""
    cls = MODELS.get(name)
    return None if cls is None else bool(getattr(cls, "needs_features", False))


def build_model(info: DatasetInfo, cfg: ModelConfig, max_len: int = 50, features=None) -> RecModel:
    """A model by `cfg.name`; content-aware models (`needs_features`) take `features` (ItemFeatures)."""
    cls = build_model_class(cfg.name)
    if needs_features(cfg.name):
        return cls(info, cfg, max_len=max_len, features=features)
    if cls in (SASRec, SASRecSingle, C2DSR):
        return cls(info, cfg, max_len=max_len)
    return cls(info, cfg)


__all__ = ["MODELS", "RecModel", "build_model", "build_model_class", "needs_features"]
