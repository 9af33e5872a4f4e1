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

    def forward(self, x: torch.Tensor, index: torch.Tensor, shape: tuple[int, int], mask: torch.Tensor):
        """`x` `[N, D]` holds the real items only (flat positions `index` of a `[B, n]` batch).

        Position-wise parts (norms, projections, feed-forward) run on the real items alone; only the
        attention sees the padded `[B, n]` layout. Padded keys are masked anyway, so this changes no
        result and skips the padding, often more than half of a batch.
        """
        (b, n), d = shape, x.shape[-1]
        qkv = self.qkv(self.ln1(x))
        qkv = qkv.new_zeros(b * n, 3 * d).index_copy(0, index, qkv)
        q, k, v = qkv.view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.training and self.dropout > 0:
            # the same as SDPA's math path with dropout_p, but with the cheaper dropout (see layers.Dropout)
            scores = (q @ k.transpose(-1, -2)) * (d // self.heads) ** -0.5
            att = self.att_drop(torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)) @ v
        else:
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        att = att.transpose(1, 2).reshape(b * n, d).index_select(0, index)
        x = x + self.drop(self.proj(att))
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
        """States `[B, n, D]` of the items `seq` with vectors `x`; padding positions get zeros.

        Sequences may be shorter than `max_len`: positions count from the right (latest) end, so a
        left-padded sequence cut to its non-padded tail gets the same positional embeddings, and leading
        columns that are padding in every row are skipped.
        """
        b, n = seq.shape
        if n > self.pos.num_embeddings:
            raise ValueError(f"sequence length {n} exceeds max_len {self.pos.num_embeddings}")
        valid = seq > 0
        cols = valid.any(0)
        start = int(cols.to(torch.int8).argmax()) if bool(cols.any()) else n - 1
        sub, m = seq[:, start:], n - start
        index = valid[:, start:].reshape(-1).nonzero().squeeze(1)  # flat positions of the real items
        pos = self.pos.num_embeddings - m + index % m
        h = x[:, start:].reshape(b * m, -1).index_select(0, index)
        h = self.drop(h * h.shape[-1] ** 0.5 + self.pos(pos))
        mask = causal_mask(sub)
        for blk in self.blocks:
            h = blk(h, index, (b, m), mask)
        h = self.ln(h)
        out = h.new_zeros(b * m, h.shape[-1]).index_copy(0, index, h).view(b, m, -1)
        return F.pad(out, (0, 0, start, 0)) if start else out


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
