"""GRU4Rec (Hidasi et al., 2016) on the mixed sequence, with a linear head per target domain."""

from __future__ import annotations

import torch
from torch import nn

from temarec.config import ModelConfig
from temarec.data.dataset import DatasetInfo
from temarec.models.base import DotModel
from temarec.models.layers import Dropout


class GRU4Rec(DotModel):
    name = "gru4rec"

    def __init__(self, info: DatasetInfo, cfg: ModelConfig):
        super().__init__(info, cfg)
        self.drop = Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.hidden, cfg.hidden, num_layers=1, batch_first=True)
        self.heads = nn.ModuleList(nn.Linear(cfg.hidden, cfg.hidden) for _ in range(2))

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.drop(self.embed(seq)))
        return out

    def head(self, h: torch.Tensor, domain: int) -> torch.Tensor:
        return self.heads[domain](h)
