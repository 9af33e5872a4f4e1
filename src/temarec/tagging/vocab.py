"""The tag vocabulary: raw tag lists per item -> canonical tags shared across items and domains.

`build_vocab` turns `{item_id: [tag, ...]}` (best first, any backend) into a `TagVocab`:

1. every tag goes through `normalize_tag` (case, punctuation, plurals...); unusable tags are dropped and an
   item's duplicates collapse onto their first (best) position;
2. variants are merged: exact duplicates after normalisation always; space-insensitive duplicates
   ("paint brush" / "paintbrush") always; and, when an encoder is given, every pair of distinct normalised
   tags whose embeddings have cosine >= `merge_threshold` (blockwise similarity matrix, connected components
   of the pairs). Each group is named by its most frequent member (ties: shorter, then alphabetical);
3. tags used by fewer than `min_count` items (both domains together, after merging) are pruned, so an item
   may end with fewer tags than it had, or none;
4. each remaining item-tag gets a weight in (0, 1]:
   - the backend's relevance when the item has weights (clipped to [0.01, 1]; an item whose weights are not
     all finite falls back to rank weights);
   - otherwise the rank weight `1 / (1 + r)`, r = 0-based position among the item's remaining tags, so the
     first tag weighs 1, the second 0.5, the third 0.333...
   An item's tags are stored best first: by weight, descending, ties by original position. Weights are
   not normalised per item; a consumer that wants a convex combination divides by the item's sum.

Tag ids are 0..V-1, ordered by total item count (descending), then alphabetically.

Artifact format (a folder; plain files only, nothing is ever unpickled)
----------------------------------------------------------------------
`vocab.json` (UTF-8):
    {"format": "temarec-tag-vocab", "version": 1,
     "n_items": N, "vocab_size": V, "nnz": E,
     "tags": [V canonical tag strings, index = tag id],
     "merge_map": {normalised variant: canonical tag},   # only variants that differ from their canonical
     "arrays_sha256": sha256 of arrays.npz,
     "meta": {"source", "merge_threshold", "min_count", "encoder", "weighting", "domains",
              "item_keys_sha256", counters...}}
`arrays.npz` (numpy, loaded with allow_pickle=False):
    counts       int64   [V, 2]   items per domain (0 = A, 1 = B) carrying the tag
    indptr       int64   [N+2]    CSR row pointers over global item ids 0..N (row 0 = padding, empty)
    tag_ids      int32   [E]      tag ids of item i are tag_ids[indptr[i]:indptr[i+1]], best first
    weights      float32 [E]      matching weights in (0, 1]
    item_domain  int8    [N+1]    the dataset's item domains (-1 at 0), for per-domain statistics
    text_hash    uint64  [N+1]    optional: `item_text_hashes` of each item's title and description when it
                                  was tagged (0 at row 0); absent for imported tags and older vocabularies

Rows are item ids, which are catalogue positions, so a vocabulary belongs to one order of one set of items:
`meta.item_keys_sha256` (`item_keys_digest` of the keys in id order) lets a reader check that its dataset is
that catalogue (`check_catalogue`). Vocabularies saved before it was recorded have none. `text_hash` lets it
name the items whose title or description was edited since they were tagged (`changed_texts`): their tags
describe the old text.

A tag is *shared* when both of its domain counts are positive. `save` writes each file to a temporary name
and renames it, arrays first; `load` checks the checksum, shapes, dtypes and ranges and names the file at
fault in its error. `lookup(tag)` maps a new raw tag onto the vocabulary (normalise, follow the merge map).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from temarec.files import atomic_write
from temarec.tagging.normalize import normalize_tag

FORMAT = "temarec-tag-vocab"
VERSION = 1
JSON_FILE = "vocab.json"
ARRAYS_FILE = "arrays.npz"
MIN_RELEVANCE = 0.01
_ARRAY_SPECS = {  # name: (dtype kind(s), ndim)
    "counts": ("iu", 2),
    "indptr": ("iu", 1),
    "tag_ids": ("iu", 1),
    "weights": ("f", 1),
    "item_domain": ("i", 1),
}


class TagVocabError(ValueError):
    """A vocabulary artifact (or a vocabulary in memory) is malformed; the message names the file."""


def item_text_hashes(titles: Sequence, descriptions: Sequence) -> np.ndarray:
    """uint64 [N+1]: a 64-bit blake2b of each item's (title, description), 0 at the padding row.

    Missing values (None, NaN) hash as empty strings. hashlib, not pandas' hash: the value is stored in
    vocabularies and must not change with a library version.
    """
    if len(titles) != len(descriptions):
        raise ValueError(f"{len(titles)} titles for {len(descriptions)} descriptions")

    def s(v: object) -> str:
        return v if isinstance(v, str) else ""

    out = np.zeros(len(titles) + 1, dtype=np.uint64)
    out[1:] = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(f"{s(t)}\x1f{s(d)}".encode(), digest_size=8).digest(), "big")
            for t, d in zip(titles, descriptions, strict=True)
        ),
        dtype=np.uint64,
        count=len(titles),
    )
    return out


def item_keys_digest(keys: Sequence[str] | np.ndarray) -> str:
    """sha256 of item keys 1..N in id order; the vocabulary's rows are positions in exactly this order."""
    return hashlib.sha256(json.dumps([str(k) for k in keys], ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(eq=False)
class TagVocab:
    """Canonical tags, their domain counts, the merge map and a CSR item -> (tag, weight) table."""

    tags: list[str]
    counts: np.ndarray  # int64 [V, 2]
    merge_map: dict[str, str]
    indptr: np.ndarray  # int64 [N+2]
    tag_ids: np.ndarray  # int32 [E]
    weights: np.ndarray  # float32 [E]
    item_domain: np.ndarray  # int8 [N+1]
    meta: dict = field(default_factory=dict)
    text_hash: np.ndarray | None = None  # uint64 [N+1], see `item_text_hashes`

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=np.int64)
        self.indptr = np.asarray(self.indptr, dtype=np.int64)
        self.tag_ids = np.asarray(self.tag_ids, dtype=np.int32)
        self.weights = np.asarray(self.weights, dtype=np.float32)
        self.item_domain = np.asarray(self.item_domain, dtype=np.int8)
        if self.text_hash is not None:
            self.text_hash = np.asarray(self.text_hash, dtype=np.uint64)
        _validate(self, json_where="TagVocab", arrays_where="TagVocab")

    # ---- shape -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tags)

    @property
    def n_items(self) -> int:
        """N: items are 1..N, row 0 is padding."""
        return len(self.indptr) - 2

    @property
    def shared(self) -> np.ndarray:
        """bool [V]: the tag occurs in both domains."""
        return (self.counts > 0).all(axis=1)

    def domain_mask(self, d: int) -> np.ndarray:
        """bool [V]: the tag occurs in domain d (0 or 1)."""
        return self.counts[:, d] > 0

    @cached_property
    def tag_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tags)}

    # ---- look-ups ----------------------------------------------------------------------------------
    def lookup(self, tag: str) -> int | None:
        """The id of a raw tag after normalisation and merging, or None if it is not in the vocabulary."""
        norm = normalize_tag(tag)
        if norm is None:
            return None
        norm = self.merge_map.get(norm, norm)
        idx = self.tag_index.get(norm)
        if idx is None:  # space-insensitive variant never seen at build time
            idx = self._compact_index.get(norm.replace(" ", ""))
        return idx

    @cached_property
    def _compact_index(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i, t in enumerate(self.tags):
            out.setdefault(t.replace(" ", ""), i)
        return out

    def _check_item(self, item_id: int) -> int:
        i = int(item_id)
        if not 0 <= i <= self.n_items:
            raise IndexError(f"item id {item_id} outside 0..{self.n_items}")
        return i

    def item_tag_ids(self, item_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(tag ids, weights) of one item, best first (views, do not modify)."""
        i = self._check_item(item_id)
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return self.tag_ids[lo:hi], self.weights[lo:hi]

    def item_tags(self, item_id: int) -> list[tuple[str, float]]:
        """[(tag, weight), ...] of one item, best first."""
        ids, ws = self.item_tag_ids(item_id)
        return [(self.tags[t], float(w)) for t, w in zip(ids.tolist(), ws.tolist(), strict=True)]

    def check_catalogue(self, keys: Sequence[str] | np.ndarray, item_domain: np.ndarray, where: str) -> bool:
        """Raise `TagVocabError` (naming `where`) unless the vocabulary's rows are these items in this order.

        Returns False when the vocabulary predates `item_keys_sha256`, so only the count and the domains
        could be checked (the caller can check the keys another way).
        """
        if self.n_items != len(keys):
            raise TagVocabError(
                f"{where}: built for another catalogue ({self.n_items} items; this one has {len(keys)})"
            )
        if not np.array_equal(self.item_domain[1:], np.asarray(item_domain)[1:]):
            raise TagVocabError(f"{where}: built for another catalogue (its items' domains differ)")
        want = self.meta.get("item_keys_sha256")
        if want is None:
            return False
        if want != item_keys_digest(keys):
            raise TagVocabError(
                f"{where}: built for the same number of items with other keys or in another order (items.csv "
                "re-sorted or edited?); its rows would tag the wrong items"
            )
        return True

    def changed_texts(self, text_hash: np.ndarray) -> np.ndarray | None:
        """Ids of items with tags whose title or description differs from when they were tagged
        (`text_hash` from `item_text_hashes` of the current catalogue), or None when the vocabulary did
        not record it. Items without tags are left out: no tag of theirs describes the old text."""
        if self.text_hash is None:
            return None
        text_hash = np.asarray(text_hash, dtype=np.uint64)
        if text_hash.shape != self.text_hash.shape:
            raise ValueError(f"text_hash has shape {text_hash.shape}, the vocabulary {self.text_hash.shape}")
        return np.flatnonzero((text_hash != self.text_hash) & (np.diff(self.indptr) > 0))

    def tag_texts(self) -> list[str]:
        """The tag strings in id order, to embed with a text encoder."""
        return list(self.tags)

    def padded(self, max_tags: int, pad: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Dense `[N+1, max_tags]` tag ids (int64, `pad` where empty) and weights (float32, 0 where empty).

        Each row keeps its item's best `max_tags` tags. `pad=-1` marks padding; pass `pad=len(vocab)` for an
        embedding table with a padding row.
        """
        if max_tags < 1:
            raise ValueError("max_tags must be >= 1")
        n_rows = self.n_items + 1
        lengths = np.diff(self.indptr)
        pos = np.arange(len(self.tag_ids), dtype=np.int64) - np.repeat(self.indptr[:-1], lengths)
        keep = pos < max_tags
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)[keep]
        ids = np.full((n_rows, max_tags), pad, dtype=np.int64)
        ws = np.zeros((n_rows, max_tags), dtype=np.float32)
        ids[rows, pos[keep]] = self.tag_ids[keep]
        ws[rows, pos[keep]] = self.weights[keep]
        return ids, ws

    # ---- reports -----------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Vocabulary size, per-domain and shared tag counts, tags per item and coverage."""
        lengths = np.diff(self.indptr)[1:]
        dom = self.item_domain[1:]
        names = list(self.meta.get("domains") or ("A", "B"))
        tagged = lengths > 0
        out: dict = {
            "vocab_size": len(self),
            "shared_tags": int(self.shared.sum()),
            "items": self.n_items,
            "items_with_tags": int(tagged.sum()),
            "coverage": float(tagged.mean()) if self.n_items else 0.0,
            "tags_per_item_mean": float(lengths[tagged].mean()) if tagged.any() else 0.0,
            "item_tags": int(len(self.tag_ids)),
            "merged_variants": len(self.merge_map),
            "pruned_tags": int(self.meta.get("n_pruned", 0)),
            "domains": {},
        }
        for d in (0, 1):
            m = dom == d
            only = self.domain_mask(d) & ~self.domain_mask(1 - d)
            td = tagged & m
            out["domains"][str(names[d])] = {
                "tags": int(self.domain_mask(d).sum()),
                "only_this_domain": int(only.sum()),
                "items": int(m.sum()),
                "items_with_tags": int(td.sum()),
                "coverage": float(td.sum() / m.sum()) if m.any() else 0.0,
                "tags_per_item_mean": float(lengths[td].mean()) if td.any() else 0.0,
            }
        return out

    # ---- persistence -------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write `arrays.npz` then `vocab.json` into `folder`, each via a temporary file and a rename."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        digest = {}

        def write_arrays(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    counts=self.counts,
                    indptr=self.indptr,
                    tag_ids=self.tag_ids,
                    weights=self.weights,
                    item_domain=self.item_domain,
                    **({} if self.text_hash is None else {"text_hash": self.text_hash}),
                )
            digest["sha256"] = _sha256(Path(tmp))

        atomic_write(folder / ARRAYS_FILE, write_arrays)
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "n_items": self.n_items,
            "vocab_size": len(self),
            "nnz": int(len(self.tag_ids)),
            "tags": self.tags,
            "merge_map": dict(sorted(self.merge_map.items())),
            "arrays_sha256": digest["sha256"],
            "meta": self.meta,
        }
        text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
        atomic_write(folder / JSON_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> TagVocab:
        """Read a saved vocabulary, checking everything; errors name the file at fault."""
        folder = Path(folder)
        json_path, arrays_path = folder / JSON_FILE, folder / ARRAYS_FILE
        if not json_path.is_file():
            raise TagVocabError(f"{json_path}: not found (no tag vocabulary in {folder})")
        try:
            doc = json.loads(json_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TagVocabError(f"{json_path}: not valid JSON ({e})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise TagVocabError(f"{json_path}: not a {FORMAT} file")
        if doc.get("version") != VERSION:
            raise TagVocabError(f"{json_path}: version {doc.get('version')!r}, this temarec reads {VERSION}")
        tags, merge_map, meta = doc.get("tags"), doc.get("merge_map"), doc.get("meta", {})
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TagVocabError(f"{json_path}: 'tags' must be a list of strings")
        if not isinstance(merge_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in merge_map.items()
        ):
            raise TagVocabError(f"{json_path}: 'merge_map' must map strings to strings")
        if not isinstance(meta, dict):
            raise TagVocabError(f"{json_path}: 'meta' must be an object")
        if not arrays_path.is_file():
            raise TagVocabError(f"{arrays_path}: not found")
        if _sha256(arrays_path) != doc.get("arrays_sha256"):
            raise TagVocabError(
                f"{arrays_path}: checksum differs from the one in {JSON_FILE} (corrupt or from another save)"
            )
        try:
            with np.load(arrays_path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise TagVocabError(f"{arrays_path}: cannot read ({type(e).__name__}: {e})") from None
        for name, (kinds, ndim) in _ARRAY_SPECS.items():
            a = arrays.get(name)
            if a is None:
                raise TagVocabError(f"{arrays_path}: array {name!r} missing")
            if a.dtype.kind not in kinds or a.ndim != ndim:
                raise TagVocabError(
                    f"{arrays_path}: {name!r} is {a.dtype}[{a.ndim}-d], expected {ndim}-d {kinds}"
                )
        for key, want in (("n_items", len(arrays["indptr"]) - 2), ("vocab_size", len(tags))):
            if doc.get(key) != want:
                raise TagVocabError(f"{json_path}: {key}={doc.get(key)!r} but the arrays say {want}")
        vocab = object.__new__(cls)
        vocab.tags = tags
        vocab.merge_map = merge_map
        vocab.meta = meta
        vocab.counts = arrays["counts"].astype(np.int64, copy=False)
        vocab.indptr = arrays["indptr"].astype(np.int64, copy=False)
        vocab.tag_ids = arrays["tag_ids"].astype(np.int32, copy=False)
        vocab.weights = arrays["weights"].astype(np.float32, copy=False)
        vocab.item_domain = arrays["item_domain"].astype(np.int8, copy=False)
        th = arrays.get("text_hash")
        if th is not None and (th.dtype != np.uint64 or th.ndim != 1):
            raise TagVocabError(f"{arrays_path}: 'text_hash' is {th.dtype}[{th.ndim}-d], expected 1-d uint64")
        vocab.text_hash = th
        _validate(vocab, json_where=str(json_path), arrays_where=str(arrays_path))
        return vocab


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _validate(v: TagVocab, json_where: str, arrays_where: str) -> None:
    """Shapes, ranges and cross-references; `*_where` names the file (or object) each check is about."""
    n_tags = len(v.tags)
    if len(set(v.tags)) != n_tags:
        raise TagVocabError(f"{json_where}: duplicate tags")
    if v.counts.shape != (n_tags, 2):
        raise TagVocabError(f"{arrays_where}: counts has shape {v.counts.shape}, expected ({n_tags}, 2)")
    if (v.counts < 0).any():
        raise TagVocabError(f"{arrays_where}: negative counts")
    if v.indptr.ndim != 1 or len(v.indptr) < 2:
        raise TagVocabError(f"{arrays_where}: indptr must have N+2 >= 2 entries")
    n_items = len(v.indptr) - 2
    if v.item_domain.shape != (n_items + 1,):
        raise TagVocabError(
            f"{arrays_where}: item_domain has shape {v.item_domain.shape}, indptr says ({n_items + 1},)"
        )
    if n_items and not np.isin(v.item_domain[1:], (0, 1)).all():
        raise TagVocabError(f"{arrays_where}: item_domain must be 0 or 1 for items 1..N")
    if v.text_hash is not None and v.text_hash.shape != (n_items + 1,):
        raise TagVocabError(
            f"{arrays_where}: text_hash has shape {v.text_hash.shape}, indptr says ({n_items + 1},)"
        )
    nnz = len(v.tag_ids)
    if v.indptr[0] != 0 or v.indptr[-1] != nnz or (np.diff(v.indptr) < 0).any():
        raise TagVocabError(f"{arrays_where}: indptr must rise from 0 to len(tag_ids)={nnz}")
    if v.indptr[1] != 0:
        raise TagVocabError(f"{arrays_where}: row 0 (padding) must have no tags")
    if v.weights.shape != (nnz,):
        raise TagVocabError(f"{arrays_where}: weights has {len(v.weights)} entries, tag_ids {nnz}")
    if nnz and (v.tag_ids.min() < 0 or v.tag_ids.max() >= n_tags):
        raise TagVocabError(f"{arrays_where}: tag id outside 0..{n_tags - 1}")
    if nnz and not (np.isfinite(v.weights).all() and (v.weights > 0).all() and (v.weights <= 1).all()):
        raise TagVocabError(f"{arrays_where}: weights must be finite and in (0, 1]")
    tagset = set(v.tags)
    bad = next((k for k, c in v.merge_map.items() if c not in tagset), None)
    if bad is not None:
        raise TagVocabError(f"{json_where}: merge_map sends {bad!r} to {v.merge_map[bad]!r}, not a tag")


# ---- building ---------------------------------------------------------------------------------------
def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph: each node's label is the smallest node id in it."""
    labels = np.arange(n, dtype=np.int64)
    if len(a) == 0:
        return labels
    while True:
        m = np.minimum(labels[a], labels[b])
        new = labels.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]  # pointer jumping
        if np.array_equal(new, labels):
            return labels
        labels = new


def similar_pairs(
    emb: np.ndarray, threshold: float, block_elems: int = 1 << 24
) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j), i < j, with emb[i] . emb[j] >= threshold; blockwise so memory stays near `block_elems`."""
    n = len(emb)
    out_a: list[np.ndarray] = []
    out_b: list[np.ndarray] = []
    rows = max(1, block_elems // max(n, 1))
    for s in range(0, n, rows):
        sim = emb[s : s + rows] @ emb[s:].T
        i, j = np.nonzero(sim >= threshold)
        keep = j > i  # column j of this block is item s + j; the diagonal is i == j
        out_a.append(i[keep] + s)
        out_b.append(j[keep] + s)
    if not out_a:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_a).astype(np.int64), np.concatenate(out_b).astype(np.int64)


def _check_inputs(
    item_tags: Mapping[int, Sequence[str]],
    item_weights: Mapping[int, Sequence[float] | None] | None,
    item_domain: np.ndarray,
) -> tuple[np.ndarray, int]:
    if not isinstance(item_tags, Mapping):
        raise TypeError("item_tags must map item id -> list of tags")
    if item_weights is not None and not isinstance(item_weights, Mapping):
        raise TypeError("item_weights must map item id -> list of weights (or be None)")
    dom = np.asarray(item_domain)
    if dom.ndim != 1 or len(dom) < 1 or dom.dtype.kind not in "iu":
        raise ValueError("item_domain must be a 1-d integer array [N+1] (dataset.info().item_domain)")
    n_items = len(dom) - 1
    if n_items and not np.isin(dom[1:], (0, 1)).all():
        raise ValueError("item_domain[1:] must be 0 or 1")
    return dom.astype(np.int8), n_items


def build_vocab(
    item_tags: Mapping[int, Sequence[str]],
    item_weights: Mapping[int, Sequence[float] | None] | None,
    item_domain: np.ndarray,
    encoder=None,
    merge_threshold: float = 0.9,
    min_count: int = 2,
    source: str = "",
    domains: tuple[str, str] | None = None,
    item_keys: Sequence[str] | np.ndarray | None = None,
    text_hash: np.ndarray | None = None,
) -> TagVocab:
    """Normalise, merge, prune and weight the tags of items 1..N (see the module docstring).

    `item_keys` (the dataset's keys in id order) is recorded as a digest, so that readers can tell a
    re-sorted or edited catalogue from the one the vocabulary was built for; `text_hash`
    (`item_text_hashes`, [N+1]) is kept so that they can tell which items' texts were edited since.
    """
    dom, n_items = _check_inputs(item_tags, item_weights, item_domain)
    if item_keys is not None and len(item_keys) != n_items:
        raise ValueError(f"{len(item_keys)} item keys for {n_items} items")
    if not 0.0 < merge_threshold <= 1.0:
        raise ValueError("merge_threshold must be in (0, 1]")
    if min_count < 1:
        raise ValueError("min_count must be >= 1")

    # 1. normalise; one entry per (item, normalised tag), at its first position
    strings: dict[str, int] = {}
    e_item: list[int] = []
    e_str: list[int] = []
    e_pos: list[int] = []
    e_w: list[float] = []
    n_raw = 0
    items_relevance = 0
    for key, tags in item_tags.items():
        if isinstance(key, bool) or not isinstance(key, int | np.integer):
            raise TypeError(f"item id {key!r} is not an int")
        item = int(key)
        if not 1 <= item <= n_items:
            raise ValueError(f"item id {item} outside 1..{n_items}")
        if tags is None:
            continue
        if isinstance(tags, np.ndarray):
            tags = tags.tolist()
        if isinstance(tags, str) or not isinstance(tags, Sequence):
            raise TypeError(f"item {item}: tags must be a list of strings, got {type(tags).__name__}")
        ws = None if item_weights is None else item_weights.get(key)
        if ws is not None:
            if isinstance(ws, str) or len(ws) != len(tags):
                raise ValueError(f"item {item}: {len(ws)} weights for {len(tags)} tags")
            try:
                ws = [float(w) for w in ws]
            except (TypeError, ValueError):
                ws = None
            if ws is not None and not all(np.isfinite(ws)):
                ws = None
        items_relevance += ws is not None
        seen: dict[int, int] = {}  # string id -> entry index
        n_raw += len(tags)
        for pos, tag in enumerate(tags):
            norm = normalize_tag(tag)
            if norm is None:
                continue
            sid = strings.setdefault(norm, len(strings))
            w = float(np.clip(ws[pos], MIN_RELEVANCE, 1.0)) if ws is not None else np.nan
            if sid in seen:
                j = seen[sid]
                if w > e_w[j]:
                    e_w[j] = w
                continue
            seen[sid] = len(e_item)
            e_item.append(item)
            e_str.append(sid)
            e_pos.append(pos)
            e_w.append(w)
    uniq = list(strings)
    n_uniq = len(uniq)
    item_arr = np.asarray(e_item, dtype=np.int64)
    str_arr = np.asarray(e_str, dtype=np.int64)
    pos_arr = np.asarray(e_pos, dtype=np.int64)
    w_arr = np.asarray(e_w, dtype=np.float64)

    # 2. merge: space-insensitive duplicates, then near-duplicates by embedding
    pair_a: list[np.ndarray] = []
    pair_b: list[np.ndarray] = []
    compact: dict[str, int] = {}
    for i, s in enumerate(uniq):
        j = compact.setdefault(s.replace(" ", ""), i)
        if j != i:
            pair_a.append(np.asarray([j]))
            pair_b.append(np.asarray([i]))
    encoder_id = None
    if encoder is not None and n_uniq > 1 and merge_threshold < 1.0:
        emb = np.asarray(encoder.encode(uniq), dtype=np.float32)
        if emb.shape[0] != n_uniq:
            raise ValueError(f"encoder returned {emb.shape[0]} vectors for {n_uniq} tags")
        a, b = similar_pairs(emb, merge_threshold)
        pair_a.append(a)
        pair_b.append(b)
    if encoder is not None:
        encoder_id = getattr(encoder, "identity", type(encoder).__name__)
    a = np.concatenate(pair_a) if pair_a else np.zeros(0, dtype=np.int64)
    b = np.concatenate(pair_b) if pair_b else np.zeros(0, dtype=np.int64)
    labels = _components(n_uniq, a, b)
    str_count = np.bincount(str_arr, minlength=n_uniq)
    alpha = np.argsort(np.asarray(uniq, dtype=object), kind="stable") if n_uniq else np.zeros(0, np.int64)
    alpha_rank = np.empty(n_uniq, dtype=np.int64)
    alpha_rank[alpha] = np.arange(n_uniq)
    lengths = np.asarray([len(s) for s in uniq], dtype=np.int64)
    order = np.lexsort((alpha_rank, lengths, -str_count, labels))  # group by label, best name first
    canon_of_label = np.full(n_uniq, -1, dtype=np.int64)
    first = np.ones(n_uniq, dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    canon_of_label[labels[order][first]] = order[first]
    canon = canon_of_label[labels]  # string id -> canonical string id

    # collapse an item's entries that now share a canonical tag: best position, highest weight
    c_arr = canon[str_arr]
    o = np.lexsort((pos_arr, c_arr, item_arr))
    item_arr, c_arr, pos_arr, w_arr = item_arr[o], c_arr[o], pos_arr[o], w_arr[o]
    head = np.ones(len(o), dtype=bool)
    head[1:] = (item_arr[1:] != item_arr[:-1]) | (c_arr[1:] != c_arr[:-1])
    grp = np.cumsum(head) - 1
    w_max = np.full(int(head.sum()), np.nan)
    has_w = ~np.isnan(w_arr)
    np.fmax.at(w_max, grp[has_w], w_arr[has_w])
    item_arr, c_arr, pos_arr, w_arr = item_arr[head], c_arr[head], pos_arr[head], w_max

    # 3. count per domain and prune
    cdom = dom[item_arr].astype(np.int64)
    counts_full = np.zeros((n_uniq, 2), dtype=np.int64)
    np.add.at(counts_full, (c_arr, cdom), 1)
    total = counts_full.sum(1)
    is_canon = np.zeros(n_uniq, dtype=bool)
    is_canon[np.unique(c_arr)] = True
    alive = is_canon & (total >= min_count)
    keep_ids = np.flatnonzero(alive)
    keep_ids = keep_ids[np.lexsort((alpha_rank[keep_ids], -total[keep_ids]))]
    new_id = np.full(n_uniq, -1, dtype=np.int64)
    new_id[keep_ids] = np.arange(len(keep_ids))
    tags = [uniq[i] for i in keep_ids.tolist()]
    counts = counts_full[keep_ids]
    ent = new_id[c_arr] >= 0
    item_arr, tid, pos_arr, w_arr = item_arr[ent], new_id[c_arr][ent], pos_arr[ent], w_arr[ent]

    # 4. weights and best-first order
    o = np.lexsort((pos_arr, item_arr))
    item_arr, tid, pos_arr, w_arr = item_arr[o], tid[o], pos_arr[o], w_arr[o]
    row_len = np.bincount(item_arr, minlength=n_items + 1)
    starts = np.concatenate(([0], np.cumsum(row_len)))
    rank = np.arange(len(item_arr)) - starts[item_arr]
    weight = np.where(np.isnan(w_arr), 1.0 / (1.0 + rank), w_arr)
    o = np.lexsort((pos_arr, -weight, item_arr))
    tid, weight = tid[o], weight[o]

    merge_map = {uniq[s]: uniq[canon[s]] for s in range(n_uniq) if canon[s] != s and alive[canon[s]]}
    meta = {
        "source": source,
        "merge_threshold": float(merge_threshold),
        "min_count": int(min_count),
        "encoder": encoder_id,
        "weighting": "relevance"
        if items_relevance == len(item_tags) and item_tags
        else ("rank" if items_relevance == 0 else "mixed"),
        "weighting_rule": "relevance clipped to [0.01, 1] where given, else 1/(1+rank)",
        "domains": list(domains) if domains else ["A", "B"],
        "item_keys_sha256": None if item_keys is None else item_keys_digest(item_keys),
        "n_items_in": len(item_tags),
        "n_items_with_relevance": int(items_relevance),
        "n_raw_tags": int(n_raw),
        "n_normalized": n_uniq,
        "n_canonical": int(is_canon.sum()),
        "n_pruned": int((is_canon & ~alive).sum()),
    }
    return TagVocab(
        tags=tags,
        counts=counts,
        merge_map=merge_map,
        indptr=np.concatenate(([0], np.cumsum(row_len))).astype(np.int64),
        tag_ids=tid.astype(np.int32),
        weights=weight.astype(np.float32),
        item_domain=dom,
        meta=meta,
        text_hash=text_hash,
    )
