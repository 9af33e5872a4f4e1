"""TEMA: Tag-Enriched Multi-Attention over multimodal item vectors (SPEC stages 2-4).

Item side: an ID embedding fused with projected text, image and tag vectors by a learned gate that only
looks at the modalities an item has; an item never seen in training drops its (untrained) ID vector and
is scored from content alone. The tag vector is a weighted fusion of the item's tags (learned attention
with a rank/relevance prior, rank, inverse frequency, or plain mean as the ablation).

User side, per position of the mixed sequence: cross-domain causal attention over the mixed sequence,
intra-domain causal attention over the A-only and B-only subsequences (mapped back to mixed positions),
and attention over the individual tags of the history. A higher attention level, with one learned query
per target domain, fuses these states into the user state of that domain.

Every ablation of SPEC is one config flag (see `ModelConfig`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from temarec.config import ModelConfig
from temarec.data.dataset import DatasetInfo
from temarec.data.ragged import Ragged
from temarec.features.item_features import ItemFeatures
from temarec.models.base import DotModel, compact_order, shift
from temarec.models.layers import Dropout
from temarec.models.sasrec import SASRecEncoder

NEG = -1e9


class TagFusion(nn.Module):
    """One vector per item from its tags; `mode` in attention | rank | idf | mean."""

    def __init__(self, feats: ItemFeatures, dim: int, mode: str, dropout: float):
        super().__init__()
        v = feats.n_tags
        self.mode = mode
        self.register_buffer(
            "tag_ids", torch.from_numpy(np.where(feats.tag_ids < 0, v, feats.tag_ids)), False
        )
        self.register_buffer("tag_valid", torch.from_numpy(feats.tag_ids >= 0), False)
        prior = torch.from_numpy(feats.tag_weights).clamp_min(1e-6)
        self.register_buffer("log_prior", prior.log().masked_fill(~self.tag_valid, 0.0), False)
        idf = np.log((feats.n_items + 1) / (1.0 + feats.tag_count)).astype(np.float32)
        self.register_buffer(
            "idf", torch.from_numpy(np.append(idf, np.float32(0.0)).astype(np.float32)), False
        )
        self.tag_id_emb = nn.Embedding(v + 1, dim, padding_idx=v)
        nn.init.normal_(self.tag_id_emb.weight, std=dim**-0.5)
        if feats.tag_text is not None:
            self.register_buffer(
                "tag_text", torch.from_numpy(np.vstack([feats.tag_text, 0 * feats.tag_text[:1]])), False
            )
            self.text_proj = nn.Linear(feats.tag_text.shape[1], dim)
        else:
            self.tag_text = None
        self.query = nn.Parameter(torch.zeros(dim))
        self.key = nn.Linear(dim, dim, bias=False)
        self.drop = Dropout(dropout)

    def tag_vectors(self, tag_ids: torch.Tensor) -> torch.Tensor:
        """Vectors of tag ids of any shape (pad id: zeros): a learned id vector plus projected text."""
        vec, inv = self.distinct_tag_vectors(tag_ids)
        return vec[inv].view(*tag_ids.shape, -1)

    def distinct_tag_vectors(self, tag_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(vectors of the distinct tags [U, D], index of each input into them)`.

        Only the distinct tags of the call are projected; projecting the whole vocabulary every step
        (12k tags x 384 -> D on amazon-food-kitchen) would cost more than the rest of the model.
        """
        uniq, inv = torch.unique(tag_ids.reshape(-1), return_inverse=True)
        vec = self.tag_id_emb(uniq)
        if self.tag_text is not None:
            pad = self.tag_id_emb.padding_idx
            vec = vec + self.text_proj(self.tag_text[uniq]) * (uniq != pad).unsqueeze(-1)
        return vec, inv

    def forward(
        self, ids: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(vectors [..., D], has_tags [...])` for item ids of any shape."""
        tids, valid = self.tag_ids[ids], self.tag_valid[ids]
        vec = self.tag_vectors(tids)  # [..., T, D]; dropout comes after pooling (much cheaper)
        if self.mode == "mean":
            w = valid.float()
        elif self.mode == "rank":
            w = self.log_prior[ids].exp() * valid
        elif self.mode == "idf":
            w = self.idf[tids] * valid
        else:  # learned attention, anchored on the prior so that rank still matters early in training
            q = self.query if context is None else self.query + context
            logits = (self.key(vec) * q.unsqueeze(-2)).sum(-1) / math.sqrt(vec.shape[-1]) + self.log_prior[
                ids
            ]
            w = torch.softmax(logits.masked_fill(~valid, NEG), dim=-1) * valid
        w = w / w.sum(-1, keepdim=True).clamp_min(1e-9)
        return self.drop((w.unsqueeze(-1) * vec).sum(-2)), valid.any(-1)


class ItemEncoder(nn.Module):
    """Fuses ID, text, image and tag vectors of items through a gate over the modalities each item has."""

    def __init__(self, info: DatasetInfo, cfg: ModelConfig, feats: ItemFeatures | None):
        super().__init__()
        dim = cfg.hidden
        self.id_emb = nn.Embedding(info.n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.id_emb.weight, std=dim**-0.5)
        self.register_buffer("seen", torch.ones(info.n_items + 1, dtype=torch.bool), False)
        self.use_text = cfg.use_text and feats is not None and feats.text is not None
        self.use_image = cfg.use_image and feats is not None and feats.image is not None
        self.use_tags = cfg.use_tags and feats is not None and feats.tag_ids is not None and feats.n_tags > 0
        self.drop = Dropout(cfg.item_dropout)  # on both input and output sides: keep it light
        self.id_dropout = cfg.id_dropout
        self.fusion = cfg.modality_fusion
        if self.use_text:
            self.register_buffer("text", torch.from_numpy(feats.text.astype(np.float32)), False)
            self.register_buffer("text_mask", torch.from_numpy(feats.text_mask), False)
            self.text_proj = nn.Sequential(
                nn.Linear(feats.text.shape[1], dim), nn.GELU(), nn.Linear(dim, dim)
            )
        if self.use_image:
            self.register_buffer("image", torch.from_numpy(feats.image.astype(np.float32)), False)
            self.register_buffer("image_mask", torch.from_numpy(feats.image_mask), False)
            self.image_proj = nn.Sequential(
                nn.Linear(feats.image.shape[1], dim), nn.GELU(), nn.Linear(dim, dim)
            )
        if self.use_tags:
            self.tags = TagFusion(feats, dim, cfg.tag_fusion, cfg.item_dropout)
        n_mod = 1 + self.use_text + self.use_image + self.use_tags
        self.gate = nn.Linear(dim, 1) if n_mod > 1 else None
        self.gate_bias = nn.Parameter(torch.zeros(n_mod))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Vectors of item ids of any shape; each distinct item is encoded once per call."""
        if self.gate is None:
            return self.id_emb(ids)
        uniq, inv = torch.unique(ids.reshape(-1), return_inverse=True)
        return self.encode(uniq)[inv].view(*ids.shape, -1)

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        id_vec = self.id_emb(ids)
        if self.gate is None:  # ID only
            return id_vec
        mods, masks = [id_vec], [self.seen[ids]]
        content = None
        if self.use_text:
            t = self.text_proj(self.text[ids])
            mods.append(t)
            masks.append(self.text_mask[ids])
            content = t
        if self.use_image:
            mods.append(self.image_proj(self.image[ids]))
            masks.append(self.image_mask[ids])
        if self.use_tags:
            g, has = self.tags(ids, context=content)
            mods.append(g)
            masks.append(has)
        m = torch.stack(mods, dim=-2)  # [..., K, D]
        mask = torch.stack(masks, dim=-1)
        if self.training and self.id_dropout > 0:  # hide some IDs so that content has to carry the item
            mask[..., 0] = mask[..., 0] & (torch.rand(mask.shape[:-1], device=ids.device) >= self.id_dropout)
        mask[..., 0] = mask[..., 0] | ~mask[..., 1:].any(-1)  # an item with nothing else keeps its ID
        if self.fusion == "sum":  # every available modality adds its vector
            w = mask.to(m.dtype)
        else:  # a learned gate over the available modalities (weights sum to one)
            logits = self.gate(torch.tanh(m)).squeeze(-1) + self.gate_bias
            w = torch.softmax(logits.masked_fill(~mask, NEG), dim=-1)
        fused = (w.unsqueeze(-1) * self.drop(m)).sum(-2)
        return fused * (ids > 0).unsqueeze(-1)  # padding stays exactly zero


class TagHistoryAttention(nn.Module):
    """Each position attends over the individual tags of the items up to it (plus a learned null tag)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.null_k = nn.Parameter(torch.zeros(dim))
        self.null_v = nn.Parameter(torch.zeros(dim))
        self.out = nn.Linear(dim, dim)
        self.drop = Dropout(dropout)
        self.ln = nn.LayerNorm(dim)

    def forward(
        self, query: torch.Tensor, tag_vec: torch.Tensor, tag_index: torch.Tensor, tag_valid: torch.Tensor
    ) -> torch.Tensor:
        """query `[B, L, D]`; distinct tag vectors `[U, D]`; tag_index, tag_valid `[B, L, T]` -> `[B, L, D]`.

        Keys and values are projected once per distinct tag (a few thousand per batch), not once per
        (position, tag) slot (B x L x T, about 50k).
        """
        b, n, t = tag_index.shape
        d, h = query.shape[-1], self.heads
        index = torch.cat([tag_index.new_full((b, 1), len(tag_vec)), tag_index.reshape(b, n * t)], dim=1)
        # the null key/value is the last row; keys and values are gathered head-major, without a copy
        k = torch.cat([self.k(tag_vec), self.null_k[None]])[index]
        v = torch.cat([self.v(tag_vec), self.null_v[None]])[index]
        k, v = (z.view(b, 1 + n * t, h, d // h).transpose(1, 2) for z in (k, v))
        q = self.q(self.ln(query)).view(b, n, h, d // h).transpose(1, 2)
        pos = torch.arange(n, device=query.device)
        causal = (pos[None, :, None] >= pos[None, None, :]).expand(b, n, n)  # query i sees items j <= i
        ok = causal.unsqueeze(-1) & tag_valid.unsqueeze(1)  # [B, L, L, T]
        ok = torch.cat([ok.new_ones(b, n, 1), ok.reshape(b, n, n * t)], dim=-1).unsqueeze(1)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=ok)  # no dropout on [B, L, L*T] weights
        return self.drop(self.out(att.transpose(1, 2).reshape(b, n, d)))


class TEMA(DotModel):
    name = "tema"
    needs_features = True
    scores_unseen_items = True

    def __init__(
        self, info: DatasetInfo, cfg: ModelConfig, max_len: int = 50, features: ItemFeatures | None = None
    ):
        super().__init__(info, cfg)
        dim = cfg.hidden
        del self.item_emb  # the item encoder owns the ID embedding
        self.items = ItemEncoder(info, cfg, features)
        enc = lambda n: SASRecEncoder(dim, max_len, n, cfg.heads, cfg.dropout)  # noqa: E731
        self.cross = enc(cfg.layers) if cfg.cross_attention else None
        intra_layers = cfg.intra_layers or cfg.layers
        self.intra = nn.ModuleList(enc(intra_layers) for _ in range(2)) if cfg.intra_attention else None
        if self.cross is None and self.intra is None:
            raise ValueError("tema needs cross_attention or intra_attention (or both)")
        self.tag_att = (
            TagHistoryAttention(dim, cfg.heads, cfg.dropout)
            if cfg.tag_attention and self.items.use_tags
            else None
        )
        self.empty = nn.Parameter(torch.zeros(dim))  # intra state before the first item of a domain
        self.fuse_q = nn.Parameter(torch.randn(2, dim) * dim**-0.5)
        self.fuse_k = nn.Linear(dim, dim, bias=False)
        self.heads_out = nn.ModuleList(nn.Linear(dim, dim) for _ in range(2)) if cfg.head_linear else None
        self._eval_table: tuple[tuple, torch.Tensor] | None = None  # (weights' versions, vectors)
        self._table: tuple[torch.Tensor, torch.Tensor] | None = None

    # ---- items ------------------------------------------------------------------------------------
    def fit_static(self, train: Ragged) -> None:
        """Items never seen in training are scored from content only (their ID vector is untrained)."""
        super().fit_static(train)
        seen = np.zeros(self.info.n_items + 1, dtype=bool)
        seen[np.unique(train.values)] = True
        self.items.seen.copy_(torch.from_numpy(seen))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        if self._table is not None:  # inside `loss`: every id of the step was encoded once
            uniq, vec = self._table
            return vec[torch.searchsorted(uniq, ids.contiguous())]
        if self._use_eval_vectors():  # evaluation and serving: a lookup in the catalogue encoded once
            return self._eval_vectors()[ids]
        return self.items(ids)

    def _use_eval_vectors(self) -> bool:
        """Inference only: eval mode without autograd (a loss computed in eval mode must reach the item
        encoder's weights, which a cached table would cut off)."""
        return not self.training and not torch.is_grad_enabled()

    def _eval_vectors(self) -> torch.Tensor:
        """`[N+1, D]` vectors of every item (row 0: padding, zero), encoded once and reused while the
        item encoder's weights and buffers are unchanged (their in-place version counters, which
        optimiser steps, `load_state_dict` and `fit_static` all bump) and in the same storage (a dtype or
        device move makes new tensors whose counters may start where the old ones were), so that a
        validation pass or a served request only gathers."""
        key = tuple(
            (t._version, t.data_ptr(), t.dtype, t.device)
            for t in (*self.items.parameters(), *self.items.buffers())
        )
        if self._eval_table is None or self._eval_table[0] != key:
            ids = torch.arange(self.info.n_items + 1, device=self.empty.device)
            self._eval_table = (key, self.items.encode(ids))
        return self._eval_table[1]

    def loss(self, window: torch.Tensor) -> torch.Tensor:
        """Encodes every item the step touches (inputs, targets, negatives) once, then the usual loss.

        The item encoder is the costly part of a TEMA step; calling it separately for the inputs, the
        positives and the negatives of each domain would encode most items several times. With the full
        softmax (no sampled negatives for a domain) the step touches the whole domain: it is encoded once
        here too, so the head's loss, the stream losses and the inputs all see one dropout draw.
        """
        inputs, targets = shift(window)
        negatives = self.sample_negatives(window.device)
        parts = [window.reshape(-1)]
        for d, neg in enumerate(negatives):
            sl = self.info.domain_slice(d)
            parts.append(torch.arange(sl.start, sl.stop, device=window.device) if neg is None else neg)
        uniq = torch.unique(torch.cat(parts))  # sorted
        self._table = (uniq, self.items.encode(uniq))
        try:
            return self.domain_softmax_loss(self.hidden(inputs), targets, negatives)
        finally:
            self._table = None

    def domain_loss(
        self, h: torch.Tensor, targets: torch.Tensor, d: int, neg: torch.Tensor | None
    ) -> torch.Tensor:
        """The head's loss plus, with `stream_loss`, the mean loss of each stream the head reads.

        The head fuses the streams, so with its loss alone a stream need not be a good predictor by
        itself; this deep supervision asks each one to be (as C2DSR and ABXI train their per-domain and
        cross-domain sequence encoders with losses of their own).
        """
        loss = super().domain_loss(h, targets, d, neg)
        if self.cfg.stream_loss > 0:
            keep = self._head_streams(d, h.shape[-2])
            s = h[:, keep].reshape(-1, h.shape[-1])  # every stream's state as a row: one softmax for all
            aux = self.softmax_ce(s, targets.repeat_interleave(len(keep)), d, neg) / len(keep)
            loss = loss + self.cfg.stream_loss * aux
        return loss

    def item_vectors(self, domain: int) -> torch.Tensor:
        sl = self.info.domain_slice(domain)
        if self._table is not None:  # inside `loss`: the whole domain is a contiguous run of the sorted table
            uniq, vec = self._table
            start = int(torch.searchsorted(uniq, torch.tensor(sl.start, device=uniq.device)))
            return vec[start : start + sl.stop - sl.start]
        if self._use_eval_vectors():
            return self._eval_vectors()[sl]
        return self.items(torch.arange(sl.start, sl.stop, device=self.empty.device))

    def train(self, mode: bool = True):
        if mode:
            self._eval_table = None  # training changes the weights: the table goes stale, free it
        return super().train(mode)

    # ---- users ------------------------------------------------------------------------------------
    def _intra_states(self, seq: torch.Tensor, d: int, x: torch.Tensor | None = None) -> torch.Tensor:
        """State of the domain-`d` encoder after the last `d` item at or before each mixed position.

        By default (`intra_positions="mixed"`) the encoder reads the mixed window with the other domain's
        items masked as padding, so every item keeps its mixed position and no state depends on a later
        item. With `"compact"` it reads `d`'s subsequence right-aligned, as sasrec-single does: the last
        `d` item always sits in the last slot, but in training an item's slot counts the `d` items after
        it (never which they are, as in SASRec). Leading columns with no `d` item in any row are dropped;
        positions count from the right, so that changes nothing. `x` (the mixed sequence's item vectors)
        is reused.
        """
        keep = (seq > 0) & (self.item_domain[seq] == d)
        n = seq.shape[1]
        if x is None:
            x = self.embed(seq)
        tokens, vecs = torch.where(keep, seq, 0), x * keep.unsqueeze(-1)
        if self.cfg.intra_positions == "compact":
            order = compact_order(keep)
            tokens, vecs = tokens.gather(1, order), vecs.gather(1, order.unsqueeze(-1).expand_as(vecs))
            after = keep.flip(1).cumsum(1).flip(1) - keep.long()  # d items strictly after each position
            slot = n - 1 - after  # where the last d item at or before each position sits
        else:
            pos = torch.arange(n, device=seq.device)
            slot = torch.where(keep, pos, -1).cummax(dim=1).values
        any_col = (tokens > 0).any(0)
        start = int(any_col.float().argmax()) if bool(any_col.any()) else n - 1
        h = self.intra[d](vecs[:, start:], tokens[:, start:])  # [B, n - start, D]
        idx = (slot - start).clamp_min(0)
        out = h.gather(1, idx.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
        seen = keep.cummax(dim=1).values  # a d item at or before the position
        return torch.where(seen.unsqueeze(-1), out, self.empty)

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        """`[B, L, K, D]`: the K attention streams (cross, intra A, intra B, tags) at every position."""
        streams = []
        x = self.embed(seq)
        if self.cross is not None:
            streams.append(self.cross(x, seq))
        if self.intra is not None:
            streams += [self._intra_states(seq, 0, x), self._intra_states(seq, 1, x)]
        if self.tag_att is not None:
            tf = self.items.tags
            kt = self.cfg.history_tags
            tids = tf.tag_ids[seq][..., :kt]
            valid = tf.tag_valid[seq][..., :kt] & (seq > 0).unsqueeze(-1)
            query = streams[0]
            vec, inv = tf.distinct_tag_vectors(tids)
            streams.append(query + self.tag_att(query, vec, inv.view(tids.shape), valid))
        return torch.stack(streams, dim=-2)

    def _head_streams(self, domain: int, k: int) -> list[int]:
        """Indices of the streams (of `k`) that feed `domain`'s head: not the other domain's intra one."""
        keep = list(range(k))
        if self.intra is not None:
            base = 1 if self.cross is not None else 0
            keep.remove(base + (1 - domain))
        return keep

    def head(self, h: torch.Tensor, domain: int) -> torch.Tensor:
        """Higher-level attention: a learned query per target domain over that domain's streams."""
        s = h[..., self._head_streams(domain, h.shape[-2]), :]
        logits = (self.fuse_k(s) * self.fuse_q[domain]).sum(-1) / math.sqrt(s.shape[-1])
        u = (torch.softmax(logits, dim=-1).unsqueeze(-1) * s).sum(-2)
        return u if self.heads_out is None else u + self.heads_out[domain](u)
