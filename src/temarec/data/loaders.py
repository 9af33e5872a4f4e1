"""Loaders for the three public cross-domain formats shipped in `../shared/data`.

- ABXI (`interactions.txt` + `item_map.json`): amazon-food-kitchen.
- URLLM / C2DSR (`item_listA_F.csv`, `train_F2.txt`, ...): amazon-art-office, with its published split.
- LLMCDSR (`num.txt`, `train_overlap.txt`, ...): llmcdsr-food-kitchen, with its published split.

Every parse error names the file, the line and the field. Text follows the canonical format's rules
(`temarec.data.canonical`): files are UTF-8; an item key (ASIN) or user id with a control character or
whitespace at its start or end is an error; NUL characters in titles and descriptions are removed with a
warning; negative timestamps are warned about.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

from temarec.data.canonical import NEGATIVE_TS_WARNING, key_problem, strip_nul_values, unclean_keys
from temarec.data.dataset import CDDataset, make_items_frame
from temarec.data.errors import DataFormatError, not_utf8
from temarec.data.ragged import Ragged
from temarec.data.splits import EvalSet, Split

log = logging.getLogger(__name__)


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFormatError(path, None, None, "file not found") from None
    except UnicodeDecodeError:
        raise not_utf8(path) or DataFormatError(path, None, None, "not UTF-8 text") from None
    if "\x00" in text and (bad := not_utf8(path)) is not None:  # UTF-16 without a byte-order mark
        raise bad
    return text


def _read_json(path: Path) -> object:
    text = _read_text(path)
    if not text.strip():
        raise DataFormatError(path, None, None, "file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, None, f"invalid JSON: {e.msg}") from None


def _int(path: Path, line: int, field: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataFormatError(path, line, field, f"expected an integer, got {value!r}") from None


def _lines(path: Path) -> list[str]:
    lines = _read_text(path).splitlines()
    if not any(ln.strip() for ln in lines):
        raise DataFormatError(path, None, None, "file is empty")
    return lines


def _uid(path: Path, line: int, value: str) -> None:
    """A user id must be an integer, written without spaces around it: it is kept as written (as the
    user's key), and `' 5'` and `'5'` would be two users."""
    _int(path, line, "uid", value)
    if value != value.strip():
        raise DataFormatError(path, line, "uid", f"value {key_problem(value, 'user ids')}")


def _require_clean_keys(path: Path, keys: np.ndarray) -> None:
    """Item keys (ASINs, the JSON object's keys) are matched exactly, as in the canonical format."""
    bad = np.flatnonzero(unclean_keys(keys))
    if len(bad):
        raise DataFormatError(path, None, None, f"item key {key_problem(keys[bad[0]], 'item keys')}")


# ---- ABXI -----------------------------------------------------------------------------------------
def load_abxi(
    folder: Path, name: str | None = None, domains: tuple[str, str] = ("Food", "Kitchen")
) -> CDDataset:
    """`interactions.txt` (`uid item|ts ...`), `item_map.json` (ASIN -> [id, domain]), titles optional."""
    folder = Path(folder)
    map_path = folder / "item_map.json"
    raw = _read_json(map_path)
    if not isinstance(raw, dict) or not raw:
        raise DataFormatError(map_path, None, None, "expected a non-empty object ASIN -> [id, domain]")
    n = len(raw)
    keys = np.empty(n, dtype=object)
    dom = np.full(n, -1, dtype=np.int8)
    for asin, val in raw.items():
        if not (isinstance(val, list) and len(val) == 2 and all(isinstance(v, int) for v in val)):
            raise DataFormatError(map_path, None, asin, f"expected [item id, domain], got {val!r}")
        iid, d = val
        if not 1 <= iid <= n or d not in (0, 1):
            raise DataFormatError(map_path, None, asin, f"id {iid} not in 1..{n} or domain {d} not 0/1")
        if keys[iid - 1] is not None:
            raise DataFormatError(map_path, None, asin, f"item id {iid} used twice")
        keys[iid - 1] = asin
        dom[iid - 1] = d
    if np.any(np.diff(dom) < 0):
        raise DataFormatError(map_path, None, None, "domain A ids must all precede domain B ids")
    _require_clean_keys(map_path, keys)
    titles_path = folder / "item_titles.json"
    titles_map = _read_json(titles_path) if titles_path.exists() else {}
    titles = strip_nul_values(titles_path, "title", [titles_map.get(k) for k in keys], keys)

    inter_path = folder / "interactions.txt"
    users, rows, stamps, user_lines = [], [], [], []
    for ln, line in enumerate(_lines(inter_path), start=1):
        if not line.strip():
            continue
        parts = line.split()
        _int(inter_path, ln, "uid", parts[0])
        if len(parts) < 2:
            raise DataFormatError(inter_path, ln, "interactions", "a user line needs at least one item|ts")
        items, ts = [], []
        for tok in parts[1:]:
            it, sep, t = tok.partition("|")
            if not sep:
                raise DataFormatError(inter_path, ln, "item|timestamp", f"expected 'item|ts', got {tok!r}")
            iid = _int(inter_path, ln, "item", it)
            if not 1 <= iid <= n:
                raise DataFormatError(inter_path, ln, "item", f"unknown item id {iid} (not in item_map.json)")
            items.append(iid)
            ts.append(_int(inter_path, ln, "timestamp", t))
        order = np.argsort(np.asarray(ts), kind="stable")
        users.append(parts[0])
        rows.append(np.asarray(items)[order])
        stamps.append(np.asarray(ts)[order])
        user_lines.append(ln)
    timestamps = Ragged.from_lists(stamps)
    neg = timestamps.values < 0
    if neg.any():  # a user's stamps are sorted, so the first negative is that user's earliest
        first = int(np.argmax(neg))
        where = f"line {user_lines[int(timestamps.row_ids()[first])]}"
        log.warning(NEGATIVE_TS_WARNING, inter_path, int(neg.sum()), where, int(timestamps.values[first]))
    return CDDataset(
        name=name or folder.name,
        domains=domains,
        items=make_items_frame(keys, dom, titles=titles),
        user_keys=np.asarray(users, dtype=object),
        sequences=Ragged.from_lists(rows),
        timestamps=timestamps,
        source=str(folder),
    )


# ---- URLLM / C2DSR --------------------------------------------------------------------------------
def _read_item_list(path: Path, domain: int) -> list[tuple[int, str, str, str]]:
    out = []
    try:
        fh = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise DataFormatError(path, None, None, "file not found") from None
    try:
        with fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise DataFormatError(path, None, None, "file is empty")
            need = ["idBefore", "item_title", "idAfter", "item_attribute"]
            if header[:4] != need:
                raise DataFormatError(path, 1, "header", f"expected columns {need}, got {header}")
            for row in reader:
                ln = reader.line_num
                if len(row) != 4:
                    raise DataFormatError(path, ln, "row", f"expected 4 fields, got {len(row)}")
                out.append((_int(path, ln, "idAfter", row[2]), row[0], row[1], row[3]))
    except UnicodeDecodeError:
        raise not_utf8(path) or DataFormatError(path, None, None, "not UTF-8 text") from None
    return out


def _read_c2dsr_lines(path: Path, n_items: int) -> tuple[list[str], list[np.ndarray]]:
    """`uid\\tn\\titem|pos|pos\\t...`: n history items followed by the target."""
    uids, seqs = [], []
    for ln, line in enumerate(_lines(path), start=1):
        parts = line.rstrip("\t").split("\t")
        if len(parts) < 3:
            raise DataFormatError(path, ln, "row", "expected uid, n and at least one item")
        _uid(path, ln, parts[0])
        count = _int(path, ln, "n", parts[1])
        toks = parts[2:]
        if len(toks) != count + 1:
            raise DataFormatError(path, ln, "n", f"says {count} history items, line has {len(toks) - 1}")
        items = np.asarray([_int(path, ln, "item", t.split("|", 1)[0]) for t in toks]) + 1
        if items.min() < 1 or items.max() > n_items:
            raise DataFormatError(path, ln, "item", f"item id outside 0..{n_items - 1}")
        uids.append(parts[0])
        seqs.append(items)
    return uids, seqs


def load_urllm(
    folder: Path, name: str | None = None, domains: tuple[str, str] = ("Art", "Office")
) -> CDDataset:
    """URLLM's art-office release: item lists per domain, C2DSR-style user lines and its published split.

    Each user has two lines sharing one history, with one target per domain. Both lines are training
    sequences for train users; for valid/test users each line is one evaluation instance.
    """
    folder = Path(folder)
    rows_a = _read_item_list(folder / "item_listA_F.csv", 0)
    rows_b = _read_item_list(folder / "item_listO_AA_F.csv", 1)
    n_a, n_b = len(rows_a), len(rows_b)
    n = n_a + n_b
    keys = np.empty(n, dtype=object)
    titles = [None] * n
    descs = [None] * n
    dom = np.zeros(n, dtype=np.int8)
    for d, (rows, lo, hi, fname) in enumerate(
        [(rows_a, 0, n_a, "item_listA_F.csv"), (rows_b, n_a, n, "item_listO_AA_F.csv")]
    ):
        for i, (gid, _before, title, attr) in enumerate(rows):
            if not lo <= gid < hi:
                raise DataFormatError(folder / fname, i + 2, "idAfter", f"id {gid} outside {lo}..{hi - 1}")
            keys[gid] = str(gid)
            titles[gid] = title or None
            descs[gid] = attr or None
            dom[gid] = d
    for lo, hi, fname in ((0, n_a, "item_listA_F.csv"), (n_a, n, "item_listO_AA_F.csv")):
        titles[lo:hi] = strip_nul_values(folder / fname, "item_title", titles[lo:hi], keys[lo:hi])
        descs[lo:hi] = strip_nul_values(folder / fname, "item_attribute", descs[lo:hi], keys[lo:hi])
    parts: dict[str, tuple[list[str], list[np.ndarray]]] = {
        p: _read_c2dsr_lines(folder / f"{p}_F2.txt", n) for p in ("train", "valid", "test")
    }
    user_keys: list[str] = []
    user_seqs: list[np.ndarray] = []
    user_index: dict[str, int] = {}
    part_rows: dict[str, list[int]] = {}
    for p, (uids, seqs) in parts.items():
        idx = []
        for uid, seq in zip(uids, seqs, strict=True):
            key = uid
            if key not in user_index:
                user_index[key] = len(user_keys)
                user_keys.append(key)
                user_seqs.append(seq.copy())
            else:  # second line of a user: same history, another target
                u = user_index[key]
                if seq[-1] not in user_seqs[u][len(seq) - 1 :]:
                    user_seqs[u] = np.append(user_seqs[u], seq[-1])
            idx.append(user_index[key])
        part_rows[p] = idx
    sequences = Ragged.from_lists(user_seqs)
    item_domain = np.concatenate(([-1], dom)).astype(np.int8)

    def eval_set(p: str) -> EvalSet:
        uids = np.asarray(part_rows[p], dtype=np.int64)
        seqs = parts[p][1]
        target = np.asarray([s[-1] for s in seqs], dtype=np.int64)
        return EvalSet(
            users=uids,
            history=Ragged.from_lists([s[:-1] for s in seqs]),
            target=target,
            target_domain=item_domain[target],
            exclude=sequences.take(uids),
        )

    split = Split("published", Ragged.from_lists(parts["train"][1]), eval_set("valid"), eval_set("test"))
    return CDDataset(
        name=name or folder.name,
        domains=domains,
        items=make_items_frame(keys, dom, titles=titles, descriptions=descs),
        user_keys=np.asarray(user_keys, dtype=object),
        sequences=sequences,
        timestamps=None,
        published_split=split,
        source=str(folder),
        notes={"users_per_file": {p: len(set(parts[p][0])) for p in parts}},
    )


# ---- LLMCDSR --------------------------------------------------------------------------------------
LLMCDSR_FILES = ("train_A", "train_B", "train_overlap", "valid", "test")


def load_llmcdsr(
    folder: Path, name: str | None = None, domains: tuple[str, str] = ("Food", "Kitchen")
) -> CDDataset:
    """LLMCDSR's food-kitchen release; `valid.txt`/`test.txt` lines end with the target item."""
    folder = Path(folder)
    num_path = folder / "num.txt"
    nums = [ln for ln in _lines(num_path) if ln.strip()]
    if len(nums) != 2:
        raise DataFormatError(num_path, None, None, "expected two lines: item counts of A and B")
    n_a = _int(num_path, 1, "items_A", nums[0].strip())
    n_b = _int(num_path, 2, "items_B", nums[1].strip())
    n = n_a + n_b
    keys = np.asarray([f"A{i}" for i in range(n_a)] + [f"B{i}" for i in range(n_b)], dtype=object)
    titles: list = [None] * n
    for set_file, text_file, off, size in (
        ("item_set_A.json", "text_A.json", 0, n_a),
        ("item_set_B.json", "text_B.json", n_a, n_b),
    ):
        ids = _read_json(folder / set_file)
        text = _read_json(folder / text_file) if (folder / text_file).exists() else {}
        for asin, local in ids.items():  # type: ignore[union-attr]
            if not isinstance(local, int) or not 0 <= local < size:
                raise DataFormatError(
                    folder / set_file, None, asin, f"local id {local!r} outside 0..{size - 1}"
                )
            keys[off + local] = asin
            titles[off + local] = text.get(asin)  # type: ignore[union-attr]
        _require_clean_keys(folder / set_file, keys[off : off + size])
        titles[off : off + size] = strip_nul_values(
            folder / text_file, "title", titles[off : off + size], keys[off : off + size]
        )
    dom = np.concatenate([np.zeros(n_a, np.int8), np.ones(n_b, np.int8)])
    user_keys, user_seqs, part_rows = [], [], {}
    for p in LLMCDSR_FILES:
        path = folder / f"{p}.txt"
        rows = []
        for ln, line in enumerate(_lines(path), start=1):
            if not line.strip():
                continue
            uid, sep, items = line.partition("\t")
            if not sep:
                raise DataFormatError(path, ln, "row", "expected 'uid<TAB>item,item,...'")
            _uid(path, ln, uid)
            seq = np.asarray([_int(path, ln, "item", t) for t in items.split(",")], dtype=np.int64) + 1
            if seq.min() < 1 or seq.max() > n:
                raise DataFormatError(path, ln, "item", f"item id outside 0..{n - 1}")
            rows.append(len(user_keys))
            user_keys.append(f"{p}:{uid}")
            user_seqs.append(seq)
        part_rows[p] = np.asarray(rows, dtype=np.int64)
    sequences = Ragged.from_lists(user_seqs)
    item_domain = np.concatenate(([-1], dom)).astype(np.int8)

    def eval_set(p: str) -> EvalSet:
        uids = part_rows[p]
        full = sequences.take(uids)
        target = full.values[full.offsets[1:] - 1]
        return EvalSet(uids, full.truncate(full.lengths - 1), target, item_domain[target], full)

    train_rows = np.concatenate([part_rows[p] for p in ("train_A", "train_B", "train_overlap")])
    split = Split("published", sequences.take(train_rows), eval_set("valid"), eval_set("test"))
    return CDDataset(
        name=name or folder.name,
        domains=domains,
        items=make_items_frame(keys, dom, titles=titles),
        user_keys=np.asarray(user_keys, dtype=object),
        sequences=sequences,
        timestamps=None,
        published_split=split,
        source=str(folder),
        notes={"users_per_file": {p: len(part_rows[p]) for p in LLMCDSR_FILES}},
    )
