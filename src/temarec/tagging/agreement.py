"""How well predicted tags agree with reference tags, by meaning rather than by exact string.

For every item present in both `pred` and `ref` (keys compared as ints), tags are put in canonical form
(`normalize_tag`; unusable ones dropped, repeats removed) and embedded once per unique string. Then:

- a predicted tag is *correct* if its highest cosine to the item's reference tags is >= `threshold`;
- a reference tag is *recovered* if its highest cosine to the item's predicted tags is >= `threshold`.

precision = correct / predicted tags, recall = recovered / reference tags, both summed over items
(micro-averaged), f1 their harmonic mean. An item with an empty list on one side still counts (its tags on
the other side are all misses). With no item in common, or nothing to divide by, the value is NaN.
Identical canonical strings have cosine 1, so exact matches always count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from temarec.tagging.normalize import normalize_tag

_PAIR_CHUNK = 1 << 18  # (pred, ref) pairs scored at once


def _canon(tags: Sequence[str] | None) -> list[str]:
    if tags is None or isinstance(tags, str):
        return [] if tags is None else _canon([tags])
    out: dict[str, None] = {}
    for t in tags:
        n = normalize_tag(t)
        if n is not None:
            out.setdefault(n, None)
    return list(out)


def _keyed(d: Mapping) -> dict[int, object]:
    if not isinstance(d, Mapping):
        raise TypeError("pred and ref must map item id -> list of tags")
    out: dict[int, object] = {}
    for k, v in d.items():
        try:
            out[int(k)] = v
        except (TypeError, ValueError):
            raise ValueError(f"item key {k!r} is not an integer id") from None
    return out


def tag_agreement(
    pred: Mapping[int, Sequence[str]],
    ref: Mapping[int, Sequence[str]],
    encoder,
    threshold: float = 0.7,
) -> dict:
    """Embedding-based micro precision / recall / F1 of `pred` against `ref` (see the module docstring)."""
    if not -1.0 <= threshold <= 1.0:
        raise ValueError("threshold is a cosine: it must be in [-1, 1]")
    p_map, r_map = _keyed(pred), _keyed(ref)
    items = sorted(set(p_map) & set(r_map))
    strings: dict[str, int] = {}
    p_item: list[int] = []
    p_str: list[int] = []
    r_item: list[int] = []
    r_str: list[int] = []
    for row, item in enumerate(items):
        for tags, it, st in ((_canon(p_map[item]), p_item, p_str), (_canon(r_map[item]), r_item, r_str)):
            for t in tags:
                it.append(row)
                st.append(strings.setdefault(t, len(strings)))
    n_pred, n_ref = len(p_str), len(r_str)
    out = {
        "precision": float("nan"),
        "recall": float("nan"),
        "f1": float("nan"),
        "n_items": len(items),
        "threshold": float(threshold),
        "n_pred": n_pred,
        "n_ref": n_ref,
    }
    if not items:
        return out
    emb = (
        np.asarray(encoder.encode(list(strings)), dtype=np.float32)
        if strings
        else np.zeros((0, 1), np.float32)
    )
    if emb.shape[0] != len(strings):
        raise ValueError(f"encoder returned {emb.shape[0]} vectors for {len(strings)} tags")
    p_item_a, p_str_a = np.asarray(p_item, np.int64), np.asarray(p_str, np.int64)
    r_item_a, r_str_a = np.asarray(r_item, np.int64), np.asarray(r_str, np.int64)
    best_p = np.full(n_pred, -np.inf, dtype=np.float32)  # best cosine of each predicted tag
    best_r = np.full(n_ref, -np.inf, dtype=np.float32)
    # all (pred, ref) pairs of the same item: entries are grouped by item, so pair them per item via offsets
    n_rows = len(items)
    p_start = np.searchsorted(p_item_a, np.arange(n_rows + 1))
    r_start = np.searchsorted(r_item_a, np.arange(n_rows + 1))
    p_len, r_len = np.diff(p_start), np.diff(r_start)
    pairs_per_row = p_len * r_len
    row_end = np.cumsum(pairs_per_row)
    lo_row = 0
    while lo_row < n_rows:
        base = row_end[lo_row - 1] if lo_row else 0
        hi_row = max(lo_row + 1, int(np.searchsorted(row_end, base + _PAIR_CHUNK, side="right")))
        rows = np.arange(lo_row, hi_row)
        counts = pairs_per_row[rows]
        total = int(counts.sum())
        if total:
            row_of_pair = np.repeat(rows, counts)
            k = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)  # index within the row
            pi = p_start[row_of_pair] + k // r_len[row_of_pair]
            ri = r_start[row_of_pair] + k % r_len[row_of_pair]
            cos = np.einsum("ij,ij->i", emb[p_str_a[pi]], emb[r_str_a[ri]])
            same = p_str_a[pi] == r_str_a[ri]
            cos = np.where(same, np.float32(1.0), cos).astype(np.float32)
            np.maximum.at(best_p, pi, cos)
            np.maximum.at(best_r, ri, cos)
        lo_row = hi_row
    hit_p = int((best_p >= threshold).sum())
    hit_r = int((best_r >= threshold).sum())
    precision = hit_p / n_pred if n_pred else float("nan")
    recall = hit_r / n_ref if n_ref else float("nan")
    if n_pred and n_ref:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    else:
        f1 = float("nan")
    out.update(precision=precision, recall=recall, f1=f1)
    return out
