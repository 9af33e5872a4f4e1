"""The project's own canonical dataset format: a folder anyone can produce from any source.

Files (CSV or Parquet, one of each, never both):

- `items.csv|parquet`: `item_id` (string, unique), `domain` (domain name; exactly two distinct names),
  optional `title`, `description`, `image` (empty = none).
- `interactions.csv|parquet`: `user_id`, `item_id` (must be in items), `timestamp` (integers that order
  each user's history: unix seconds, or milliseconds, one unit per file; a mix is warned about).
- `dataset.json` (optional): `{"name": str, "domains": [nameA, nameB]}` fixes the domain order; without
  it, domains are in order of first appearance in the items file.

Items keep file order within their domain (A first, then B). Items without interactions stay (they are
the catalogue); users come from the interactions only, in order of first appearance. Each user's
interactions are sorted by timestamp; ties keep file order.

Every check is vectorised; a bad value raises `DataFormatError` naming the file, the line as a person
sees it in a CSV (header = line 1), or the 1-based row of a Parquet table, and the field.

Text rules, the same for CSV and Parquet (and for what `write_canonical` writes, so that a written folder
always loads): the files are UTF-8. Ids and domain names (`item_id`, `user_id`, `domain`) are matched
exactly, so one with a control character (NUL, tab, newline, ...) or with whitespace at its start or end
is an error, never silently cleaned: `'u1 '` and `'u1'` are different users to every other file that
names them (tags, candidate sets, recommendations), and cleaning one silently would make two ids one or
break those links. An `image` with a control character is an error too (it names a file or URL). NUL
characters in `title` and `description` are removed with a warning (see `_strip_nul`). Negative
timestamps load, with a warning.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from temarec.data.dataset import CDDataset, make_items_frame
from temarec.data.errors import DataFormatError, DatasetNotFoundError, not_utf8
from temarec.data.ragged import Ragged

log = logging.getLogger(__name__)

ITEMS = "items"
INTERACTIONS = "interactions"
META_FILE = "dataset.json"
FORMATS = ("csv", "parquet")
ITEM_REQUIRED = ("item_id", "domain")
ITEM_OPTIONAL = ("title", "description", "image")
INTERACTION_REQUIRED = ("user_id", "item_id", "timestamp")

Format = Literal["csv", "parquet"]
_STR = pd.StringDtype("pyarrow")

#: what an id or domain name may not hold: a control character anywhere (C0 incl. NUL, tab and newline,
#: DEL, C1), or whitespace (ASCII or Unicode) at its start or end
_UNCLEAN_KEY = r"\p{Cc}|^[\s\p{Z}]|[\s\p{Z}]$"
_CONTROL = r"\p{Cc}"


def _strings(values: object) -> pa.Array | pa.ChunkedArray:
    """Values as an Arrow string array whose bytes lie in one data buffer per chunk (not string_view,
    which keeps short values inline), or a null array when there is nothing to check."""
    arr = pa.array(values)
    if pa.types.is_null(arr.type) or pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    return arr.cast(pa.large_string())


def _any_byte(arr: pa.Array | pa.ChunkedArray, pred: object) -> bool:
    """Whether any byte of the string data (all chunks, read as one numpy array each) satisfies `pred`."""
    for chunk in arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]:
        data = chunk.buffers()[2]
        if data is not None and pred(np.frombuffer(data, dtype=np.uint8)).any():  # type: ignore[operator]
            return True
    return False


def unclean_keys(values: object, *, edges: bool = True) -> np.ndarray:
    """Mask of the values (a pandas Series/Index or array of str) holding a control character or, with
    `edges`, whitespace at either end.

    Clean columns, the usual case, cost one numpy pass over the bytes (no control byte: none below 0x20,
    no DEL, no 0xC2 that leads a C1 control in UTF-8) and one Arrow trim; only a column that fails them
    runs the exact per-value regex.
    """
    arr = _strings(values)
    if pa.types.is_null(arr.type):  # nothing to check (no values, or all missing)
        return np.zeros(len(arr), dtype=bool)
    maybe = _any_byte(arr, lambda b: (b < 0x20) | (b == 0x7F) | (b == 0xC2)) or (
        edges and not pc.all(pc.equal(pc.utf8_trim_whitespace(arr), arr)).as_py()
    )
    if not maybe:
        return np.zeros(len(arr), dtype=bool)
    hit = pc.match_substring_regex(arr, _UNCLEAN_KEY if edges else _CONTROL)
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)


def _show(v: str, limit: int = 60) -> str:
    """A value as a one-line repr (control characters escaped), shortened if long."""
    r = repr(v)
    return r if len(r) <= limit else r[: limit - 4] + "...'"


def key_problem(v: str, what: str = "ids") -> str:
    """What is wrong with a value `unclean_keys` flagged, and what to do, e.g. "'b\\x001' contains the
    control character U+0000; ids must be printable text". `what`: the kind of value, plural."""
    bad = next((c for c in v if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        return f"{_show(v)} contains the control character U+{ord(bad):04X}; {what} must be printable text"
    return f"{_show(v)} has whitespace at its start or end; {what} are matched exactly, so remove it"


# ---- reading tables --------------------------------------------------------------------------------
@dataclass
class _Table:
    """A loaded file plus what is needed to point at one of its rows in an error message."""

    path: Path
    df: pd.DataFrame

    @property
    def is_csv(self) -> bool:
        return self.path.suffix == ".csv"

    def lines(self, rows: Sequence[int]) -> list[int]:
        """1-based line (CSV, header = 1) or row (Parquet) of each 0-based data row."""
        if not self.is_csv:
            return [int(r) + 1 for r in rows]
        starts = _csv_record_lines(self.path, upto=max(rows, default=0) + 1)
        return [starts[r + 1] if r + 1 < len(starts) else int(r) + 2 for r in rows]

    def error(self, row: int | None, field: str | None, message: str) -> DataFormatError:
        if row is None:
            return DataFormatError(self.path, None, field, message)
        return DataFormatError(self.path, self.lines([row])[0], field, message, row=not self.is_csv)

    def text(self, col: str) -> pd.Series:
        """A column as Arrow-backed strings (fast to compare and hash), missing values as ''."""
        s = self.df[col]
        if not isinstance(s.dtype, pd.StringDtype):
            s = s.astype(object).where(s.notna(), None).map(str, na_action="ignore")
        return s.astype(_STR).fillna("")

    def require_columns(self, names: Sequence[str]) -> None:
        have = [str(c) for c in self.df.columns]
        for col in names:
            if col not in have:
                line = 1 if self.is_csv else None
                raise DataFormatError(
                    self.path, line, col, f"missing required column (the header has: {', '.join(have)})"
                )

    def require_rows(self) -> None:
        if len(self.df) == 0:
            raise DataFormatError(self.path, 2 if self.is_csv else None, None, "no data rows")

    def require_nonempty(self, col: str, values: pd.Series) -> None:
        bad = np.flatnonzero((values == "").to_numpy())
        if len(bad):
            raise self.error(int(bad[0]), col, "empty value; this field is required")

    def require_clean(self, col: str, uniq: object, codes: np.ndarray | None = None) -> None:
        """Refuse an id or domain name with a control character or edge whitespace (module docstring).

        `uniq`: the column's distinct values in order of first appearance and `codes` each row's index
        into them (`pd.factorize`), so each value is checked once; without `codes`, the column itself.
        """
        bad = np.flatnonzero(unclean_keys(uniq))
        if len(bad):
            i = int(bad[0])
            row = i if codes is None else int(np.argmax(codes == i))  # first row of the first bad value
            v = uniq.iloc[i] if isinstance(uniq, pd.Series) else uniq[i]  # type: ignore[index]
            what = "domain names" if col == "domain" else "ids"
            raise self.error(row, col, f"value {key_problem(str(v), what)}")

    def where(self, row: int) -> str:
        """'line N' (CSV) or 'row N' (Parquet) of a 0-based data row, for a warning."""
        return f"{'line' if self.is_csv else 'row'} {self.lines([row])[0]}"


def _csv_record_lines(path: Path, upto: int) -> list[int]:
    """Starting physical line of the non-blank CSV records 0..upto (record 0 is the header).

    Only used to build an error message, so a Python loop over the file is fine here. Blank lines are
    skipped, as the reader skips them; quoted values may span lines.
    """
    starts: list[int] = []
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        end = 0
        for rec in reader:
            start, end = end + 1, reader.line_num
            if rec:
                starts.append(start)
                if len(starts) > upto:
                    break
    return starts


def _first_bad_width(path: Path) -> tuple[int, int, int] | None:
    """(line, fields expected, fields found) of the first record whose width differs from the header's."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        width = None
        end = 0
        for rec in reader:
            start, end = end + 1, reader.line_num
            if not rec:
                continue
            if width is None:
                width = len(rec)
            elif len(rec) != width:
                return start, width, len(rec)
    return None


def _refuse_duplicate_columns(path: Path, columns: list[str], line: int | None) -> None:
    """A column named twice: a reader would keep one of them (or rename the other `item_id.1`)
    and silently drop what the user meant to give."""
    seen: set[str] = set()
    for c in columns:
        if c in seen:
            where = "in the header" if line is not None else "among the file's columns"
            raise DataFormatError(path, line, c, f"this column is named twice {where}")
        seen.add(c)


def _read_table(path: Path) -> _Table:
    """Read a CSV with every column as a string (so bad values stay visible) or a Parquet table."""
    if path.suffix == ".parquet":
        try:
            # a column named twice: checked on the schema, as reading it fails with a multi-line dump
            _refuse_duplicate_columns(path, [str(c) for c in pq.read_schema(path).names], None)
            df = pd.read_parquet(path)
        except DataFormatError:
            raise
        except Exception as e:  # pyarrow raises several types for a corrupt file; some span lines
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise DataFormatError(path, None, None, f"cannot read Parquet file: {first}") from None
        df.columns = [str(c) for c in df.columns]
        return _Table(path, df.reset_index(drop=True))
    try:
        # The pyarrow engine rejects rows with the wrong number of fields, which the C engine pads
        # silently; quoted values may contain newlines.
        df = pd.read_csv(path, engine="pyarrow", dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, 1, None, "file is empty; expected a header line") from None
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as e:
        if (bad_text := not_utf8(path)) is not None:
            raise bad_text from None
        bad = _first_bad_width(path)
        if bad is not None:
            line, want, got = bad
            raise DataFormatError(
                path, line, None, f"expected {want} fields like the header, found {got}"
            ) from None
        raise DataFormatError(path, None, None, f"cannot parse CSV: {e}") from None
    with path.open(newline="", encoding="utf-8-sig") as f:  # the header as written: pandas renames
        header = next(csv.reader(f), [])  # a second `item_id` to `item_id.1`
    if any("\x00" in c for c in header) and (bad_text := not_utf8(path)) is not None:
        raise bad_text  # UTF-16 without a byte-order mark reads as UTF-8 with NULs
    _refuse_duplicate_columns(path, [c.strip() for c in header], 1)
    df.columns = [str(c).strip() for c in df.columns]
    return _Table(path, df)


def _find(folder: Path, stem: str) -> Path | None:
    found = [folder / f"{stem}.{ext}" for ext in FORMATS if (folder / f"{stem}.{ext}").is_file()]
    if len(found) > 1:
        raise DataFormatError(
            found[1], None, None, f"both {found[0].name} and {found[1].name} exist; keep only one"
        )
    return found[0] if found else None


def _read_meta(folder: Path) -> tuple[str | None, tuple[str, str] | None]:
    path = folder / META_FILE
    if not path.is_file():
        return None, None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, None, f"invalid JSON: {e.msg}") from None
    except UnicodeDecodeError:
        raise DataFormatError(path, None, None, "not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise DataFormatError(path, None, None, "expected a JSON object")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise DataFormatError(path, None, "name", "expected a string")
    if name is not None and (
        not name.strip() or any(c in name for c in "/\\") or name.strip(".") == "" or not name.isprintable()
    ):
        raise DataFormatError(
            path, None, "name", f"{name!r} is not a plain name (no path separators, not '.' or '..')"
        )
    domains = raw.get("domains")
    if domains is None:
        return name, None
    if (
        not isinstance(domains, list)
        or len(domains) != 2
        or not all(isinstance(d, str) and d for d in domains)
        or domains[0] == domains[1]
    ):
        raise DataFormatError(path, None, "domains", f"expected two distinct domain names, got {domains!r}")
    bad = np.flatnonzero(unclean_keys(np.asarray(domains, dtype=object)))
    if len(bad):  # the items file's domain column may not hold such a name either
        raise DataFormatError(path, None, "domains", f"value {key_problem(domains[bad[0]], 'domain names')}")
    return name, (domains[0], domains[1])


# ---- validation and conversion ---------------------------------------------------------------------
def _domains_of(table: _Table, values: pd.Series, fixed: tuple[str, str] | None) -> tuple[str, str]:
    """The two domain names, in order; every row's name must be one of them."""
    if fixed is not None:
        bad = np.flatnonzero(~values.isin(fixed).to_numpy())
        if len(bad):
            r = int(bad[0])
            raise table.error(
                r, "domain", f"domain {values.iloc[r]!r} is not one of {list(fixed)} set in {META_FILE}"
            )
        seen = set(pd.unique(values))
        if len(seen) != 2:
            raise table.error(
                None, "domain", f"only domain {sorted(seen)} present; expected both {list(fixed)}"
            )
        return fixed
    uniq = pd.unique(values)
    if len(uniq) > 2:
        # the two most common names are taken as the domains (ties: the one seen first)
        counts = values.value_counts(sort=False).reindex(uniq).sort_values(ascending=False, kind="stable")
        odd = counts.index[2:]
        r = int(np.flatnonzero(values.isin(odd).to_numpy())[0])
        raise table.error(
            r,
            "domain",
            f"domain {values.iloc[r]!r}: a dataset has exactly two domains, found {len(counts)} "
            f"({', '.join(f'{k!r} x{v:,}' for k, v in counts.items())}); "
            f"set them in {META_FILE} or correct the rows",
        )
    if len(uniq) < 2:
        raise table.error(None, "domain", f"only one domain {uniq[0]!r}; a dataset has exactly two")
    return str(uniq[0]), str(uniq[1])


def _timestamps(table: _Table, col: str) -> np.ndarray:
    """Integer unix seconds; anything else (empty, '1.5', 'x') is reported at its row."""
    s = table.df[col]
    if pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
        if pd.api.types.is_unsigned_integer_dtype(s.dtype):
            big = np.flatnonzero(s.to_numpy() > np.iinfo(np.int64).max)
            if len(big):
                r = int(big[0])
                raise table.error(r, col, f"{s.iloc[r]} is out of the 64-bit range of unix seconds")
        return s.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(s.dtype):
        v = s.to_numpy(dtype=np.float64)
        ok = np.isfinite(v) & (v == np.floor(v)) & (np.abs(v) < 2**62)
        bad = np.flatnonzero(~ok)
        if len(bad):
            raise table.error(
                int(bad[0]), col, f"expected an integer unix timestamp, got {float(v[bad[0]])!r}"
            )
        return v.astype(np.int64)
    text = table.text(col)
    arr = pa.array(text)  # Arrow kernels: pandas' own regex here runs per row in Python
    ok = pc.match_substring_regex(arr, r"^\s*[+-]?[0-9]{1,18}\s*$").to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~ok)
    if len(bad):
        r = int(bad[0])
        raise table.error(r, col, f"expected an integer unix timestamp (seconds), got {text.iloc[r]!r}")
    digits = pc.replace_substring_regex(pc.utf8_trim_whitespace(arr), r"^\+", "")  # Arrow's cast refuses '+1'
    return pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)


#: unix seconds this large are after the year 5000: such a value is milliseconds (or finer)
MS_THRESHOLD = 10**11


def _warn_mixed_units(table: _Table, ts: np.ndarray) -> None:
    """Seconds and milliseconds in one file order every user's history wrongly without any error (all
    of one unit is fine: only the order is used). Warn, naming a row of each kind."""
    big = ts >= MS_THRESHOLD
    small = (ts > 0) & ~big
    if big.any() and small.any():
        rb, rs = int(np.argmax(big)), int(np.argmax(small))
        lb, ls = table.lines([rb, rs])
        where = "line" if table.is_csv else "row"
        log.warning(
            "%s: timestamps mix units: %d look like milliseconds (%s %d: %d) and %d like seconds (%s %d: "
            "%d); histories are ordered by the raw numbers, so convert them to one unit",
            table.path,
            int(big.sum()),
            where,
            lb,
            int(ts[rb]),
            int(small.sum()),
            where,
            ls,
            int(ts[rs]),
        )


#: the warning for negative timestamps (also used by the ABXI loader): path, count, 'line N', value
NEGATIVE_TS_WARNING = (
    "%s: negative timestamps: %d (first at %s: %d); a time before 1970 is usually a missing-time marker "
    "or a sign error, and histories are ordered by the raw numbers, so these come first"
)


def _warn_negative(table: _Table, ts: np.ndarray) -> None:
    """A negative unix time is before 1970: valid as a number, but in interaction logs nearly always a
    missing-time marker (-1) or a sign error, and such rows sort first in their user's history. Warn,
    naming the first one."""
    neg = ts < 0
    if neg.any():
        r = int(np.argmax(neg))
        log.warning(NEGATIVE_TS_WARNING, table.path, int(neg.sum()), table.where(r), int(ts[r]))


def _warn_duplicates(table: _Table, user: np.ndarray, item: np.ndarray, ts: np.ndarray) -> None:
    """Rows repeating an earlier row's user, item and timestamp are kept (a repeat purchase at another
    time is ordinary) but warned about: an exact copy is usually a file concatenated twice or a join
    that fanned out, and it puts the item twice in a row in the history (and can make it a target)."""
    dup = pd.DataFrame({"u": user, "i": item, "t": ts}).duplicated().to_numpy()
    if dup.any():
        r = int(np.argmax(dup))
        log.warning(
            "%s: %d row(s) repeat an earlier row's user_id, item_id and timestamp (first at %s); they are "
            "kept, as repeated interactions",
            table.path,
            int(dup.sum()),
            table.where(r),
        )


def strip_nul_values(where: object, field: str, values: list, keys: Sequence | None = None) -> list:
    """`values` (str or None) without NUL characters, warning once, naming the first item's key when
    `keys` are given (why: `_strip_nul`). For texts held in lists (`write_canonical`, the published
    loaders); a Python scan, as `in` is a C memchr per string, faster than converting to Arrow first."""
    hit = [i for i, v in enumerate(values) if isinstance(v, str) and "\x00" in v]
    if not hit:
        return values
    first = f", first for item {keys[hit[0]]!r}" if keys is not None else ""
    n = len(hit)
    log.warning(
        "%s: '%s' has NUL characters (%d %s%s); they are removed",
        where,
        field,
        n,
        "value" if n == 1 else "values",
        first,
    )
    out = list(values)
    for i in hit:
        out[i] = out[i].replace("\x00", "") or None
    return out


def _strip_nul(table: _Table, col: str, text: pd.Series) -> pd.Series:
    """Free text (`title`, `description`) without its NUL characters, warning once per column.

    Removed, not refused: a NUL is never part of what a person reads, only a byte-level artefact (a
    C-string buffer, a bad UTF-16 conversion, scraped HTML), so removing it loses nothing; left in, it
    silently cuts the text short in C-string consumers (tokenizers, llama.cpp prompts, many CSV tools);
    refusing it would make a whole catalogue unloadable over one invisible character in one description.
    Ids are different: they are matched exactly against other files, so there a NUL is an error. Other
    control characters (tab, newline) are ordinary in text and stay.
    """
    arr = _strings(text)
    if not _any_byte(arr, lambda b: b == 0):  # the usual case: one numpy pass over the bytes
        return text
    has = pc.match_substring(arr, "\x00").to_numpy(zero_copy_only=False)
    n = int(has.sum())
    log.warning(
        "%s: '%s' has NUL characters (%d %s, first at %s); they are removed",
        table.path,
        col,
        n,
        "value" if n == 1 else "values",
        table.where(int(np.argmax(has))),
    )
    return text.str.replace("\x00", "", regex=False)


def _optional_text(table: _Table, col: str, order: np.ndarray) -> list[str | None]:
    if col not in table.df.columns:
        return [None] * len(order)
    text = table.text(col)
    if col == "image":  # a file name or URL: a NUL or other control character is an error, as in an id
        bad = np.flatnonzero(unclean_keys(text, edges=False))
        if len(bad):
            r = int(bad[0])
            raise table.error(r, col, f"value {key_problem(text.iloc[r], 'image references')}")
    else:
        text = _strip_nul(table, col, text)
    values = text.to_numpy(dtype=object)[order]
    return np.where(values == "", None, values).tolist()


def load_canonical(folder: Path, name: str | None = None) -> CDDataset:
    """Load a canonical folder; `name` overrides `dataset.json`'s name, else the folder name is used."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetNotFoundError(f"{folder}: not a folder")
    items_path = _find(folder, ITEMS)
    if items_path is None:
        raise DatasetNotFoundError(f"{folder}: no {ITEMS}.csv or {ITEMS}.parquet")
    inter_path = _find(folder, INTERACTIONS)
    if inter_path is None:
        raise DataFormatError(
            folder / f"{INTERACTIONS}.csv", None, None, f"not found (nor {INTERACTIONS}.parquet)"
        )
    meta_name, fixed_domains = _read_meta(folder)

    # items
    it = _read_table(items_path)
    it.require_columns(ITEM_REQUIRED)
    it.require_rows()
    keys = it.text("item_id")
    dom_names = it.text("domain")
    it.require_nonempty("item_id", keys)
    it.require_nonempty("domain", dom_names)
    it.require_clean("item_id", keys)
    it.require_clean("domain", dom_names)
    dup = np.flatnonzero(keys.duplicated().to_numpy())
    if len(dup):
        r = int(dup[0])
        first = int(np.flatnonzero((keys == keys.iloc[r]).to_numpy())[0])
        where = f"{'line' if it.is_csv else 'row'} {it.lines([first])[0]}"
        raise it.error(r, "item_id", f"duplicate item_id {keys.iloc[r]!r} (first at {where})")
    domains = _domains_of(it, dom_names, fixed_domains)
    dom = (dom_names == domains[1]).to_numpy().astype(np.int8)
    order = np.argsort(dom, kind="stable")
    item_keys = keys.to_numpy(dtype=object)[order]
    items = make_items_frame(
        item_keys,
        dom[order],
        titles=_optional_text(it, "title", order),
        descriptions=_optional_text(it, "description", order),
        images=_optional_text(it, "image", order),
    )

    # interactions
    tb = _read_table(inter_path)
    tb.require_columns(INTERACTION_REQUIRED)
    tb.require_rows()
    users = tb.text("user_id")
    tb.require_nonempty("user_id", users)
    ucode, ukeys = pd.factorize(users, sort=False)
    tb.require_clean("user_id", ukeys, ucode)
    item_col = tb.text("item_id")
    codes, uniq = pd.factorize(item_col)  # check and look up each distinct id once, not every row
    tb.require_clean("item_id", uniq, codes)
    gid = (pd.Index(item_keys).get_indexer(uniq) + 1)[codes]
    unknown = np.flatnonzero(gid == 0)
    if len(unknown):
        r = int(unknown[0])
        raise tb.error(r, "item_id", f"unknown item_id {item_col.iloc[r]!r} (not in {items_path.name})")
    ts = _timestamps(tb, "timestamp")
    _warn_mixed_units(tb, ts)
    _warn_negative(tb, ts)
    _warn_duplicates(tb, ucode, gid, ts)
    seq_order = np.argsort(ts, kind="stable")  # by time, ties in file order ...
    seq_order = seq_order[np.argsort(ucode[seq_order], kind="stable")]  # ... then grouped by user
    lengths = np.bincount(ucode, minlength=len(ukeys))
    return CDDataset(
        name=name or meta_name or folder.name,
        domains=domains,
        items=items,
        user_keys=np.asarray(ukeys, dtype=object),
        sequences=Ragged.from_lengths(lengths, gid[seq_order]),
        timestamps=Ragged.from_lengths(lengths, ts[seq_order]),
        source=str(folder),
    )


# ---- writing ---------------------------------------------------------------------------------------
def _cell(v: object) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    return str(v)


def write_canonical(ds: CDDataset, folder: Path, fmt: Format = "csv", name: str | None = None) -> None:
    """Write `ds` as a canonical folder that `load_canonical` reads back unchanged.

    `name` (default `ds.name`) is the name `dataset.json` gives it: tags and candidate sets are kept
    under the dataset's name, so an edited copy should not keep its source's.

    Files are written to a temporary folder beside the target and moved in with `os.replace`, so a crash
    never leaves a half-written file. Files of the other format are removed, so the folder stays
    unambiguous. Without timestamps, each user's positions (0, 1, ...) are written instead.

    What `load_canonical` would refuse is refused here, before anything is written (a `ValueError`
    naming the value): an item key, user key or domain name with a control character or edge whitespace,
    an image with a control character, an empty user key. NUL characters in titles and descriptions are
    removed with a warning, as `load_canonical` would remove them.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if len(set(ds.domains)) != 2 or not all(ds.domains):
        raise ValueError(f"{ds.name}: two distinct, non-empty domain names needed, got {ds.domains}")
    dom = ds.items["domain"].to_numpy(dtype=np.int8)
    if not ((dom == 0).any() and (dom == 1).any()):
        raise ValueError(f"{ds.name}: the canonical format needs items in both domains")
    keys = np.asarray([_cell(k) or "" for k in ds.items["key"]], dtype=object)
    if (keys == "").any() or pd.Index(keys).has_duplicates:
        raise ValueError(f"{ds.name}: item keys must be unique and non-empty to be written")
    names = np.asarray(ds.domains, dtype=object)
    user_keys = np.asarray([str(u) for u in ds.user_keys], dtype=object)
    if (user_keys == "").any():
        raise ValueError(f"{ds.name}: user keys must be non-empty to be written")
    for what, values in (("item key", keys), ("user key", user_keys), ("domain name", names)):
        bad = np.flatnonzero(unclean_keys(values))
        if len(bad):
            raise ValueError(
                f"{ds.name}: {what} {key_problem(values[bad[0]], what + 's')} (load_canonical refuses it); "
                "nothing was written"
            )
    text = {c: [_cell(v) for v in ds.items[c]] for c in ITEM_OPTIONAL}
    bad = np.flatnonzero(unclean_keys(np.asarray(text["image"], dtype=object), edges=False))
    if len(bad):
        raise ValueError(
            f"{ds.name}: image of item {_show(keys[bad[0]])} "
            f"{key_problem(text['image'][bad[0]], 'image references')} (load_canonical refuses it); "
            "nothing was written"
        )
    for c in ("title", "description"):
        text[c] = strip_nul_values(ds.name, c, text[c])
    items = pd.DataFrame({"item_id": keys, "domain": names[dom], **text})
    inter = ds.interactions()
    interactions = pd.DataFrame(
        {
            "user_id": user_keys[inter["user"].to_numpy()],
            "item_id": keys[inter["item"].to_numpy() - 1],
            "timestamp": inter["timestamp"].to_numpy(dtype=np.int64),
        }
    )
    meta = {"name": name or ds.name, "domains": list(ds.domains)}

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-canonical-", dir=folder))
    try:
        written = []
        for stem, df in ((ITEMS, items), (INTERACTIONS, interactions)):
            target = tmp / f"{stem}.{fmt}"
            if fmt == "csv":
                df.to_csv(target, index=False, lineterminator="\n")
            else:
                df.to_parquet(target, index=False)
            written.append(target)
        meta_path = tmp / META_FILE
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        written.append(meta_path)
        for p in written:
            _fsync(p)
        for p in written:
            os.replace(p, folder / p.name)
        for stem in (ITEMS, INTERACTIONS):
            for other in FORMATS:
                stale = folder / f"{stem}.{other}"
                if other != fmt and stale.is_file():
                    stale.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync(path: Path) -> None:
    """Flush a file to disk before it is moved into place, so the move publishes complete content."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
