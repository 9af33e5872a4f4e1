"""Top-k next items per domain for given users, excluding what they already have."""

from __future__ import annotations

import numpy as np
import torch

from temarec.data.dataset import CDDataset
from temarec.models.base import RecModel


@torch.no_grad()
def recommend(
    model: RecModel, ds: CDDataset, users: np.ndarray, domain: int, k: int = 10, max_len: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """`[n, k]` global item ids and scores for each user's next item in `domain` (history excluded)."""
    model.eval()
    info = ds.info()
    hist = ds.sequences.take(np.asarray(users))
    seq = torch.from_numpy(hist.padded(max_len))
    scores = model.score_all(seq, domain).float().clone()
    r, v = hist.row_ids(), hist.values
    keep = info.item_domain[v] == domain
    scores[torch.from_numpy(r[keep]), torch.from_numpy(v[keep] - info.domain_offset[domain])] = float("-inf")
    top = scores.topk(min(k, scores.shape[1]), dim=1)
    return top.indices.numpy() + info.domain_offset[domain], top.values.numpy()
