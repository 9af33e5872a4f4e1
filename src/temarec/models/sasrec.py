"""SASRec (Kang & McAuley, 2018): causal self-attention over the sequence, tied item embeddings.

`SASRec` reads the mixed cross-domain sequence and scores each domain through its own head;
`SASRecEncoder` is reused by `sasrec-single` and later models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from temarec.config import ModelConfig
from temarec.data.dataset import DatasetInfo
from temarec.models.base import DotModel
from temarec.models.layers import Dropout


class Block(nn.Module):
    """Pre-norm transformer block: causal multi-head attention, then a position-wise feed-forward."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden size {dim} must be divisible by heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), Dropout(dropout), nn.Linear(dim, dim))
        self.drop = Dropout(dropout)
        self.att_drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.training and self.dropout > 0:
            # the same as SDPA's math path with dropout_p, but with the cheaper dropout (see layers.Dropout)
            scores = (q @ k.transpose(-1, -2)) * (d // self.heads) ** -0.5
            att = self.att_drop(torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)) @ v
        else:
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.ln2(x)))


def causal_mask(seq: torch.Tensor) -> torch.Tensor:
    """`[B, 1, L, L]`: attend to earlier real items and always to yourself (no all-masked rows)."""
    n = seq.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool, device=seq.device).tril()
    key_ok = (seq > 0)[:, None, :] | torch.eye(n, dtype=torch.bool, device=seq.device)
    return (causal & key_ok)[:, None]


class SASRecEncoder(nn.Module):
    """Positional embedding + blocks over given item vectors."""

    def __init__(self, dim: int, max_len: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.pos = nn.Embedding(max_len, dim)
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        """Sequences may be shorter than `max_len`: positions count from the right (latest) end, so a
        left-padded sequence cut to its non-padded tail gets the same positional embeddings."""
        n = seq.shape[1]
        if n > self.pos.num_embeddings:
            raise ValueError(f"sequence length {n} exceeds max_len {self.pos.num_embeddings}")
        pos = torch.arange(self.pos.num_embeddings - n, self.pos.num_embeddings, device=seq.device)
        valid = (seq > 0).unsqueeze(-1)
        x = self.drop(x * x.shape[-1] ** 0.5 + self.pos(pos)[None]) * valid
        mask = causal_mask(seq)
        for blk in self.blocks:
            x = blk(x, mask) * valid
        return self.ln(x)


class SASRec(DotModel):
    name = "sasrec"

    def __init__(self, info: DatasetInfo, cfg: ModelConfig, max_len: int = 50):
        super().__init__(info, cfg)
        self.encoder = SASRecEncoder(cfg.hidden, max_len, cfg.layers, cfg.heads, cfg.dropout)
        self.heads = nn.ModuleList(nn.Linear(cfg.hidden, cfg.hidden) for _ in range(2))

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embed(seq), seq)

    def head(self, h: torch.Tensor, domain: int) -> torch.Tensor:
        return h + self.heads[domain](h)
