"""Ragged (CSR) integer sequences: the one container for histories, training sequences and exclusions.

Everything is numpy and vectorised: no Python loop over rows on the hot paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ragged:
    """Rows of variable length stored as `values[offsets[i]:offsets[i+1]]`."""

    offsets: np.ndarray  # int64 [n+1]
    values: np.ndarray  # int64 [offsets[-1]]

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or len(self.offsets) == 0 or self.offsets[0] != 0:
            raise ValueError("offsets must be 1-D and start at 0")
        if self.offsets[-1] != len(self.values):
            raise ValueError("offsets[-1] must equal len(values)")

    @classmethod
    def from_lists(cls, rows: Iterable[Sequence[int]]) -> Ragged:
        rows = [np.asarray(r, dtype=np.int64) for r in rows]
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        return cls(offsets, values.astype(np.int64))

    @classmethod
    def from_lengths(cls, lengths: np.ndarray, values: np.ndarray) -> Ragged:
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(offsets, np.asarray(values, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def tolist(self) -> list[list[int]]:
        return [self.row(i).tolist() for i in range(len(self))]

    def take(self, rows: np.ndarray) -> Ragged:
        """The sub-collection of the given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        flat = _expand(starts, lengths)
        return Ragged.from_lengths(lengths, self.values[flat])

    def row_ids(self) -> np.ndarray:
        """For every value, the index of its row."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    def truncate(self, keep: np.ndarray) -> Ragged:
        """Keep the first `keep[i]` values of every row (keep <= length)."""
        keep = np.minimum(np.asarray(keep, dtype=np.int64), self.lengths)
        return Ragged.from_lengths(keep, self.values[_expand(self.offsets[:-1], keep)])

    def padded(self, max_len: int, pad: int = 0) -> np.ndarray:
        """The last `max_len` values of every row, left-padded: shape [n, max_len]."""
        n = len(self)
        take = np.minimum(self.lengths, max_len)
        pos = np.arange(max_len, dtype=np.int64)[None, :]
        start = (self.offsets[1:] - take)[:, None]
        shift = (max_len - take)[:, None]
        idx = start + pos - shift
        valid = pos >= shift
        out = np.full((n, max_len), pad, dtype=np.int64)
        if len(self.values):
            out[valid] = self.values[idx[valid]]
        return out


def _expand(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Flat indices `[s0, s0+1, .., s0+l0-1, s1, ...]` without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    row_start = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return row_start + np.arange(total, dtype=np.int64)
