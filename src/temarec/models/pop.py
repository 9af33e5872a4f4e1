"""Per-domain popularity from the training sequences: the floor every model must clear."""

from __future__ import annotations

import numpy as np
import torch

from temarec.config import ModelConfig
from temarec.data.dataset import DatasetInfo
from temarec.data.ragged import Ragged
from temarec.models.base import RecModel


def item_popularity(train: Ragged, n_items: int) -> np.ndarray:
    """float32 `[n_items + 1]`: interactions per global item id in the training sequences."""
    return np.bincount(train.values, minlength=n_items + 1).astype(np.float32)


class Pop(RecModel):
    name = "pop"
    trainable = False

    def __init__(self, info: DatasetInfo, cfg: ModelConfig):
        super().__init__(info, cfg)
        self.register_buffer("counts", torch.zeros(info.n_items + 1))

    def fit_static(self, train: Ragged) -> None:
        self.counts.copy_(torch.from_numpy(item_popularity(train, self.info.n_items)))

    def score_all(self, seq: torch.Tensor, domain: int) -> torch.Tensor:
        return self.counts[self.info.domain_slice(domain)].expand(seq.shape[0], -1)

    def score_candidates(self, seq: torch.Tensor, domain: int, candidates: torch.Tensor) -> torch.Tensor:
        return self.counts[candidates]
