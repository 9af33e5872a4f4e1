"""One interface for every model: a loss, scores for given candidates, scores for all items of a domain.

Sequences are LongTensors `[B, L]` of global item ids, left-padded with 0, latest item last.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from temarec.config import ModelConfig
from temarec.data.dataset import DatasetInfo
from temarec.data.ragged import Ragged


class RecModel(nn.Module):
    """Base of all models. Non-trainable models (`pop`) override `fit_static` and set `trainable`."""

    name: ClassVar[str] = "base"
    trainable: ClassVar[bool] = True
    scores_unseen_items: ClassVar[bool] = False  # True: items never seen in training get content vectors

    def __init__(self, info: DatasetInfo, cfg: ModelConfig):
        super().__init__()
        self.info = info
        self.cfg = cfg
        self.register_buffer(
            "item_domain", torch.from_numpy(info.item_domain.astype(np.int64)), persistent=False
        )

    def fit_static(self, train: Ragged) -> None:
        """Statistics-only models learn here; trainable ones ignore it."""

    def loss(self, window: torch.Tensor) -> torch.Tensor:
        """Mean next-item loss over a `[B, L+1]` window of training sequences."""
        raise NotImplementedError

    def score_all(self, seq: torch.Tensor, domain: int) -> torch.Tensor:
        """`[B, n_domain]` scores of every item of `domain` (local order)."""
        raise NotImplementedError

    def score_all_domains(self, seq: torch.Tensor, domains: list[int]) -> list[torch.Tensor]:
        """`score_all` of each of `domains` for the same sequences (serving asks for every domain at
        once; models whose domains share an encoder override it to encode the history once)."""
        return [self.score_all(seq, d) for d in domains]

    def score_candidates(self, seq: torch.Tensor, domain: int, candidates: torch.Tensor) -> torch.Tensor:
        """`[B, C]` scores of the given global item ids (all from `domain`)."""
        local = candidates - self.info.domain_offset[domain]
        return self.score_all(seq, domain).gather(1, local)


def shift(window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-item targets of a left-padded window; targets are 0 where there is no input."""
    inputs, targets = window[:, :-1], window[:, 1:]
    return inputs, targets.masked_fill(inputs == 0, 0)


def compact_order(keep: torch.Tensor) -> torch.Tensor:
    """Column order that moves the kept entries of each row to the right, in order (a stable sort)."""
    return torch.sort(keep.to(torch.int8), dim=1, stable=True).indices


def domain_subsequence(seq: torch.Tensor, item_domain: torch.Tensor, d: int) -> torch.Tensor:
    """The items of domain `d` only, still left-padded and in order (no loop)."""
    keep = (seq > 0) & (item_domain[seq] == d)
    return torch.where(keep, seq, 0).gather(1, compact_order(keep))


class DotModel(RecModel):
    """Models whose score is `<user state for domain d, item vector>`; they implement `hidden` + `head`."""

    def __init__(self, info: DatasetInfo, cfg: ModelConfig):
        super().__init__(info, cfg)
        self.item_emb = nn.Embedding(info.n_items + 1, cfg.hidden, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=cfg.hidden**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def hidden(self, seq: torch.Tensor) -> torch.Tensor:
        """`[B, L, D]` states, one per position."""
        raise NotImplementedError

    def head(self, h: torch.Tensor, domain: int) -> torch.Tensor:
        return h

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Item vectors of any-shaped global ids (0 = padding); both the input and output side use it."""
        return self.item_emb(ids)

    def item_vectors(self, domain: int) -> torch.Tensor:
        """`[n_domain, D]` vectors of every item of `domain`, in local order."""
        return self.item_emb.weight[self.info.domain_slice(domain)]

    def user_state(self, seq: torch.Tensor, domain: int) -> torch.Tensor:
        return self.head(self.hidden(seq)[:, -1], domain)

    def score_all(self, seq: torch.Tensor, domain: int) -> torch.Tensor:
        return self.user_state(seq, domain) @ self.item_vectors(domain).T

    def score_all_domains(self, seq: torch.Tensor, domains: list[int]) -> list[torch.Tensor]:
        """One pass of `hidden` for every domain's scores, unless a subclass changed how a domain's
        user state or scores are made (then the per-domain path, which is what it defines)."""
        cls = type(self)
        if cls.user_state is not DotModel.user_state or cls.score_all is not DotModel.score_all:
            return super().score_all_domains(seq, domains)
        last = self.hidden(seq)[:, -1]
        return [self.head(last, d) @ self.item_vectors(d).T for d in domains]

    def score_candidates(self, seq: torch.Tensor, domain: int, candidates: torch.Tensor) -> torch.Tensor:
        u = self.user_state(seq, domain)
        return torch.einsum("bd,bcd->bc", u, self.embed(candidates))

    def loss(self, window: torch.Tensor) -> torch.Tensor:
        inputs, targets = shift(window)
        return self.domain_softmax_loss(self.hidden(inputs), targets)

    def fit_static(self, train: Ragged) -> None:
        """Record the items seen in training: with `negatives=seen` only they are trained as negatives."""
        mode = self.cfg.negatives
        if mode == "auto":
            mode = "seen" if self.scores_unseen_items else "all"
        self._neg_pool: list[torch.Tensor | None] = [None, None]
        self._pool_pos: list[torch.Tensor | None] = [None, None]  # domain-local id -> column, -1: not in pool
        if mode == "seen":
            seen = np.unique(train.values[train.values > 0])
            dom = self.info.item_domain[seen]
            dev = self.item_domain.device
            self._neg_pool = [torch.from_numpy(seen[dom == d]).to(dev) for d in (0, 1)]
            for d, pool in enumerate(self._neg_pool):
                pos = torch.full((self.info.domain_size[d],), -1, dtype=torch.long, device=dev)
                pos[pool - self.info.domain_offset[d]] = torch.arange(len(pool), device=dev)
                self._pool_pos[d] = pos

    def sample_negatives(self, device: torch.device) -> list[torch.Tensor | None]:
        """Per domain, the shared negatives of a sampled softmax (global ids), or None for the full one.

        Uniform over the domain's items, or over those seen in training (`negatives=seen`): an item that
        never occurs in training is otherwise only ever a negative, and a model that scores it from content
        learns to bury every item that looks new.
        """
        k = self.cfg.softmax_negatives
        pools = getattr(self, "_neg_pool", [None, None])
        out: list[torch.Tensor | None] = []
        for d in (0, 1):
            pool = pools[d]
            size = self.info.domain_size[d] if pool is None else len(pool)
            if k <= 0 or k >= size:
                out.append(None)
            elif pool is None:
                out.append(torch.randint(0, size, (k,), device=device) + self.info.domain_offset[d])
            else:
                out.append(pool[torch.randint(0, size, (k,), device=pool.device)].to(device))
        return out

    def domain_softmax_loss(
        self, h: torch.Tensor, targets: torch.Tensor, negatives: list[torch.Tensor | None] | None = None
    ) -> torch.Tensor:
        """Cross-entropy over the target's domain only, at every position that has a target."""
        tdom = self.item_domain[targets]
        total, count = h.new_zeros(()), 0
        for d in (0, 1):
            mask = (targets > 0) & (tdom == d)
            n = int(mask.sum())
            if n == 0:
                continue
            neg = None if negatives is None else negatives[d]
            total = total + self.domain_loss(h[mask], targets[mask], d, neg)
            count += n
        return total / max(count, 1)

    def domain_loss(
        self, h: torch.Tensor, targets: torch.Tensor, d: int, neg: torch.Tensor | None
    ) -> torch.Tensor:
        """Summed loss of the states `h` whose targets are in domain `d`; a model adds its own terms here."""
        return self.softmax_ce(self.head(h, d), targets, d, neg)

    def softmax_ce(
        self, u: torch.Tensor, targets: torch.Tensor, d: int, neg: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Summed cross-entropy of `[n, D]` states against domain `d`: full, or sampled when configured.

        The sampled form shares `softmax_negatives` uniform negatives across the batch (a negative equal
        to the positive is masked); it trades a little accuracy for speed on large catalogues.
        """
        if neg is None:
            neg = self.sample_negatives(u.device)[d]
        if neg is None:
            vectors, local = self.item_vectors(d), targets - self.info.domain_offset[d]
            pool = getattr(self, "_neg_pool", [None, None])[d]
            if pool is not None:  # negatives=seen: items never seen in training are left out of the softmax
                # (scoring only the pool's columns: the same loss as masking the others, without their cost)
                local = self._pool_pos[d][local]
                if bool((local < 0).any()):
                    raise ValueError(
                        "a training target was not seen in training (fit_static on another split?)"
                    )
                vectors = vectors[pool - self.info.domain_offset[d]]
            return F.cross_entropy(u @ vectors.T, local, reduction="sum")
        pos_logit = (u * self.embed(targets)).sum(-1, keepdim=True)
        neg_logit = (u @ self.embed(neg).T).masked_fill(neg[None, :] == targets[:, None], float("-inf"))
        logits = torch.cat([pos_logit, neg_logit], dim=1)
        return F.cross_entropy(logits, torch.zeros_like(targets), reduction="sum")
