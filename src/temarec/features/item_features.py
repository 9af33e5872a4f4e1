"""Per-item feature arrays that content-aware models (`tema`) read: text, image and tag inputs.

Rows are global item ids `0..N` (row 0 is padding and always empty). A missing modality of an item is
marked in its mask, never filled with a fake vector, so a model can fall back on what the item has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ItemFeatures:
    n_items: int
    text: np.ndarray | None = None  # float32 [N+1, Dt], L2-normalised frozen-encoder vectors
    text_mask: np.ndarray | None = None  # bool [N+1]
    image: np.ndarray | None = None  # float32 [N+1, Dv]
    image_mask: np.ndarray | None = None  # bool [N+1]
    tag_ids: np.ndarray | None = None  # int64 [N+1, T]; -1 = no tag
    tag_weights: np.ndarray | None = None  # float32 [N+1, T]; prior weight (rank/relevance), 0 at -1
    tag_text: np.ndarray | None = None  # float32 [V, Dt] frozen embeddings of the tag strings
    tag_count: np.ndarray | None = None  # int64 [V] number of items carrying each tag (for idf)
    tag_names: list[str] | None = None  # [V]
    source: str = ""  # what made them (encoder identity, tag source), for logs and cache keys
    tag_fingerprint: str | None = None  # content hash of the tag vocabulary (see `tag_vocab_fingerprint`)

    def __post_init__(self) -> None:
        n = self.n_items + 1
        for name in ("text", "image"):
            arr, mask = getattr(self, name), getattr(self, f"{name}_mask")
            if arr is None:
                continue
            if arr.ndim != 2 or arr.shape[0] != n:
                raise ValueError(f"{name} features must be [{n}, D], got {arr.shape}")
            if mask is None:
                mask = np.abs(arr).sum(1) > 0
                setattr(self, f"{name}_mask", mask)
            if mask.shape != (n,):
                raise ValueError(f"{name}_mask must be [{n}], got {mask.shape}")
            mask[0] = False
        if self.tag_ids is not None:
            if self.tag_ids.ndim != 2 or self.tag_ids.shape[0] != n:
                raise ValueError(f"tag_ids must be [{n}, T], got {self.tag_ids.shape}")
            if self.tag_weights is None:
                rank = np.arange(self.tag_ids.shape[1], dtype=np.float32)
                self.tag_weights = np.where(self.tag_ids >= 0, 1.0 / (1.0 + rank), 0.0).astype(np.float32)
            if self.tag_weights.shape != self.tag_ids.shape:
                raise ValueError("tag_weights must have the shape of tag_ids")
            v = self.n_tags
            if self.tag_ids.max(initial=-1) >= v:
                raise ValueError(f"tag id out of range (vocabulary of {v})")
            if self.tag_count is None:
                valid = self.tag_ids[self.tag_ids >= 0]
                self.tag_count = np.bincount(valid, minlength=v).astype(np.int64)
            if self.tag_text is not None and self.tag_text.shape[0] != v:
                raise ValueError(f"tag_text must have one row per tag ({v})")

    @property
    def n_tags(self) -> int:
        if self.tag_text is not None:
            return int(self.tag_text.shape[0])
        if self.tag_names is not None:
            return len(self.tag_names)
        return int(self.tag_ids.max(initial=-1)) + 1 if self.tag_ids is not None else 0

    def describe(self) -> dict:
        out: dict = {"source": self.source}
        for name in ("text", "image"):
            arr = getattr(self, name)
            if arr is not None:
                out[name] = {"dim": int(arr.shape[1]), "items": int(getattr(self, f"{name}_mask").sum())}
        if self.tag_ids is not None:
            per = (self.tag_ids >= 0).sum(1)
            out["tags"] = {
                "vocabulary": self.n_tags,
                "items_with_tags": int((per > 0).sum()),
                "tags_per_item": round(float(per[1:].mean()), 2),
            }
            if self.tag_fingerprint:
                out["tags"]["fingerprint"] = self.tag_fingerprint
        return out
