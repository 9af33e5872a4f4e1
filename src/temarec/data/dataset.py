"""The in-memory model of a two-domain dataset.

Items carry one global id in `1..N` (0 is padding). Domain A's items come first (`1..nA`), then domain
B's (`nA+1..N`), so "all items of a domain" is a contiguous slice of any embedding table. Every loader
maps its source ids onto this scheme and keeps the source key in `items["key"]`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from temarec.data.ragged import Ragged

ITEM_COLUMNS = ("key", "domain", "title", "description", "image")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about the catalogue (no text, no users)."""

    name: str
    domains: tuple[str, str]
    n_items: int  # N; ids 1..N, 0 = padding
    domain_offset: tuple[int, int]  # first global id of each domain
    domain_size: tuple[int, int]
    item_domain: np.ndarray = field(repr=False)  # int8 [N+1]; -1 for padding

    def domain_slice(self, d: int) -> slice:
        return slice(self.domain_offset[d], self.domain_offset[d] + self.domain_size[d])


@dataclass
class CDDataset:
    """Items of two domains and, per user, one time-ordered mixed sequence of global item ids."""

    name: str
    domains: tuple[str, str]
    items: pd.DataFrame  # index: global item id 1..N; columns ITEM_COLUMNS
    user_keys: np.ndarray  # str [n_users]
    sequences: Ragged  # per user, global item ids in time order (ties keep file order)
    timestamps: Ragged | None = None  # same shape as sequences, unix seconds or positions
    published_split: object | None = None  # temarec.data.splits.Split, when the source ships one
    source: str = ""
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        items = self.items
        n = len(items)
        if not np.array_equal(items.index.to_numpy(), np.arange(1, n + 1)):
            raise ValueError(f"{self.name}: item ids must be exactly 1..{n}")
        dom = items["domain"].to_numpy()
        if not set(np.unique(dom)).issubset({0, 1}):
            raise ValueError(f"{self.name}: item domain must be 0 or 1")
        if np.any(np.diff(dom) < 0):
            raise ValueError(f"{self.name}: domain A items must come before domain B items")
        if len(self.sequences.values) and (
            self.sequences.values.min() < 1 or self.sequences.values.max() > n
        ):
            raise ValueError(f"{self.name}: interaction item id outside 1..{n}")
        if len(self.user_keys) != len(self.sequences):
            raise ValueError(f"{self.name}: one sequence per user expected")
        for col in ITEM_COLUMNS:
            if col not in items.columns:
                items[col] = None

    # ---- catalogue -------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.user_keys)

    @property
    def item_domain(self) -> np.ndarray:
        out = np.full(self.n_items + 1, -1, dtype=np.int8)
        out[1:] = self.items["domain"].to_numpy(dtype=np.int8)
        return out

    def info(self) -> DatasetInfo:
        dom = self.items["domain"].to_numpy()
        n_a = int((dom == 0).sum())
        return DatasetInfo(
            name=self.name,
            domains=self.domains,
            n_items=self.n_items,
            domain_offset=(1, 1 + n_a),
            domain_size=(n_a, self.n_items - n_a),
            item_domain=self.item_domain,
        )

    def fingerprint(self) -> str:
        """A short content hash: caches keyed by it go stale when the data changes."""
        h = hashlib.sha256()
        h.update(self.name.encode())
        h.update(self.items["domain"].to_numpy(dtype=np.int8).tobytes())
        h.update(self.sequences.offsets.tobytes())
        h.update(self.sequences.values.tobytes())
        return h.hexdigest()[:16]

    # ---- views -----------------------------------------------------------------------------------
    def interactions(self) -> pd.DataFrame:
        """Long format: user, item, domain, timestamp (or position), in sequence order."""
        users = self.sequences.row_ids()
        items = self.sequences.values
        ts = self.timestamps.values if self.timestamps is not None else _positions(self.sequences)
        return pd.DataFrame(
            {"user": users, "item": items, "domain": self.item_domain[items], "timestamp": ts}
        )

    def stats(self) -> dict:
        """Counts per domain and overall; what `temarec data stats` prints."""
        dom_of = self.item_domain[self.sequences.values]
        users = self.sequences.row_ids()
        item_dom = self.items["domain"].to_numpy()
        has_text = self.items["title"].notna().to_numpy() & (
            self.items["title"].fillna("").astype(str).str.len().to_numpy() > 0
        )
        out: dict = {"dataset": self.name, "domains": {}}
        for d, dname in enumerate(self.domains):
            m = dom_of == d
            out["domains"][dname] = {
                "items": int((item_dom == d).sum()),
                "items_with_title": int((has_text & (item_dom == d)).sum()),
                "users": int(len(np.unique(users[m]))),
                "interactions": int(m.sum()),
            }
        out["all"] = {
            "items": self.n_items,
            "items_with_title": int(has_text.sum()),
            "users": self.n_users,
            "interactions": int(len(self.sequences.values)),
            "users_in_both_domains": int(
                len(np.intersect1d(np.unique(users[dom_of == 0]), np.unique(users[dom_of == 1])))
            ),
        }
        if self.published_split is not None:
            sp = self.published_split
            out["published_split"] = {
                "train_sequences": len(sp.train),
                "valid_instances": len(sp.valid.target),
                "test_instances": len(sp.test.target),
            }
        out.update(self.notes)
        return out


def _positions(seqs: Ragged) -> np.ndarray:
    return np.arange(len(seqs.values), dtype=np.int64) - np.repeat(seqs.offsets[:-1], seqs.lengths)


def make_items_frame(
    keys: list[str] | np.ndarray,
    domains: np.ndarray,
    titles: list | None = None,
    descriptions: list | None = None,
    images: list | None = None,
) -> pd.DataFrame:
    """An items table with the global-id index 1..N (rows must already be A-then-B ordered)."""
    n = len(keys)
    df = pd.DataFrame(
        {
            "key": pd.Series(keys, dtype="string").to_numpy(),
            "domain": np.asarray(domains, dtype=np.int8),
            "title": titles if titles is not None else [None] * n,
            "description": descriptions if descriptions is not None else [None] * n,
            "image": images if images is not None else [None] * n,
        },
        index=pd.RangeIndex(1, n + 1, name="item_id"),
    )
    return df
