"""Tie-aware ranks and the ranking metrics of the protocol (HR@k, NDCG@k, MRR)."""

from __future__ import annotations

import numpy as np
import torch

TIES = ("pessimistic", "half")
HR_KS = (1, 5, 10)
NDCG_KS = (5, 10)
METRICS = tuple(f"HR@{k}" for k in HR_KS) + tuple(f"NDCG@{k}" for k in NDCG_KS) + ("MRR",)


def rank_of_positive(
    pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor | None = None, ties: str = "pessimistic"
) -> torch.Tensor:
    """1 + #(negatives above the positive) + ties (all of them, or half). Float ranks, shape [B].

    Ties count against the positive so that a constant-score model ranks last, not first.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}")
    if torch.isnan(pos).any() or torch.isnan(neg).any():
        raise ValueError("model produced NaN scores")
    above = neg > pos[:, None]
    equal = neg == pos[:, None]
    if valid is not None:
        above &= valid
        equal &= valid
    tie_w = 1.0 if ties == "pessimistic" else 0.5
    return 1.0 + above.sum(1).double() + tie_w * equal.sum(1).double()


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, float]:
    """Mean HR@k, NDCG@k (one relevant item: 1/log2(rank+1) if rank <= k) and MRR over instances."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if len(ranks) == 0:
        return {m: float("nan") for m in METRICS} | {"n": 0}
    out: dict[str, float] = {}
    for k in HR_KS:
        out[f"HR@{k}"] = float((ranks <= k).mean())
    for k in NDCG_KS:
        out[f"NDCG@{k}"] = float(np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0).mean())
    out["MRR"] = float((1.0 / ranks).mean())
    out["n"] = int(len(ranks))
    return out
