"""Small building blocks shared by the models."""

from __future__ import annotations

import torch
from torch import nn


class Dropout(nn.Module):
    """Inverted dropout that draws one random byte per element instead of one `bernoulli_` float.

    On CPU, `bernoulli_` was the single largest cost of a training step (about a fifth of it). Filling
    int64 words with random bits and comparing their bytes against a threshold is about 6x cheaper. The
    drop probability is thereby rounded to a multiple of 1/256 (`p_eff`, e.g. 0.30 -> 77/256 = 0.3008);
    the kept values are scaled by `1 / (1 - p_eff)`, so the expectation is exact.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.threshold = min(round(p * 256), 255)
        self.p_eff = self.threshold / 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        n = x.numel()
        words = torch.empty((n + 7) // 8, dtype=torch.int64, device=x.device).random_(-(2**63), None)
        keep = words.view(torch.uint8)[:n].view(x.shape) >= self.threshold
        return x * keep * (1.0 / (1.0 - self.p_eff))

    def extra_repr(self) -> str:
        return f"p={self.p} (p_eff={self.p_eff:.4f})"
