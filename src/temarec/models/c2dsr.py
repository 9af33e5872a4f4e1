"""C2DSR (Cao et al., CIKM 2022): graph-propagated items, shared + specific encoders, contrastive infomax.

Written from the paper's description:

- Item side. Two item graphs are built from the training sequences only (`fit_static`): a mixed graph
  linking items adjacent in a user's mixed sequence, and a domain graph linking items adjacent in a
  user's single-domain subsequence (the A and B graphs never share an edge, so they are kept as one
  block-diagonal matrix and propagated in one product). One ID table is propagated over each graph with
  the symmetric normalised adjacency, LightGCN-style (mean of the layer outputs, no weights), giving a
  mixed view and a domain view of every item. The domain view is also the output side (tied).
- User side. Three SASRec encoders: one over the mixed sequence (mixed view), and one per domain over that
  domain's subsequence (domain view). The state for target domain d at a mixed position is
  `h_mixed + h_d`, where `h_d` is the domain-d state after the last d item at or before that position;
  it is scored against domain d's items and trained with softmax cross-entropy at every position whose
  next item is in d (sampled when `softmax_negatives` > 0).
- Contrastive infomax. A bilinear discriminator per domain tells the pooled single-domain representation
  of a user apart from pooled mixed representations: positive, the user's own mixed sequence; negative,
  the same sequence with its d items replaced by random d items, so that only d-information separates
  them and the mixed encoder has to carry what the domain encoder knows. The corrupted copies cost a
  mixed-encoder pass of their own, so a step encodes them for a random half of the batch only, each row
  corrupting one of its domains (at random when it has both): about 3.5 encoder passes a step instead of
  5 for every row and domain. BCE with logits, weighted by `c2dsr_lambda`.

Defaults: `c2dsr_lambda` = 0.3, added to the next-item loss (not a convex mix): the BCE term starts near
2 x log 2 against a cross-entropy of log(catalogue size), so at 0.3 it shapes the representations
without outweighing the ranking objective. The paper treats this weight as a per-dataset
hyperparameter; tune it rather than trust 0.3. `c2dsr_graph_layers` = 2, the usual depth of
LightGCN-style propagation on sparse item graphs (deeper smooths the item vectors towards each other).

Positions: the domain encoders read their domain's items in place in the mixed window (the other domain's
items are masked as padding), so an item's positional embedding is its place in the mixed timeline.
Compacting the subsequence would make positions count from its end, and the state at a position would
then depend on how many same-domain items come later (information from the future in training).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from temarec.config import ModelConfig
from temarec.data.dataset import DatasetInfo
from temarec.data.ragged import Ragged
from temarec.models.base import DotModel, shift
from temarec.models.sasrec import SASRecEncoder

NEG_FRACTION = 0.5  # share of a batch whose corrupted copy is encoded: the infomax term's extra cost


def adjacent_pairs(values: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive values that belong to the same group (values in sequence order within each group)."""
    same = group[1:] == group[:-1]
    return values[:-1][same], values[1:][same]


def normalized_adjacency(src: np.ndarray, dst: np.ndarray, n: int) -> torch.Tensor:
    """`D^-1/2 A D^-1/2` of the undirected, unweighted graph on `n` nodes with these edges (no self-loops).

    Unweighted: a pair that many users share counts once, so that popular transitions do not swamp the
    propagation; isolated nodes (items absent from training, padding) keep an all-zero row.
    """
    keep = src != dst
    src, dst = src[keep].astype(np.int64), dst[keep].astype(np.int64)
    key = np.unique(np.concatenate([src * n + dst, dst * n + src]))  # sorted: row-major, coalesced
    row, col = key // n, key % n
    deg = np.bincount(row, minlength=n).astype(np.float64)
    weight = (deg[row] * deg[col]) ** -0.5
    index = torch.from_numpy(np.stack([row, col]))
    return torch.sparse_coo_tensor(
        index, torch.from_numpy(weight.astype(np.float32)), (n, n), is_coalesced=True, check_invariants=False
    )


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`[B, D]` mean of `[B, L, D]` over the positions where `mask` `[B, L]` holds (zeros if none)."""
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


def trim(seq: torch.Tensor) -> torch.Tensor:
    """Drop the leading columns that are padding in every row; right-aligned positions make this exact."""
    n = max(int((seq > 0).sum(1).max()), 1) if seq.numel() else 1
    return seq[:, -n:]


class C2DSR(DotModel):
    name = "c2dsr"

    def __init__(self, info: DatasetInfo, cfg: ModelConfig, max_len: int = 50):
        super().__init__(info, cfg)
        dim = cfg.hidden
        enc = lambda: SASRecEncoder(dim, max_len, cfg.layers, cfg.heads, cfg.dropout)  # noqa: E731
        self.mixed = enc()
        self.domain_enc = nn.ModuleList(enc() for _ in range(2))
        self.empty = nn.Parameter(torch.zeros(dim))  # domain state before the first item of that domain
        self.heads = nn.ModuleList(nn.Linear(dim, dim) for _ in range(2))
        self.disc = nn.ModuleList(nn.Bilinear(dim, dim, 1) for _ in range(2))
        # derived from the training data by `fit_static`, never saved: rebuilt before weights are loaded
        self.register_buffer("adj_mix", None, persistent=False)
        self.register_buffer("adj_dom", None, persistent=False)
        self.register_buffer(
            "domain_offsets", torch.tensor(info.domain_offset, dtype=torch.long), persistent=False
        )
        self.register_buffer(
            "domain_sizes", torch.tensor(info.domain_size, dtype=torch.long), persistent=False
        )
        self._step: tuple[torch.Tensor, torch.Tensor] | None = None  # item tables shared within one `loss`
        self._cache: tuple[tuple, tuple[torch.Tensor, torch.Tensor]] | None = None

    # ---- item graphs --------------------------------------------------------------------------------
    def fit_static(self, train: Ragged) -> None:
        """Mixed and domain item graphs from the training sequences only (valid/test items add no edge)."""
        super().fit_static(train)  # training-negative pool (`negatives`)
        values, rows = train.values, train.row_ids()
        n = self.info.n_items + 1
        mix = normalized_adjacency(*adjacent_pairs(values, rows), n)
        # both domains' subsequences at once: a stable sort by (row, domain) keeps the order inside each
        group = rows * 2 + self.info.item_domain[values].astype(np.int64)
        order = np.argsort(group, kind="stable")
        dom = normalized_adjacency(*adjacent_pairs(values[order], group[order]), n)
        device = self.item_emb.weight.device
        self.adj_mix, self.adj_dom = mix.to(device), dom.to(device)
        self._cache = None

    def _propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """`(mixed view, domain view)` `[N+1, D]` of every item: mean of the propagation layers."""
        if self.adj_mix is None or self.adj_dom is None:
            raise RuntimeError("c2dsr builds its item graphs in fit_static(train): call it before use")
        e = self.item_emb.weight
        out = []
        for adj in (self.adj_mix, self.adj_dom):
            x, total = e, e
            for _ in range(self.cfg.c2dsr_graph_layers):
                x = torch.sparse.mm(adj.to(x.dtype), x)
                total = total + x
            out.append(total / (self.cfg.c2dsr_graph_layers + 1))
        return out[0], out[1]

    def _tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagated item tables: once per training step, and cached for evaluation until weights change."""
        if self._step is not None:
            return self._step
        if self.training or torch.is_grad_enabled():
            return self._propagate()
        w = self.item_emb.weight
        key = (w.data_ptr(), w._version, w.dtype)  # an optimiser step or load_state_dict bumps _version
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._propagate())
        return self._cache[1]

    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Domain-view vectors: the domain encoders' inputs and the output side of the scores."""
        return self._tables()[1][ids]

    def item_vectors(self, domain: int) -> torch.Tensor:
        return self._tables()[1][self.info.domain_slice(domain)]

    # ---- users --------------------------------------------------------------------------------------
    def _domain_states(
        self, seq: torch.Tensor, d: int, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(state after the last d item at or before each position, raw encoder output, d-item mask)`.

        `x` are the domain-view vectors of `seq`; the other domain's items are masked as padding.
        """
        keep = (seq > 0) & (self.item_domain[seq] == d)
        h = self.domain_enc[d](x, torch.where(keep, seq, 0))
        pos = torch.arange(seq.shape[1], device=seq.device).expand_as(seq)
        last = torch.where(keep, pos, -1).cummax(1).values
        filled = h.gather(1, last.clamp_min(0).unsqueeze(-1).expand_as(h))
        return torch.where((last >= 0).unsqueeze(-1), filled, self.empty), h, keep

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        """`[B, L, 3, D]`: the mixed state and the A and B states at every position."""
        mix, dom = self._tables()
        xd = dom[seq]
        states = [self.mixed(mix[seq], seq)] + [self._domain_states(seq, d, xd)[0] for d in (0, 1)]
        return torch.stack(states, dim=-2)

    def _combine(self, h_mixed: torch.Tensor, h_domain: torch.Tensor, domain: int) -> torch.Tensor:
        u = h_mixed + h_domain  # shared + specific preference
        return u + self.heads[domain](u)

    def head(self, h: torch.Tensor, domain: int) -> torch.Tensor:
        return self._combine(h[..., 0, :], h[..., 1 + domain, :], domain)

    def user_state(self, seq: torch.Tensor, domain: int) -> torch.Tensor:
        """Only the mixed and the target domain's encoders run, over the non-padded tail."""
        seq = trim(seq)
        mix, dom = self._tables()
        h_mixed = self.mixed(mix[seq], seq)[:, -1]
        return self._combine(h_mixed, self._domain_states(seq, domain, dom[seq])[0][:, -1], domain)

    # ---- training -----------------------------------------------------------------------------------
    def _corrupt(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(seq with one domain's items replaced by random items of that domain, that domain per row)`.

        A row corrupts a domain it has (either, at random, when it has both); an empty row stays as is.
        """
        valid = seq > 0
        dom = self.item_domain[seq]
        has_a, has_b = (valid & (dom == 0)).any(1), (valid & (dom == 1)).any(1)
        coin = torch.rand(seq.shape[0], device=seq.device) < 0.5
        which = torch.where(has_a & has_b, coin, has_b).long()
        replace = valid & (dom == which.unsqueeze(1))
        size, offset = self.domain_sizes[which].unsqueeze(1), self.domain_offsets[which].unsqueeze(1)
        rand = (torch.rand(seq.shape, device=seq.device) * size).long().clamp_max(size - 1) + offset
        return torch.where(replace, rand, seq), which

    def _infomax(
        self,
        h_mixed: torch.Tensor,
        h_corrupt: torch.Tensor,
        domain_states: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
        seq: torch.Tensor,
        neg_rows: torch.Tensor,
        which: torch.Tensor,
    ) -> torch.Tensor:
        """Sum over domains of the discriminator's BCE on (summary, own mixed) vs (summary, corrupted).

        `h_corrupt` encodes `seq[neg_rows]` with domain `which` corrupted; positives and negatives weigh
        half each, whatever their counts.
        """
        valid = seq > 0
        m, mc = masked_mean(h_mixed, valid), masked_mean(h_corrupt, valid[neg_rows])
        total = h_mixed.new_zeros(())
        for d, (_, raw, keep) in enumerate(domain_states):
            rows = keep.any(1)
            s = masked_mean(raw, keep)
            pos = self.disc[d](s[rows], m[rows]).squeeze(-1)
            sel = rows[neg_rows] & (which == d)
            neg = self.disc[d](s[neg_rows][sel], mc[sel]).squeeze(-1)
            if len(pos):
                total = total + 0.5 * F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
            if len(neg):
                total = total + 0.5 * F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
        return total

    def loss(self, window: torch.Tensor) -> torch.Tensor:
        """Next-item cross-entropy per target domain, plus `c2dsr_lambda` x the infomax term."""
        inputs, targets = shift(window)
        inputs = trim(inputs)
        targets = targets[:, -inputs.shape[1] :]
        lam = self.cfg.c2dsr_lambda
        self._step = self._propagate()
        try:
            mix, dom = self._step
            b = inputs.shape[0]
            if lam > 0:  # the corrupted copies go through the mixed encoder in the same call
                neg_rows = torch.randperm(b, device=inputs.device)[: max(int(b * NEG_FRACTION), 1)]
                corrupt, which = self._corrupt(inputs[neg_rows])
                both = torch.cat([inputs, corrupt])
                h_both = self.mixed(mix[both], both)
                h_mixed, h_corrupt = h_both[:b], h_both[b:]
            else:
                h_mixed = self.mixed(mix[inputs], inputs)
            xd = dom[inputs]
            states = [self._domain_states(inputs, d, xd) for d in (0, 1)]
            h = torch.stack([h_mixed, states[0][0], states[1][0]], dim=-2)
            loss = self.domain_softmax_loss(h, targets)
            if lam > 0:
                loss = loss + lam * self._infomax(h_mixed, h_corrupt, states, inputs, neg_rows, which)
            return loss
        finally:
            self._step = None
