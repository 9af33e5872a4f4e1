"""`sasrec-single`: one SASRec per domain, each reading only its own domain's subsequence.

The single-domain baseline: what a recommender without cross-domain signal achieves.
"""

from __future__ import annotations

import torch
from torch import nn

from temarec.config import ModelConfig
from temarec.data.dataset import DatasetInfo
from temarec.models.base import DotModel, domain_subsequence, shift
from temarec.models.sasrec import SASRecEncoder


class SASRecSingle(DotModel):
    name = "sasrec-single"

    def __init__(self, info: DatasetInfo, cfg: ModelConfig, max_len: int = 50):
        super().__init__(info, cfg)
        self.encoders = nn.ModuleList(
            SASRecEncoder(cfg.hidden, max_len, cfg.layers, cfg.heads, cfg.dropout) for _ in range(2)
        )

    def domain_hidden(self, seq: torch.Tensor, d: int) -> torch.Tensor:
        sub = domain_subsequence(seq, self.item_domain, d)
        return self.encoders[d](self.embed(sub), sub)

    def user_state(self, seq: torch.Tensor, domain: int) -> torch.Tensor:
        return self.domain_hidden(seq, domain)[:, -1]

    def loss(self, window: torch.Tensor) -> torch.Tensor:
        total, count = window.new_zeros((), dtype=torch.float), 0
        for d in (0, 1):
            sub = domain_subsequence(window, self.item_domain, d)
            inputs, targets = shift(sub)
            mask = targets > 0
            n = int(mask.sum())
            if n == 0:
                continue
            h = self.encoders[d](self.embed(inputs), inputs)
            total = total + self.softmax_ce(h[mask], targets[mask], d)
            count += n
        return total / max(count, 1)
