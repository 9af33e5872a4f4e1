"""Negative candidates for sampled ranking, drawn once from a seed and stored next to the split.

Every model is then ranked against exactly the same items. Sampling is uniform without replacement
over the target domain, excluding the positive and (by default) every item the user interacted with.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from temarec.data.dataset import DatasetInfo
from temarec.data.splits import EvalSet


def domain_exclusion(es: EvalSet, rows: np.ndarray, info: DatasetInfo, d: int, history: bool):
    """(row position in `rows`, local item index) pairs that may not be negatives: positive + history."""
    pos_r = np.arange(len(rows), dtype=np.int64)
    pos_c = es.target[rows] - info.domain_offset[d]
    if not history:
        return pos_r, pos_c
    sub = es.exclude.take(rows)
    r = sub.row_ids()
    v = sub.values
    keep = info.item_domain[v] == d
    return np.concatenate([pos_r, r[keep]]), np.concatenate([pos_c, v[keep] - info.domain_offset[d]])


def sample_negatives(
    es: EvalSet,
    info: DatasetInfo,
    n_neg: int,
    seed: int,
    exclude_history: bool = True,
    chunk: int = 512,
) -> np.ndarray:
    """[n, n_neg] global ids. Random keys per (instance, item), excluded items pushed out, smallest kept."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(es), n_neg), dtype=np.int64)
    for d in (0, 1):
        idx = np.flatnonzero(es.target_domain == d)
        size = info.domain_size[d]
        for start in range(0, len(idx), chunk):
            rows = idx[start : start + chunk]
            keys = rng.random((len(rows), size), dtype=np.float32)
            r, c = domain_exclusion(es, rows, info, d, exclude_history)
            keys[r, c] = 2.0
            eligible = (keys < 2.0).sum(1)
            if eligible.min() < n_neg:
                bad = int(rows[np.argmin(eligible)])
                raise ValueError(
                    f"instance {bad} (user {es.users[bad]}) has only {eligible.min()} eligible negatives "
                    f"in domain {info.domains[d]}, fewer than {n_neg}"
                )
            pick = np.argpartition(keys, n_neg - 1, axis=1)[:, :n_neg]
            out[rows] = np.sort(pick, axis=1) + info.domain_offset[d]
    return out


def candidates_path(root: Path, dataset_key: str, split: str, part: str, n_neg: int, seed: int, hist: bool):
    tag = "hist" if hist else "nohist"
    return root / "candidates" / dataset_key / f"{split}-{part}-uni{n_neg}-seed{seed}-{tag}.npy"


def load_or_sample(
    path: Path, es: EvalSet, info: DatasetInfo, n_neg: int, seed: int, exclude_history: bool
) -> np.ndarray:
    """The stored candidate set at `path`, or a fresh one written there atomically."""
    if path.is_file():
        cands = np.load(path, allow_pickle=False)
        if cands.shape == (len(es), n_neg):
            return cands
    cands = sample_negatives(es, info, n_neg, seed, exclude_history)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        np.save(fh, cands, allow_pickle=False)
    os.replace(tmp, path)
    return cands
