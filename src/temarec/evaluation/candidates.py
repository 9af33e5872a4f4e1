"""Negative candidates for sampled ranking, drawn once from a seed and stored next to the split.

Every model is then ranked against exactly the same items. Sampling is uniform without replacement
over the target domain, excluding the positive and (by default) every item the user interacted with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from temarec.data.dataset import DatasetInfo
from temarec.data.splits import EvalSet
from temarec.files import atomic_write


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


class TooFewNegativesError(ValueError):
    """A user has fewer items of the target domain left to draw from than the protocol's N."""

    def __init__(
        self,
        user: int,
        eligible: int,
        domain: str,
        n_neg: int,
        exclude_history: bool,
        domain_size: int,
        user_key: str | None = None,
    ) -> None:
        self.user, self.eligible, self.domain, self.n_neg = user, eligible, domain, n_neg
        self.exclude_history, self.domain_size = exclude_history, domain_size
        if not exclude_history or eligible >= domain_size - 1:  # the domain itself is too small
            msg = (
                f"uni{n_neg}: domain {domain} has only {domain_size} items, so {eligible} negatives besides "
                f"the target; use uniN with N at most {domain_size - 1}, or full"
            )
        else:
            who = f"user {user_key!r}" if user_key is not None else f"user number {user}"
            msg = (
                f"uni{n_neg}: {who} has only {eligible} items of domain {domain} left to draw negatives "
                f"from (the domain's {domain_size} items, less the target and the user's history), fewer "
                f"than {n_neg}; use uniN with N at most {eligible}, or eval.exclude_history=false"
            )
        super().__init__(msg)

    def naming(self, user_key: str) -> TooFewNegativesError:
        """The same error naming the user by key (the dataset's, which this module does not see)."""
        return TooFewNegativesError(
            self.user,
            self.eligible,
            self.domain,
            self.n_neg,
            self.exclude_history,
            self.domain_size,
            user_key,
        )


def sample_negatives(
    es: EvalSet,
    info: DatasetInfo,
    n_neg: int,
    seed: int,
    exclude_history: bool = True,
    chunk: int = 512,
    stream: int = 0,
) -> np.ndarray:
    """[n, n_neg] global ids. Random keys per (instance, item), excluded items pushed out, smallest kept.

    `stream` picks an independent random stream of the same seed: validation draws from stream 1, so
    that its negatives are not the test draw's again (stream 0, `default_rng(seed)`, as it always was).
    """
    rng = np.random.default_rng(seed if stream == 0 else [seed, stream])
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
                raise TooFewNegativesError(
                    int(es.users[bad]),
                    int(eligible.min()),
                    info.domains[d],
                    n_neg,
                    exclude_history,
                    int(size),
                )
            pick = np.argpartition(keys, n_neg - 1, axis=1)[:, :n_neg]
            out[rows] = np.sort(pick, axis=1) + info.domain_offset[d]
    return out


#: how each part's draw is made, in its file name: validation's second rule (session 19) excludes only
#: what came before its target (the first also excluded the test item) and has its own random stream
PART_DRAW = {"valid": ("valid-v2", 1), "test": ("test", 0)}


def candidates_path(root: Path, dataset_key: str, split: str, part: str, n_neg: int, seed: int, hist: bool):
    tag = "hist" if hist else "nohist"
    label = PART_DRAW[part][0]
    return root / "candidates" / dataset_key / f"{split}-{label}-uni{n_neg}-seed{seed}-{tag}.npy"


def load_or_sample(
    path: Path,
    es: EvalSet,
    info: DatasetInfo,
    n_neg: int,
    seed: int,
    exclude_history: bool,
    part: str = "test",
) -> np.ndarray:
    """The stored candidate set at `path`, or a fresh one (from `part`'s stream) written atomically."""
    if path.is_file():
        cands = np.load(path, allow_pickle=False)
        if cands.shape == (len(es), n_neg):
            return cands
    cands = sample_negatives(es, info, n_neg, seed, exclude_history, stream=PART_DRAW[part][1])

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, cands, allow_pickle=False)

    atomic_write(path, write)
    return cands
